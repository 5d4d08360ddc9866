#include "server/output_buffer.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <string_view>

#include "common/sys.h"
#include "server/tls.h"

namespace spawnd::server {

void OutputBuffer::set_file(std::shared_ptr<const Fd> file, std::uint64_t offset, std::uint64_t length) noexcept {
  file_ = std::move(file);
  file_offset_ = offset;
  file_remaining_ = length;
}

void OutputBuffer::truncate(std::uint64_t position) noexcept {
  assert(!is_spooling() && position >= sent_position() && position <= end_position());
  data_.resize(static_cast<std::size_t>(position - base_));
}

Io OutputBuffer::flush(int socket, TlsStream* tls) {
  if (tls != nullptr) return flush_tls(*tls);
  std::uint64_t sent_now = 0;
  do {
    if (Io io = flush_plain(socket, sent_now); io != Io::Done) return io;
  } while (end_spool());
  file_.reset();
  return Io::Done;
}

// The string, then the file: flush() without TLS, up to the staged bytes.
Io OutputBuffer::flush_plain(int socket, std::uint64_t& sent_now) {
  while (pending_bytes() > 0) {
    const int flags = MSG_NOSIGNAL | (file_remaining_ > 0 ? MSG_MORE : 0);
    const ssize_t n = ::send(socket, data_.data() + sent_, pending_bytes(), flags);
    if (n > 0) {
      sent_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Io::Again;
    return Io::Error;
  }
  base_ += data_.size();
  data_.clear();
  sent_ = 0;
  while (file_remaining_ > 0) {
    if (sent_now >= kMaxFileBytesPerFlush) return Io::Again;  // EPOLLOUT (level) brings the caller back
    auto off = static_cast<off_t>(file_offset_);
    const std::size_t want = file_remaining_ < (1u << 20) ? static_cast<std::size_t>(file_remaining_) : (1u << 20);
    const ssize_t n = ::sendfile(socket, file_->get(), &off, want);
    if (n > 0) {
      file_offset_ += static_cast<std::uint64_t>(n);
      file_remaining_ -= static_cast<std::uint64_t>(n);
      sent_now += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Io::Again;
    return n == 0 ? Io::Eof : Io::Error;
  }
  return Io::Done;
}

Io OutputBuffer::flush_tls(TlsStream& tls) {
  std::uint64_t sent_now = 0;
  for (;;) {
    // A head followed by the start of a file leaves in one SSL_write (one record, one send for a small file), as
    // nginx's ssl_buffer_size gathers them; without kTLS only, and never behind bytes a retry must offer again.
    if (file_remaining_ > 0 && sent_ == 0 && !data_.empty() && data_.size() < kTlsFileChunkBytes &&
        !tls.has_ktls_send()) {
      const Io io = read_file_piece(kTlsFileChunkBytes - data_.size());
      if (io != Io::Done) return io;
    }
    while (pending_bytes() > 0) {
      std::size_t n = 0;
      const Io io = tls.write(std::string_view(data_).substr(sent_), n);
      if (io != Io::Done) return io;
      sent_ += n;
      sent_now += n;
    }
    base_ += data_.size();
    data_.clear();
    sent_ = 0;
    if (file_remaining_ == 0) {
      if (end_spool()) continue;
      break;
    }
    if (sent_now >= kMaxFileBytesPerFlush) return Io::Again;  // EPOLLOUT (level) brings the caller back
    if (tls.has_ktls_send()) {
      std::size_t n = 0;
      const Io io = tls.sendfile(file_->get(), file_offset_, static_cast<std::size_t>(std::min<std::uint64_t>(
                                                                file_remaining_, 1u << 20)), n);
      if (io != Io::Done) return io;
      file_offset_ += n;
      file_remaining_ -= n;
      sent_now += n;
      continue;
    }
    const Io io = read_file_piece(kTlsFileChunkBytes);
    if (io != Io::Done) return io;
  }
  file_.reset();
  return Io::Done;
}

// The next piece of the file (at most `max` bytes) is appended to the string: a retried SSL_write then offers the
// same bytes again.
Io OutputBuffer::read_file_piece(std::size_t max) {
  const std::size_t old_size = data_.size();
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(file_remaining_, max));
  data_.resize(old_size + want);
  const ssize_t n = sys::retry_eintr(
      [&] { return ::pread(file_->get(), data_.data() + old_size, want, static_cast<off_t>(file_offset_)); });
  if (n <= 0) {
    data_.resize(old_size);
    return n == 0 ? Io::Eof : Io::Error;
  }
  data_.resize(old_size + static_cast<std::size_t>(n));
  file_offset_ += static_cast<std::uint64_t>(n);
  file_remaining_ -= static_cast<std::uint64_t>(n);
  return Io::Done;
}

void OutputBuffer::reset() noexcept {
  base_ += data_.size();
  data_.clear();
  sent_ = 0;
  release_spool();
  file_.reset();
  file_offset_ = 0;
  file_remaining_ = 0;
}

void OutputBuffer::begin_spool(Fd file, SpoolBudget& budget) {
  assert(!is_spooling() && file_remaining_ == 0);
  file_ = std::make_shared<const Fd>(std::move(file));
  file_offset_ = 0;
  budget_ = &budget;
  spool_bytes_ = 0;
  const std::size_t keep = sent_ + std::min(pending_bytes(), kSpoolKeepBytes);
  staged_.assign(data_, keep);
  data_.resize(keep);
}

Io OutputBuffer::spill() {
  std::size_t written = 0;
  Io io = Io::Done;
  while (is_spooling() && written < staged_.size()) {
    const std::uint64_t room = budget_->limit > budget_->in_use ? budget_->limit - budget_->in_use : 0;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(staged_.size() - written, room));
    if (want == 0) {
      io = Io::Again;
      break;
    }
    const ssize_t n = sys::retry_eintr([&] {
      return ::pwrite(file_->get(), staged_.data() + written, want, static_cast<off_t>(spool_bytes_));
    });
    if (n <= 0) {
      if (n == 0) errno = EIO;
      io = Io::Error;
      break;
    }
    const auto wrote = static_cast<std::uint64_t>(n);
    written += static_cast<std::size_t>(n);
    spool_bytes_ += wrote;
    budget_->in_use += wrote;
    file_remaining_ += wrote;
  }
  const int saved_errno = errno;
  staged_.erase(0, written);
  errno = saved_errno;
  return io;
}

bool OutputBuffer::end_spool() noexcept {
  if (!is_spooling()) return false;
  data_.swap(staged_);  // data_ was empty: everything before the staged bytes is sent
  release_spool();
  file_.reset();
  file_offset_ = 0;
  return !data_.empty();
}

void OutputBuffer::release_spool() noexcept {
  if (budget_ == nullptr) return;
  budget_->in_use -= spool_bytes_;
  budget_ = nullptr;
  spool_bytes_ = 0;
  staged_.clear();
}

}  // namespace spawnd::server
