#include "server/request_body_buffer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/sys.h"

namespace spawnd::server {

namespace {

// Bytes read back from the temporary file at a time, and the consumed prefix of the memory part we keep before
// compacting it.
constexpr std::size_t kWindowBytes = 64 * 1024;

}  // namespace

Fd open_unlinked_temp_file(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
  // A file system without O_TMPFILE: a named file, unlinked at once.
  std::string path = dir + "/spawnd-body-XXXXXX";
  fd.reset(::mkostemp(path.data(), O_CLOEXEC));
  if (fd) ::unlink(path.c_str());
  return fd;
}

RequestBodyBuffer::Append RequestBodyBuffer::append(std::string_view bytes, bool may_spill) {
  if (bytes.empty()) return Append::Ok;
  if (budget_.total_ + bytes.size() > budget_.total_limit_) return Append::OverBudget;
  if (!file_ && may_spill &&
      (memory_.size() - memory_pos_ + bytes.size() > memory_bytes_ ||
       budget_.memory_ + bytes.size() > budget_.memory_limit_)) {
    if (Append a = spill(); a != Append::Ok) return a;
  }
  if (file_) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = sys::retry_eintr([&] {
        return ::pwrite(file_.get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(file_bytes_ + done));
      });
      if (n <= 0) {
        if (n == 0) errno = ENOSPC;
        return Append::IoError;
      }
      done += static_cast<std::size_t>(n);
    }
    file_bytes_ += bytes.size();
    charged_total_ += bytes.size();
    budget_.total_ += bytes.size();
  } else {
    memory_.append(bytes);
    charged_memory_ += bytes.size();
    budget_.memory_ += bytes.size();
    charged_total_ += bytes.size();
    budget_.total_ += bytes.size();
  }
  appended_ += bytes.size();
  return Append::Ok;
}

// From now on new bytes go to the file; what is in memory stays there as the first window.
RequestBodyBuffer::Append RequestBodyBuffer::spill() {
  file_ = open_unlinked_temp_file(temp_dir_);
  if (!file_) {
    SPAWND_LOG_ERROR("request body: cannot create a temporary file in %s: %s", temp_dir_.c_str(),
                     std::strerror(errno));
    return Append::IoError;
  }
  file_bytes_ = 0;
  file_read_ = 0;
  return Append::Ok;
}

std::string_view RequestBodyBuffer::available() const {
  if (memory_pos_ == memory_.size() && file_ && file_read_ < file_bytes_) {
    // The window is used up: read the next one from the file.
    release_memory(memory_.size());
    std::uint64_t left = file_bytes_ - file_read_;
    memory_.resize(left < kWindowBytes ? static_cast<std::size_t>(left) : kWindowBytes);
    memory_pos_ = 0;
    const ssize_t n = sys::retry_eintr(
        [&] { return ::pread(file_.get(), memory_.data(), memory_.size(), static_cast<off_t>(file_read_)); });
    if (n <= 0) {
      // Cannot happen with a regular file we wrote ourselves, short of an I/O error; the handler then sees a body
      // that stops, and its timeout ends the request.
      SPAWND_LOG_ERROR("request body: reading the temporary file: %s", n < 0 ? std::strerror(errno) : "end of file");
      memory_.clear();
      return {};
    }
    memory_.resize(static_cast<std::size_t>(n));
    file_read_ += static_cast<std::uint64_t>(n);
    charged_memory_ += memory_.size();
    budget_.memory_ += memory_.size();
  }
  return std::string_view(memory_).substr(memory_pos_);
}

void RequestBodyBuffer::consume(std::size_t n) noexcept {
  memory_pos_ += n;
  consumed_ += n;
  if (memory_pos_ >= memory_.size()) {
    release_memory(memory_.size());
    memory_.clear();
    memory_pos_ = 0;
  } else if (memory_pos_ > kWindowBytes) {
    release_memory(memory_pos_);
    memory_.erase(0, memory_pos_);
    memory_pos_ = 0;
  }
}

void RequestBodyBuffer::release_memory(std::size_t n) const noexcept {
  charged_memory_ -= n;
  budget_.memory_ -= n;
  if (!file_) {
    // In memory mode these bytes were all the buffer held of the total; in file mode the file still holds them.
    charged_total_ -= n;
    budget_.total_ -= n;
  }
}

void RequestBodyBuffer::clear() noexcept {
  budget_.memory_ -= charged_memory_;
  budget_.total_ -= charged_total_;
  charged_memory_ = charged_total_ = 0;
  if (memory_.capacity() > kWindowBytes) std::string().swap(memory_);  // an idle connection keeps little
  memory_.clear();
  memory_pos_ = 0;
  file_.reset();
  file_bytes_ = file_read_ = 0;
  appended_ = consumed_ = 0;
}

}  // namespace spawnd::server
