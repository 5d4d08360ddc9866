// server/request_body_buffer.h — where a request's message body waits between the client and the handler.
//
// With request buffering (the default, as nginx's proxy_request_buffering and lighttpd do), a connection reads the
// whole body before a handler slot is taken, so a client that sends its body slowly holds a connection and nothing
// else: no child process, no FastCGI worker, no in-process thread. The body is kept in memory up to
// `memory_bytes` per request, then in an unlinked temporary file (O_TMPFILE) under `temp_dir`, and streamed to the
// handler from there. With --request-buffering off the body streams through a bounded memory window instead
// (the connection stops reading at its high-water mark), and never spills.
//
// Memory is bounded globally by a BodyBudget shared by every connection: in-memory body bytes never exceed
// `memory_limit` (past it, bodies spill to their files early), and the bytes held in memory and files together never
// exceed `total_limit` (past it, append() refuses and the connection answers 503 with Retry-After).
//
// Loop thread only. Writes to the temporary file are plain blocking writes to a regular file (page cache), as
// nginx's client_body_temp_path does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/fd.h"

namespace spawnd::server {

// The limits every RequestBodyBuffer of one server shares. Loop thread only.
class BodyBudget {
 public:
  // memory_limit: bytes of request bodies held in memory across all connections; total_limit: bytes held in memory
  // and temporary files together.
  BodyBudget(std::uint64_t memory_limit, std::uint64_t total_limit) noexcept
      : memory_limit_(memory_limit), total_limit_(total_limit) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  [[nodiscard]] std::uint64_t memory_in_use() const noexcept { return memory_; }
  [[nodiscard]] std::uint64_t total_in_use() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t total_limit() const noexcept { return total_limit_; }

 private:
  friend class RequestBodyBuffer;
  std::uint64_t memory_limit_;
  std::uint64_t total_limit_;
  std::uint64_t memory_ = 0;
  std::uint64_t total_ = 0;
};

class RequestBodyBuffer {
 public:
  enum class Append {
    Ok,
    OverBudget,  // the server-wide total_limit would be passed: answer 503 (nothing was taken)
    IoError,     // the temporary file could not be created or written (errno set): answer 500
  };

  // `memory_bytes`: body bytes of this request kept in memory before it spills to a file; `temp_dir`: an existing
  // directory for the unlinked temporary files. Both are read when needed, so they may refer to the Config.
  RequestBodyBuffer(BodyBudget& budget, const std::size_t& memory_bytes, const std::string& temp_dir) noexcept
      : budget_(budget), memory_bytes_(memory_bytes), temp_dir_(temp_dir) {}
  RequestBodyBuffer(const RequestBodyBuffer&) = delete;
  RequestBodyBuffer& operator=(const RequestBodyBuffer&) = delete;
  ~RequestBodyBuffer() { clear(); }

  // Adds decoded body bytes at the end. With `may_spill` false (streaming) they stay in memory whatever the size;
  // the caller bounds them by backpressure.
  [[nodiscard]] Append append(std::string_view bytes, bool may_spill);
  // The unconsumed bytes at hand: the in-memory part, or the next window (up to 64 KiB) read from the file. Empty
  // when everything appended so far was consumed. Returns the same view until consume() or append(). (Reading the
  // next window changes no byte of the body, hence const; the window state is mutable.)
  [[nodiscard]] std::string_view available() const;
  // Marks the first `n` bytes of available() as used.
  void consume(std::size_t n) noexcept;
  // Unconsumed bytes, in memory and in the file.
  [[nodiscard]] std::uint64_t backlog() const noexcept { return appended_ - consumed_; }
  // Bytes appended since the last clear().
  [[nodiscard]] std::uint64_t size() const noexcept { return appended_; }
  [[nodiscard]] bool has_spilled() const noexcept { return static_cast<bool>(file_); }
  // Drops everything (closes the file, which deletes it) and returns the bytes to the budget.
  void clear() noexcept;

 private:
  [[nodiscard]] Append spill();
  void release_memory(std::size_t n) const noexcept;

  BodyBudget& budget_;
  const std::size_t& memory_bytes_;
  const std::string& temp_dir_;
  // In memory mode: the bytes appended, unconsumed from memory_pos_. Once spilled: what was in memory, then the
  // windows read back from the file.
  mutable std::string memory_;
  mutable std::size_t memory_pos_ = 0;
  Fd file_;                               // the unlinked temporary file, once spilled
  std::uint64_t file_bytes_ = 0;          // bytes written to the file
  mutable std::uint64_t file_read_ = 0;   // file offset of the end of the window in memory_
  std::uint64_t appended_ = 0;
  std::uint64_t consumed_ = 0;
  mutable std::uint64_t charged_memory_ = 0;  // what this buffer holds of budget_.memory_
  mutable std::uint64_t charged_total_ = 0;   // ... and of budget_.total_
};

// Opens an unlinked temporary file for reading and writing in `dir` (O_TMPFILE; where the file system lacks it,
// mkostemp then unlink). Returns an invalid Fd with errno set on failure. Used at start-up to check --body-temp-dir.
[[nodiscard]] Fd open_unlinked_temp_file(const std::string& dir);

}  // namespace spawnd::server
