// Unit tests for handlers/sdk/src/fork_spawn_message.h: the fork server's check of a received Spawn message
// (common/fork_protocol.h), table-driven: each refusal the protocol lists, and the environment an accepted message
// gives the child.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fork_protocol.h"
#include "handlers/sdk/src/fork_spawn_message.h"

namespace fp = spawnd::fork_protocol;
using spawnd::sdk::check_spawn_message;
using spawnd::sdk::ReceivedMessageInfo;

namespace {

std::vector<char> message(fp::MessageType type, std::string_view env, std::uint32_t env_bytes) {
  fp::ForkMessageHeader header{};
  header.type = type;
  header.env_bytes = env_bytes;
  header.token = 42;
  std::vector<char> m(sizeof header + env.size());
  std::memcpy(m.data(), &header, sizeof header);
  std::copy(env.begin(), env.end(), m.begin() + sizeof header);
  return m;
}

std::vector<char> spawn(std::string_view env) {
  return message(fp::MessageType::Spawn, env, static_cast<std::uint32_t>(env.size()));
}

const ReceivedMessageInfo kThreeFds{.fd_count = 3};

}  // namespace

TEST_CASE("a well-formed Spawn gives the child exactly its environment entries, in order", "[unit][fork_spawn]") {
  using namespace std::string_view_literals;
  std::vector<char> m = spawn("PATH=/bin\0QUERY_STRING=\0HTTP_X=a=b\0"sv);
  std::vector<char*> envp;
  REQUIRE(check_spawn_message(std::span<char>(m), kThreeFds, envp) == nullptr);
  REQUIRE(envp.size() == 4);
  CHECK(std::string(envp[0]) == "PATH=/bin");
  CHECK(std::string(envp[1]) == "QUERY_STRING=");
  CHECK(std::string(envp[2]) == "HTTP_X=a=b");
  CHECK(envp[3] == nullptr);
  // An empty environment is allowed: the child gets none.
  std::vector<char> empty = spawn("");
  REQUIRE(check_spawn_message(std::span<char>(empty), kThreeFds, envp) == nullptr);
  CHECK((envp.size() == 1 && envp[0] == nullptr));
}

TEST_CASE("a Spawn message is refused for each defect common/fork_protocol.h lists", "[unit][fork_spawn]") {
  using namespace std::string_view_literals;
  struct Case {
    const char* what;
    std::vector<char> bytes;
    ReceivedMessageInfo received;
    std::string_view expected;
  };
  const Case cases[] = {
      {"truncated", spawn("A=1\0"sv), {.is_truncated = true, .fd_count = 3}, "message longer than kMaxMessageBytes"},
      {"more than 3 fds", spawn("A=1\0"sv), {.has_extra_fds = true, .fd_count = 3}, "more than 3 fds attached"},
      {"not a Spawn", message(fp::MessageType::Exited, "A=1\0"sv, 4), kThreeFds, "not a Spawn message"},
      {"env_bytes too small", message(fp::MessageType::Spawn, "A=1\0"sv, 3), kThreeFds,
       "env_bytes does not match the message length"},
      {"env_bytes too large", message(fp::MessageType::Spawn, "A=1\0"sv, 400), kThreeFds,
       "env_bytes does not match the message length"},
      {"two fds", spawn("A=1\0"sv), {.fd_count = 2}, "a Spawn needs exactly 3 fds (stdin, stdout, stderr)"},
      {"no final NUL", spawn("A=1\0B=2"sv), kThreeFds, "environment block does not end with NUL"},
      {"entry without '='", spawn("A=1\0JUNK\0"sv), kThreeFds, "environment entry without NAME="},
      {"empty name", spawn("=1\0"sv), kThreeFds, "environment entry without NAME="},
      {"empty entry (two NULs)", spawn("A=1\0\0"sv), kThreeFds, "environment entry without NAME="},
      {"shorter than a header", std::vector<char>(8), kThreeFds, "message shorter than a header"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    std::vector<char> bytes = c.bytes;
    std::vector<char*> envp;
    const char* problem = check_spawn_message(std::span<char>(bytes), c.received, envp);
    REQUIRE(problem != nullptr);
    CHECK(std::string_view(problem) == c.expected);
  }
}
