// fuzz/fuzz_fork_spawn.cpp — the fork server's check of a received Spawn message (handlers/sdk/src/
// fork_spawn_message.h, protocol in common/fork_protocol.h): what a child's environment is made of.
//
// Input: one byte of what recvmsg() reported (bit 0: truncated, bit 1: extra fds, bits 2-3: fd count), then the
// message bytes. To reach the environment check often, a second byte may ask for a valid header to be written
// over the message's first bytes (type Spawn, env_bytes the true length).
// Asserts: an accepted message has the right shape (not truncated, type Spawn, env_bytes = the rest, 3 fds) and
// `envp` lists, in order, every entry of the block, each inside the message, NUL-terminated, with a non-empty name
// before its first '=' (so no '=' and no NUL in a name), followed by nullptr.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "common/fork_protocol.h"
#include "fuzz/fuzz_check.h"
#include "handlers/sdk/src/fork_spawn_message.h"

namespace fp = spawnd::fork_protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spawnd::fuzz::FuzzInput input(data, size);
  const std::uint8_t flags = input.byte();
  const bool is_header_fixed = (input.byte() & 1) != 0;
  const std::string_view bytes = input.rest();
  std::vector<char> message(bytes.begin(), bytes.end());
  if (is_header_fixed && message.size() >= sizeof(fp::ForkMessageHeader)) {
    fp::ForkMessageHeader header{};
    header.type = fp::MessageType::Spawn;
    header.env_bytes = static_cast<std::uint32_t>(message.size() - sizeof header);
    header.token = 7;
    std::memcpy(message.data(), &header, sizeof header);
  }
  if (message.size() < sizeof(fp::ForkMessageHeader)) return 0;  // the runtime never calls it for these

  const spawnd::sdk::ReceivedMessageInfo received{
      .is_truncated = (flags & 1) != 0, .has_extra_fds = (flags & 2) != 0, .fd_count = (flags >> 2) & 3};
  std::vector<char*> envp;
  const char* problem = spawnd::sdk::check_spawn_message(std::span<char>(message), received, envp);
  if (problem != nullptr) {
    FUZZ_CHECK(*problem != '\0');
    return 0;
  }

  fp::ForkMessageHeader header{};
  std::memcpy(&header, message.data(), sizeof header);
  FUZZ_CHECK(!received.is_truncated && !received.has_extra_fds && received.fd_count == 3);
  FUZZ_CHECK(header.type == fp::MessageType::Spawn);
  FUZZ_CHECK(header.env_bytes == message.size() - sizeof header);
  FUZZ_CHECK(!envp.empty() && envp.back() == nullptr);
  const char* expected = message.data() + sizeof header;
  const char* const end = message.data() + message.size();
  for (std::size_t i = 0; i + 1 < envp.size(); ++i) {
    const char* entry = envp[i];
    FUZZ_CHECK(entry == expected);  // in order, nothing skipped
    const auto* nul = static_cast<const char*>(std::memchr(entry, '\0', static_cast<std::size_t>(end - entry)));
    FUZZ_CHECK(nul != nullptr);
    const auto* eq = static_cast<const char*>(std::memchr(entry, '=', static_cast<std::size_t>(nul - entry)));
    FUZZ_CHECK(eq != nullptr && eq != entry);
    expected = nul + 1;
  }
  FUZZ_CHECK(expected == end);  // every entry of the block is listed
  return 0;
}
