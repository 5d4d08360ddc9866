#include "server/static_file_cache.h"

#include <cassert>
#include <utility>

namespace spawnd::server {

bool is_same_version(const struct stat& a, const struct stat& b) noexcept {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec && a.st_mode == b.st_mode;
}

StaticFileCache::Entry* StaticFileCache::find(const std::string& key) {
  const auto it = map_.find(std::string_view(key));
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);  // iterators (and the key's storage) stay valid
  return &it->second->entry;
}

StaticFileCache::Entry& StaticFileCache::insert(const std::string& key, ResolvedPath value, std::int64_t now_ms) {
  assert(is_enabled());
  if (Entry* existing = find(key)) {
    existing->value = std::move(value);
    existing->checked_ms = now_ms;
    return *existing;
  }
  while (map_.size() >= config_.max_entries) {
    map_.erase(std::string_view(lru_.back().key));
    lru_.pop_back();
  }
  lru_.push_front(Node{key, Entry{std::move(value), now_ms}});
  map_.emplace(std::string_view(lru_.front().key), lru_.begin());
  return lru_.front().entry;
}

}  // namespace spawnd::server
