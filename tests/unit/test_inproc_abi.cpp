// The in-process C ABI (spawnd/inproc_abi.h) as the built handler shared objects implement it: loaded with dlopen()
// as spawnd loads them, called directly, the output checked byte for byte against what the CGI runtime would print.
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <spawnd/inproc_abi.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>


namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;

// A handler shared object from the build, loaded once per test.
class Loaded {
 public:
  explicit Loaded(const std::string& name) {
    std::string path = std::string(SPAWND_CGI_BIN_DIR) + "/" + name + ".so";
    dl_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    INFO(path << ": " << (dl_ ? "" : ::dlerror()));
    REQUIRE(dl_ != nullptr);
    void* sym = ::dlsym(dl_, SPAWND_INPROC_ENTRY_SYMBOL);
    REQUIRE(sym != nullptr);
    abi_ = reinterpret_cast<spawnd_inproc_entry_fn>(sym)();
    REQUIRE(abi_ != nullptr);
  }
  ~Loaded() {
    if (context_ != nullptr) abi_->context_free(context_);
    ::dlclose(dl_);
  }
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;

  [[nodiscard]] const spawnd_inproc_handler& abi() const { return *abi_; }

  void open(const Vars& base) {
    std::vector<spawnd_inproc_var> vars = as_vars(base);
    context_ = abi_->context_new(vars.data(), vars.size());
    REQUIRE(context_ != nullptr);
  }

  // Calls handle(); returns its result and leaves the output in `out`. `fail_writes`: the write callback refuses.
  int call(const Vars& meta, std::string_view body, std::string& out, bool fail_writes = false) {
    std::vector<spawnd_inproc_var> vars = as_vars(meta);
    spawnd_inproc_request req{vars.data(), vars.size(), body.data(), body.size()};
    out.clear();
    return abi_->handle(context_, &req, fail_writes ? &refuse : &append, &out);
  }

 private:
  static std::vector<spawnd_inproc_var> as_vars(const Vars& in) {
    std::vector<spawnd_inproc_var> out;
    for (const auto& [n, v] : in) out.push_back({n.data(), n.size(), v.data(), v.size()});
    return out;
  }
  static int append(void* arg, const void* data, size_t size) {
    static_cast<std::string*>(arg)->append(static_cast<const char*>(data), size);
    return 0;
  }
  static int refuse(void*, const void*, size_t) { return 1; }

  void* dl_ = nullptr;
  const spawnd_inproc_handler* abi_ = nullptr;
  void* context_ = nullptr;
};

Vars get(std::string path_info = {}, std::string query = {}) {
  Vars v{{"GATEWAY_INTERFACE", "CGI/1.1"}, {"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/cgi-bin/kv"},
         {"QUERY_STRING", std::move(query)}};
  if (!path_info.empty()) v.emplace_back("PATH_INFO", std::move(path_info));
  return v;
}

Vars with_body(std::string method, std::string path_info, std::string length) {
  Vars v = get(std::move(path_info));
  v[1].second = std::move(method);
  v.emplace_back("CONTENT_TYPE", "application/json");
  v.emplace_back("CONTENT_LENGTH", std::move(length));
  return v;
}

}  // namespace

TEST_CASE("a handler shared object describes itself with ABI version 1 and its name", "[unit][inproc]") {
  Loaded hello("hello");
  CHECK(hello.abi().abi_version == SPAWND_INPROC_ABI_VERSION);
  CHECK(std::string(hello.abi().name) == "hello");
  Loaded kv("kv");
  CHECK(std::string(kv.abi().name) == "kv");
}

TEST_CASE("an in-process call writes exactly the CGI response the CGI runtime prints", "[unit][inproc]") {
  Loaded hello("hello");
  hello.open({});
  std::string out;
  REQUIRE(hello.call(get(), {}, out) == 0);
  CHECK(out ==
        "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, world!\n");

  // HEAD: the head with the GET body's length, no body (RFC 9110 §9.3.2).
  Vars head = get();
  head[1].second = "HEAD";
  REQUIRE(hello.call(head, {}, out) == 0);
  CHECK(out.ends_with("Content-Length: 14\r\n\r\n"));
}

TEST_CASE("an in-process call refuses a bad CONTENT_LENGTH as the CGI runtime does", "[unit][inproc]") {
  Loaded kv("kv");
  kv.open({});
  std::string out;
  REQUIRE(kv.call(with_body("PUT", "/k", "12x"), "{}", out) == 0);
  CHECK(out.starts_with("Status: 400 Bad Request\r\n"));
  CHECK(out.find("malformed CONTENT_LENGTH") != std::string::npos);
  REQUIRE(kv.call(with_body("PUT", "/k", "10"), "{}", out) == 0);
  CHECK(out.starts_with("Status: 400 Bad Request\r\n"));
  CHECK(out.find("shorter than CONTENT_LENGTH") != std::string::npos);
}

TEST_CASE("an in-process context keeps its database connection across calls", "[unit][inproc]") {
  char tmpl[] = "/tmp/spawnd-inproc-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  {
    Loaded kv("kv");
    kv.open({{"SPAWND_DB", dir + "/site.db"}, {"SPAWND_PRAGMAS", "default"}});
    std::string out;
    REQUIRE(kv.call(with_body("PUT", "/apple", "15"), R"({"color":"red"})", out) == 0);
    CHECK(out.starts_with("Status: 201 Created\r\n"));
    REQUIRE(kv.call(get("/apple"), {}, out) == 0);
    CHECK(out.starts_with("Status: 200 OK\r\n"));
    CHECK(out.ends_with("\r\n\r\n{\"color\":\"red\"}"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("an in-process handler without a database answers 500 through the ABI, never throws across it",
          "[unit][inproc]") {
  Loaded kv("kv");
  kv.open({});  // no SPAWND_DB: ctx.db() throws inside the handler
  std::string out;
  REQUIRE(kv.call(get("/apple"), {}, out) == 0);
  CHECK(out.starts_with("Status: 500 Internal Server Error\r\n"));
}

TEST_CASE("an in-process call whose output is refused returns nonzero", "[unit][inproc]") {
  Loaded hello("hello");
  hello.open({});
  std::string out;
  CHECK(hello.call(get(), {}, out, true) != 0);
}
