// fork_spawn_message.h — the check a fork server makes of each message it receives before it forks a child
// (common/fork_protocol.h, "The fork server refuses ..."). Pure code, apart from the fork-server runtime's socket
// handling so that it can be unit-tested and fuzzed (fuzz/fuzz_fork_spawn.cpp).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace spawnd::sdk {

// What recvmsg() told about a received message besides its bytes.
struct ReceivedMessageInfo {
  bool is_truncated = false;        // MSG_TRUNC: longer than the buffer (kMaxMessageBytes)
  bool has_extra_fds = false;       // MSG_CTRUNC, or more than 3 fds arrived
  int fd_count = 0;                 // fds received and kept (at most 3)
};

// Checks that `message` (the received bytes: a ForkMessageHeader, then the environment block; at least
// sizeof(ForkMessageHeader) bytes, the caller checks that) is a Spawn that may be served: not truncated, type Spawn,
// env_bytes equal to the rest of the message, exactly 3 fds, and an environment block of entries
// "NAME=value\0" each with a non-empty NAME (so no NUL and no '=' in a name) and ending with NUL.
// On success returns nullptr and fills `envp` with one pointer per entry, into `message`, then nullptr: the
// child's `environ`. Otherwise returns what is wrong, a static string for the log line; `envp` is then unspecified.
// Allocates nothing once `envp` has the capacity for the entries.
[[nodiscard]] const char* check_spawn_message(std::span<char> message, const ReceivedMessageInfo& received,
                                              std::vector<char*>& envp);

}  // namespace spawnd::sdk
