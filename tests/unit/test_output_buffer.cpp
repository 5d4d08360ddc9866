// Unit tests for server/output_buffer.h over a socketpair: order, positions, truncation, a file after the bytes, and
// response spooling (order across the kept, spooled and staged bytes; the budget).
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/fd.h"
#include "server/output_buffer.h"
#include "server/request_body_buffer.h"

using spawnd::Fd;
using spawnd::Io;
using spawnd::server::OutputBuffer;

namespace {

struct SocketPair {
  Fd ours, theirs;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    ours.reset(fds[0]);
    theirs.reset(fds[1]);
  }
  std::string read_all() {
    std::string got;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(theirs.get(), buf, sizeof buf);
      if (n <= 0) return got;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
};

Fd file_with(const std::string& content) {
  Fd f = spawnd::server::open_unlinked_temp_file("/tmp");
  REQUIRE(f);
  REQUIRE(::write(f.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  return f;
}

}  // namespace

TEST_CASE("output buffer sends its bytes, then the file range", "[unit][output_buffer]") {
  SocketPair s;
  OutputBuffer out;
  out.tail() += "head\r\n\r\n";
  out.set_file(std::make_shared<const Fd>(file_with("0123456789")), 2, 5);
  CHECK(out.pending_bytes() == 8);
  CHECK(out.pending_file_bytes() == 5);
  CHECK(out.flush(s.ours.get()) == Io::Done);
  CHECK(out.is_empty());
  CHECK(s.read_all() == "head\r\n\r\n23456");
}

TEST_CASE("output buffer positions tell what has left and what can be taken back", "[unit][output_buffer]") {
  SocketPair s;
  OutputBuffer out;
  out.tail() += "first";
  CHECK(out.end_position() == 5);
  CHECK(out.flush(s.ours.get()) == Io::Done);
  CHECK(out.sent_position() == 5);
  const std::uint64_t head_at = out.end_position();
  out.tail() += "HEAD THAT WILL BE TAKEN BACK";
  CHECK(out.sent_position() <= head_at);  // nothing of it left yet
  out.truncate(head_at);
  out.tail() += "error";
  CHECK(out.flush(s.ours.get()) == Io::Done);
  CHECK(out.sent_position() > head_at);
  CHECK(s.read_all() == "firsterror");
}

TEST_CASE("output buffer reports a file that ends before its range", "[unit][output_buffer]") {
  SocketPair s;
  OutputBuffer out;
  out.set_file(std::make_shared<const Fd>(file_with("abc")), 0, 10);
  CHECK(out.flush(s.ours.get()) == Io::Eof);
}

TEST_CASE("output buffer says Again when the peer does not read, and Error when it is gone", "[unit][output_buffer]") {
  SocketPair s;
  OutputBuffer out;
  out.tail() = std::string(8 << 20, 'x');
  CHECK(out.flush(s.ours.get()) == Io::Again);
  CHECK(out.pending_bytes() > 0);
  s.theirs.reset();
  CHECK(out.flush(s.ours.get()) == Io::Error);
  out.reset();
  CHECK(out.is_empty());
}

TEST_CASE("a spool sends the kept bytes, the spooled ones, then the staged ones, in order, and gives its budget back",
          "[unit][output_buffer]") {
  SocketPair s;
  OutputBuffer out;
  spawnd::server::SpoolBudget budget{1u << 20};
  std::string expected;
  for (int i = 0; expected.size() < OutputBuffer::kSpoolKeepBytes + 5000; ++i) expected += std::to_string(i) + ",";
  out.tail() += expected;
  out.begin_spool(spawnd::server::open_unlinked_temp_file("/tmp"), budget);
  REQUIRE(out.is_spooling());
  CHECK(out.pending_bytes() == OutputBuffer::kSpoolKeepBytes);  // the rest is staged for the file
  CHECK(out.spill() == Io::Done);
  CHECK(out.memory_bytes() == OutputBuffer::kSpoolKeepBytes);
  CHECK(budget.in_use == expected.size() - OutputBuffer::kSpoolKeepBytes);
  out.tail() += "spooled;";  // after the bytes already in the file
  CHECK(out.spill() == Io::Done);
  out.tail() += "staged";  // not spilled: sent after the file
  CHECK(out.flush(s.ours.get()) == Io::Done);
  CHECK(out.is_empty());
  CHECK_FALSE(out.is_spooling());
  CHECK(budget.in_use == 0);
  CHECK(s.read_all() == expected + "spooled;staged");
  out.tail() += "next";  // the string again, not a staging area
  CHECK(out.pending_bytes() == 4);
  CHECK(out.flush(s.ours.get()) == Io::Done);
  CHECK(s.read_all() == "next");
}

TEST_CASE("a spool whose budget is full keeps the rest in memory, in order, and reset gives the budget back",
          "[unit][output_buffer]") {
  SocketPair s;
  spawnd::server::SpoolBudget budget{OutputBuffer::kSpoolKeepBytes + 10};
  std::string expected(OutputBuffer::kSpoolKeepBytes, 'k');
  {
    OutputBuffer out;
    out.tail() += expected;
    out.begin_spool(spawnd::server::open_unlinked_temp_file("/tmp"), budget);
    out.tail() += std::string(OutputBuffer::kSpoolKeepBytes + 30, 's');
    CHECK(out.spill() == Io::Again);  // room for 10 bytes more than the kept ones, which are not charged
    out.tail() += "end";
    CHECK(out.spill() == Io::Again);
    CHECK(budget.in_use == OutputBuffer::kSpoolKeepBytes + 10);
    std::string got;
    while (out.flush(s.ours.get()) == Io::Again) got += s.read_all();
    got += s.read_all();
    CHECK(got == expected + std::string(OutputBuffer::kSpoolKeepBytes + 30, 's') + "end");
    CHECK(budget.in_use == 0);

    out.tail() += std::string(OutputBuffer::kSpoolKeepBytes + 1, 'x');
    out.begin_spool(spawnd::server::open_unlinked_temp_file("/tmp"), budget);
    CHECK(out.spill() == Io::Done);
    CHECK(budget.in_use == 1);
    out.reset();
    CHECK(budget.in_use == 0);
    out.tail() += "y";
    out.begin_spool(spawnd::server::open_unlinked_temp_file("/tmp"), budget);
    out.tail() += "z";
    CHECK(out.spill() == Io::Done);
    CHECK(budget.in_use == 1);
  }  // destroyed while spooling
  CHECK(budget.in_use == 0);
}
