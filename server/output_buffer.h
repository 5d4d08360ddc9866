// server/output_buffer.h — what a connection has yet to send: response bytes, then optionally a range of a file.
//
// Response heads and generated bodies are appended to a string (tail()); a static file's body follows them as an
// open file and a byte range, sent with sendfile(2) so that it is never loaded into memory. flush() sends as much
// as the socket takes without blocking.
//
// Positions are counted over the life of the buffer (every byte ever appended has one), so that a caller can tell
// whether a given byte has left yet (sent_position() > p) and cut back bytes that have not (truncate()): that is how
// a connection takes back a response head still in its buffer to answer an error status instead.
//
// Over TLS (flush() given the connection's TlsStream), the bytes go through SSL_write; the file too, read into the
// string a piece at a time, unless the kernel encrypts the connection's output (kTLS): then sendfile still works.
//
// Response spooling (nginx's fastcgi_buffering with its temporary files): a handler's response that the client reads
// more slowly than the handler writes it goes on into an unlinked temporary file (the spool) instead of holding the
// handler back, so the handler finishes, its process or worker is free and its --handler-timeout ends, while the
// client reads at its own pace (--io-timeout). begin_spool() starts it; from then on tail() is a staging string
// whose bytes follow the spool, spill() moves them into the file, and flush() sends the string, the spool (as it
// sends a static file) and then what is still staged. Once everything is sent the spool file is closed and tail()
// is the string again. The bytes the spools of all connections hold on disk are bounded by a SpoolBudget.
//
// Loop thread only. Shares the file (with the open-file cache: static_file_cache.h) until it is sent or reset();
// never owns the socket. sendfile(2) and pread(2) read at their own offsets, so a shared fd's file position never
// matters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace spawnd::server {

class TlsStream;

// The bytes all response spools hold in their files together, and the most they may (--max-response-temp-bytes).
// Loop thread only.
struct SpoolBudget {
  std::uint64_t limit = 0;
  std::uint64_t in_use = 0;
};

class OutputBuffer {
 public:
  OutputBuffer() = default;
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;
  ~OutputBuffer() { release_spool(); }

  // sendfile bytes per flush(), so that one large download cannot starve the other connections.
  static constexpr std::uint64_t kMaxFileBytesPerFlush = 4 * 1024 * 1024;

  // Bytes of the string kept in memory when a spool begins: what a TLS write waiting for its retry may have offered
  // already (one record, 16 KiB), with room to spare. The rest goes to the spool.
  static constexpr std::size_t kSpoolKeepBytes = 64 * 1024;

  // The string to append response bytes to (append only: bytes before its end may be on their way already): while
  // spooling, the staging string after the spool. No appending while a static file is pending (the file comes after
  // every byte of the string).
  [[nodiscard]] std::string& tail() noexcept { return is_spooling() ? staged_ : data_; }
  // Sends `length` bytes of `file` from `offset` after the bytes appended so far.
  void set_file(std::shared_ptr<const Fd> file, std::uint64_t offset, std::uint64_t length) noexcept;

  // Bytes of the string not yet sent.
  [[nodiscard]] std::size_t pending_bytes() const noexcept { return data_.size() - sent_; }
  // Bytes not yet sent that are held in memory: the string's and, while spooling, the staged ones.
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return pending_bytes() + staged_.size(); }
  // File bytes not yet sent (a static file's, or the spool's).
  [[nodiscard]] std::uint64_t pending_file_bytes() const noexcept { return file_remaining_; }
  [[nodiscard]] bool is_empty() const noexcept { return memory_bytes() == 0 && file_remaining_ == 0; }

  // The position the next appended byte gets. Not while spooling.
  [[nodiscard]] std::uint64_t end_position() const noexcept { return base_ + data_.size(); }
  // The position of the first byte of the string not yet sent.
  [[nodiscard]] std::uint64_t sent_position() const noexcept { return base_ + sent_; }
  // Drops the string's bytes from `position` on. They must not have been sent: position >= sent_position(). Not
  // while spooling (the spooled bytes cannot be taken back).
  void truncate(std::uint64_t position) noexcept;

  // Starts spooling into `file` (an unlinked temporary file, open for writing; open_unlinked_temp_file), charged
  // to `budget`: the string's unsent bytes past the first kSpoolKeepBytes are staged for the spool, and tail() is
  // the staging string from now on. Requires !is_spooling() and no static file pending.
  void begin_spool(Fd file, SpoolBudget& budget);
  [[nodiscard]] bool is_spooling() const noexcept { return budget_ != nullptr; }
  // Writes the staged bytes to the spool file, as far as the budget has room. Returns Io::Done when none is left
  // staged (also when not spooling), Io::Again when the budget is full (the rest stays in memory), Io::Error when
  // pwrite(2) failed (errno set: ENOSPC, EIO, ...; the bytes stay in memory, in order).
  [[nodiscard]] Io spill();

  // Sends what the socket takes: the string, then the file (at most kMaxFileBytesPerFlush of it per call).
  // Returns Io::Done when everything was sent; Io::Again when the socket is full or the per-call file cap was
  // reached (wait for EPOLLOUT); Io::Error when send or sendfile failed (errno set: EPIPE, ECONNRESET, ...); Io::Eof
  // when the file ended before its range did (it shrank while being sent: the promised length cannot be met).
  // MSG_NOSIGNAL always; MSG_MORE while a file follows, so that a head and the start of a file leave in one segment
  // (nginx's tcp_nopush).
  // With `tls`: through the connection's TLS layer instead of the socket, the same outcomes (Io::Again also when
  // TLS waits on a readable socket: TlsStream::wants_read()).
  [[nodiscard]] Io flush(int socket, TlsStream* tls = nullptr);

  // Drops everything not yet sent and closes the file (and the spool).
  void reset() noexcept;

 private:
  // Over TLS without kTLS, the file goes through SSL_write in pieces of this size, read into data_.
  static constexpr std::size_t kTlsFileChunkBytes = 128 * 1024;
  [[nodiscard]] Io flush_tls(TlsStream& tls);
  [[nodiscard]] Io flush_plain(int socket, std::uint64_t& sent_now);
  // Appends up to `max` bytes of the file to data_ (pread). Io::Eof if the file ended early, Io::Error (errno).
  [[nodiscard]] Io read_file_piece(std::size_t max);
  // Everything before the staged bytes is sent: ends the spool (its file closed, its bytes given back to the
  // budget) and moves the staged bytes into the string. Returns true if that left bytes to send.
  bool end_spool() noexcept;
  void release_spool() noexcept;

  std::string data_;
  std::size_t sent_ = 0;      // sent prefix of data_
  std::uint64_t base_ = 0;    // position of data_[0]
  std::shared_ptr<const Fd> file_;
  std::uint64_t file_offset_ = 0;
  std::uint64_t file_remaining_ = 0;
  // While spooling: the bytes after the spool, the budget charged and the spool file's size (all charged).
  std::string staged_;
  SpoolBudget* budget_ = nullptr;
  std::uint64_t spool_bytes_ = 0;
};

}  // namespace spawnd::server
