#include "fork_spawn_message.h"

#include <cstring>

#include "common/fork_protocol.h"

namespace spawnd::sdk {

namespace fp = spawnd::fork_protocol;

const char* check_spawn_message(std::span<char> message, const ReceivedMessageInfo& received,
                                std::vector<char*>& envp) {
  constexpr int kStdioFds = 3;
  fp::ForkMessageHeader header{};
  if (message.size() < sizeof header) return "message shorter than a header";
  std::memcpy(&header, message.data(), sizeof header);
  if (received.is_truncated) return "message longer than kMaxMessageBytes";
  if (received.has_extra_fds) return "more than 3 fds attached";
  if (header.type != fp::MessageType::Spawn) return "not a Spawn message";
  if (header.env_bytes != message.size() - sizeof header) return "env_bytes does not match the message length";
  if (received.fd_count != kStdioFds) return "a Spawn needs exactly 3 fds (stdin, stdout, stderr)";

  // "NAME=value\0NAME=value\0": every entry NUL-terminated, with a non-empty name and an '='.
  envp.clear();
  char* p = message.data() + sizeof header;
  char* const end = message.data() + message.size();
  if (p < end && end[-1] != '\0') return "environment block does not end with NUL";
  while (p < end) {
    const std::size_t entry_len = std::strlen(p);  // stops at the block's final NUL at the latest
    const char* eq = static_cast<const char*>(std::memchr(p, '=', entry_len));
    if (eq == nullptr || eq == p) return "environment entry without NAME=";
    envp.push_back(p);
    p += entry_len + 1;
  }
  envp.push_back(nullptr);
  return nullptr;
}

}  // namespace spawnd::sdk
