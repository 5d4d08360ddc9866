// Unit tests for server/request_body_buffer.h: memory up to the per-request threshold, then an unlinked temporary
// file in a real directory; the bytes come back in order and whole; the server-wide budget is kept and returned.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "server/request_body_buffer.h"

using spawnd::server::BodyBudget;
using spawnd::server::RequestBodyBuffer;
using Append = RequestBodyBuffer::Append;

namespace {

// A fresh directory, removed with its contents at the end.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/spawnd-body-test-XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  [[nodiscard]] std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(path), {}));
  }
};

// Everything the buffer holds, consumed `step` bytes at a time at most.
std::string drain(RequestBodyBuffer& b, std::size_t step) {
  std::string out;
  for (;;) {
    std::string_view v = b.available();
    if (v.empty()) return out;
    std::size_t n = v.size() < step ? v.size() : step;
    out.append(v.substr(0, n));
    b.consume(n);
  }
}

std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

}  // namespace

TEST_CASE("a body under the threshold stays in memory and comes back whole", "[unit][body]") {
  TempDir dir;
  BodyBudget budget(1 << 20, 1 << 30);
  const std::size_t threshold = 1024;
  RequestBodyBuffer b(budget, threshold, dir.path);
  REQUIRE(b.append("hello ", true) == Append::Ok);
  REQUIRE(b.append("world", true) == Append::Ok);
  CHECK_FALSE(b.has_spilled());
  CHECK(budget.memory_in_use() == 11);
  CHECK(budget.total_in_use() == 11);
  CHECK(b.backlog() == 11);
  CHECK(drain(b, 4) == "hello world");
  CHECK(b.backlog() == 0);
  CHECK(budget.memory_in_use() == 0);
  CHECK(budget.total_in_use() == 0);
}

TEST_CASE("a body past the threshold spills to an unlinked file and streams back in order", "[unit][body]") {
  TempDir dir;
  BodyBudget budget(1 << 20, 1 << 30);
  const std::size_t threshold = 4096;
  RequestBodyBuffer b(budget, threshold, dir.path);
  const std::string body = pattern(1'000'000, 3);
  for (std::size_t i = 0; i < body.size(); i += 1000) REQUIRE(b.append(body.substr(i, 1000), true) == Append::Ok);
  CHECK(b.has_spilled());
  CHECK(dir.entries() == 0);  // unlinked: nothing to clean up after a crash
  CHECK(budget.memory_in_use() <= threshold);
  CHECK(budget.total_in_use() >= body.size());
  CHECK(b.size() == body.size());
  CHECK(drain(b, 777) == body);
  b.clear();
  CHECK(budget.memory_in_use() == 0);
  CHECK(budget.total_in_use() == 0);
}

TEST_CASE("consuming while bytes still arrive keeps the order across memory and file", "[unit][body]") {
  TempDir dir;
  BodyBudget budget(1 << 20, 1 << 30);
  const std::size_t threshold = 100;
  RequestBodyBuffer b(budget, threshold, dir.path);
  const std::string body = pattern(50'000, 11);
  std::string out;
  for (std::size_t i = 0; i < body.size(); i += 333) {
    REQUIRE(b.append(body.substr(i, 333), true) == Append::Ok);
    std::string_view v = b.available();
    std::size_t n = v.size() / 2;
    out.append(v.substr(0, n));
    b.consume(n);
  }
  out += drain(b, 1 << 20);
  CHECK(out == body);
}

TEST_CASE("streaming (no spill) keeps everything in memory whatever the threshold", "[unit][body]") {
  TempDir dir;
  BodyBudget budget(1 << 20, 1 << 30);
  const std::size_t threshold = 10;
  RequestBodyBuffer b(budget, threshold, dir.path);
  REQUIRE(b.append(pattern(5000, 1), false) == Append::Ok);
  CHECK_FALSE(b.has_spilled());
  CHECK(budget.memory_in_use() == 5000);
}

TEST_CASE("past the server-wide memory limit a small body spills early", "[unit][body]") {
  TempDir dir;
  BodyBudget budget(1000, 1 << 30);
  const std::size_t threshold = 1 << 20;
  RequestBodyBuffer a(budget, threshold, dir.path), b(budget, threshold, dir.path);
  REQUIRE(a.append(pattern(900, 0), true) == Append::Ok);
  CHECK_FALSE(a.has_spilled());
  REQUIRE(b.append(pattern(200, 0), true) == Append::Ok);
  CHECK(b.has_spilled());
  CHECK(budget.memory_in_use() == 900);
  CHECK(drain(b, 64) == pattern(200, 0));
}

TEST_CASE("past the server-wide total limit append refuses and takes nothing", "[unit][body]") {
  TempDir dir;
  BodyBudget budget(1 << 20, 10'000);
  const std::size_t threshold = 1000;
  RequestBodyBuffer a(budget, threshold, dir.path), b(budget, threshold, dir.path);
  REQUIRE(a.append(pattern(6000, 0), true) == Append::Ok);
  CHECK(b.append(pattern(5000, 0), true) == Append::OverBudget);
  CHECK(b.size() == 0);
  CHECK(budget.total_in_use() == 6000);
  a.clear();
  CHECK(b.append(pattern(5000, 0), true) == Append::Ok);
  CHECK(budget.total_in_use() == 5000);
}

TEST_CASE("a temporary directory that does not exist makes a spilling append fail with IoError", "[unit][body]") {
  BodyBudget budget(1 << 20, 1 << 30);
  const std::size_t threshold = 10;
  const std::string missing = "/nonexistent/spawnd-body-test";
  RequestBodyBuffer b(budget, threshold, missing);
  REQUIRE(b.append("0123456789", true) == Append::Ok);
  CHECK(b.append("x", true) == Append::IoError);
  CHECK(budget.total_in_use() == 10);
  b.clear();
  CHECK(budget.total_in_use() == 0);
  CHECK_FALSE(spawnd::server::open_unlinked_temp_file(missing));
}
