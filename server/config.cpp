#include "server/config.h"

#include <unistd.h>

namespace spawnd::server {

unsigned online_cpus() noexcept {
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 ? static_cast<unsigned>(cpus) : 1U;
}

void resolve_cpu_defaults(Config& config, unsigned cpus) {
  if (cpus == 0) cpus = 1;
  if (config.max_children == 0) config.max_children = std::size_t{4} * cpus;
  if (config.fork_servers == 0) config.fork_servers = cpus;
  if (config.workers == 0) config.workers = cpus;
  if (config.spawn_threads < 0) config.spawn_threads = static_cast<int>(cpus);
}

}  // namespace spawnd::server
