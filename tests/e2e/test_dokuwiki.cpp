// End-to-end test of a whole PHP application under spawnd (issue 19): DokuWiki from Debian's `dokuwiki` package
// (root /usr/share/dokuwiki, whose lib/tpl and lib/plugins are symlinks into /var/lib/dokuwiki) behind php-fpm from
// Debian, with the command line the README's "PHP sites" section gives:
//
//   spawnd --root /usr/share/dokuwiki --index doku.php --fastcgi-pass '*.php=unix:SOCK' --deny /conf --deny /data ...
//
// Nothing of the system's DokuWiki is written: php-fpm's auto_prepend_file defines DOKU_CONF and DOKU_MAIN_CONF
// (which Debian's inc/preload.php honours) as a copy of /etc/dokuwiki in a temporary directory, whose local.php puts
// `savedir` in a copy of /var/lib/dokuwiki/data there, turns ACLs on and has one user, so that editing needs a login
// (session cookie) and the edit form's security token (sectok). dokuwiki and php-fpm are test dependencies
// (scripts/install-deps.sh); as root the copies are readable (/var/lib/dokuwiki/data is www-data's, mode 0700).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon.h"
#include "harness.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;

const std::string kDokuRoot = "/usr/share/dokuwiki";
constexpr int kReplyTimeoutMs = 30'000;  // css.php and js.php build their bundles on first use

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

// "spawnd-secret", hashed with PHP's password_hash(PASSWORD_BCRYPT) (DokuWiki's authplain verifies bcrypt).
constexpr std::string_view kUsers =
    "editor:$2y$10$Q531iLYSCzMeUeDlR2pIxeZr6.F1KU.3vqh5Jl6RIYl7jnHYsmgFy:Editor:editor@example.org:admin,user\n";

// A browser's view of one site: the cookies it was given, sent back with every request.
struct Browser {
  std::uint16_t port;
  std::map<std::string, std::string> cookies;

  HttpResponse send(const std::string& method, const std::string& target, const std::string& form = {}) {
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                      "\r\nConnection: close\r\n";
    if (!cookies.empty()) {
      raw += "Cookie: ";
      for (const auto& [name, value] : cookies) raw += name + "=" + value + "; ";
      raw.resize(raw.size() - 2);
      raw += "\r\n";
    }
    if (method == "POST") {
      raw += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + std::to_string(form.size()) +
             "\r\n";
    }
    raw += "\r\n" + form;
    HttpResponse r = request(port, raw, kReplyTimeoutMs);
    for (const auto& [name, value] : r.fields) {
      if (name.size() != 10 || !std::equal(name.begin(), name.end(), "set-cookie", [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          }))
        continue;
      const auto eq = value.find('=');
      const auto end = value.find(';');
      if (eq != std::string::npos) cookies[value.substr(0, eq)] = value.substr(eq + 1, end - eq - 1);
    }
    return r;
  }
  HttpResponse get(const std::string& target) { return send("GET", target); }
  HttpResponse post(const std::string& target, const std::string& form) { return send("POST", target, form); }
};

// The value of the last hidden input `name` in an HTML page ("" if there is none).
std::string input_value(const std::string& html, const std::string& name) {
  const std::string marker = "name=\"" + name + "\" value=\"";
  const auto at = html.rfind(marker);
  if (at == std::string::npos) return "";
  const auto begin = at + marker.size();
  return html.substr(begin, html.find('"', begin) - begin);
}

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The temporary DokuWiki configuration and data, php-fpm (2 static workers) and spawnd.
struct DokuWikiSite {
  TempDir dir;
  std::unique_ptr<PhpFpm> fpm;
  std::unique_ptr<Spawnd> server;

  DokuWikiSite() {
    {
      INFO(kDokuRoot << "/doku.php is missing: install the Debian package 'dokuwiki' (scripts/install-deps.sh does)");
      REQUIRE(fs::exists(kDokuRoot + "/doku.php"));
    }
    const std::string conf = dir.path() + "/conf/";
    const std::string data = dir.path() + "/data";
    fs::create_directories(conf);
    // /etc/dokuwiki, links resolved (acl.auth.php and users.auth.php point into /var/lib/dokuwiki/acl; replaced).
    for (const auto& entry : fs::directory_iterator("/etc/dokuwiki")) {
      std::error_code ec;
      fs::copy(entry.path(), conf + entry.path().filename().string(), fs::copy_options::recursive, ec);
    }
    {
      std::error_code ec;
      fs::copy("/var/lib/dokuwiki/data", data, fs::copy_options::recursive, ec);
      INFO("copying /var/lib/dokuwiki/data: " << ec.message() << " (the test runs as root, or as www-data)");
      REQUIRE_FALSE(ec);
    }
    dir.write("conf/local.php", "<?php\n$conf['title'] = 'spawnd test wiki';\n$conf['savedir'] = '" + data +
                                    "';\n$conf['useacl'] = 1;\n$conf['authtype'] = 'authplain';\n"
                                    "$conf['superuser'] = '@admin';\n");
    fs::remove(conf + "users.auth.php");
    fs::remove(conf + "acl.auth.php");
    dir.write("conf/users.auth.php", kUsers);
    dir.write("conf/acl.auth.php", "*\t@ALL\t1\n*\t@user\t8\n");  // everyone reads, users edit
    const std::string prepend =
        dir.write("prepend.php", "<?php\ndefine('DOKU_CONF', '" + conf + "');\ndefine('DOKU_MAIN_CONF', '" + conf +
                                     "');\n");
    fs::create_directories(dir.path() + "/sessions");
    // php.ini with Debian's extensions (conf.d: xml, ...) for DokuWiki, sessions in our directory.
    const std::string ini = dir.write("php.ini", "session.save_path = " + dir.path() + "/sessions\n");
    fpm = std::make_unique<PhpFpm>(dir, 2, "php_admin_value[auto_prepend_file] = " + prepend, ini);
    server = std::make_unique<Spawnd>(std::vector<std::string>{
        "--root", kDokuRoot, "--index", "doku.php", "--fastcgi-pass", "*.php=unix:" + fpm->sock, "--deny", "/conf",
        "--deny", "/data", "--deny", "/bin", "--deny", "/inc", "--deny", "/vendor", "--handler-timeout", "20"});
  }
  [[nodiscard]] std::uint16_t port() const { return server->port(); }
  [[nodiscard]] std::string logs() const {
    return "spawnd:\n" + server->stderr_text() + "\nphp-fpm:\n" + read_file(fpm->error_log) + read_file(fpm->log);
  }
};

std::size_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::size_t>(n);
}

}  // namespace

TEST_CASE("DokuWiki from Debian runs under spawnd and php-fpm: pages, static files, CSS/JS, edit and save, search",
          "[e2e][php-site][dokuwiki]") {
  DokuWikiSite site;
  Browser browser{site.port(), {}};
  INFO("logs:\n" << site.logs());

  // The index: "/" is doku.php (--index), which renders the start page.
  const HttpResponse home = browser.get("/");
  REQUIRE(home.status == 200);
  CHECK(contains(home.body, "spawnd test wiki"));
  CHECK(contains(home.body, "<html"));

  // Static files through the package's symlinks (lib/tpl → /var/lib/dokuwiki/lib/tpl, root's like its target).
  const HttpResponse logo = browser.get("/lib/tpl/dokuwiki/images/logo.png");
  CHECK(logo.status == 200);
  CHECK(logo.field("Content-Type") == std::optional<std::string>("image/png"));
  CHECK(logo.body.size() == file_size("/var/lib/dokuwiki/lib/tpl/dokuwiki/images/logo.png"));
  CHECK(browser.get("/lib/images/license/button/cc-by-sa.png").status == 200);

  // The generated stylesheet and script (three and more PHP entry points in a row: doku.php, css.php, js.php).
  const HttpResponse css = browser.get("/lib/exe/css.php?t=dokuwiki");
  CHECK(css.status == 200);
  CHECK(contains(css.field("Content-Type").value_or(""), "text/css"));
  CHECK(css.body.size() > 10'000);
  const HttpResponse js = browser.get("/lib/exe/js.php?t=dokuwiki");
  CHECK(js.status == 200);
  CHECK(contains(js.field("Content-Type").value_or(""), "javascript"));
  CHECK(contains(js.body, "jQuery"));

  // Viewing a page, also with the id as PATH_INFO (/doku.php/wiki:syntax).
  const HttpResponse syntax = browser.get("/doku.php?id=wiki:syntax");
  CHECK(syntax.status == 200);
  CHECK(contains(syntax.body, "Formatting Syntax"));
  const HttpResponse by_path = browser.get("/doku.php/wiki:syntax");
  CHECK(by_path.status == 200);

  // What .htaccess protects under Apache, and what does not exist.
  CHECK(browser.get("/inc/init.php").status == 403);
  CHECK(browser.get("/vendor/autoload.php").status == 403);
  CHECK(browser.get("/conf/local.php").status == 403);
  CHECK(browser.get("/no-such-script.php").status == 404);

  // Log in: the login form's token (empty before a login, DokuWiki checks tokens of logged-in users), then the
  // session and auth cookies.
  const HttpResponse login_form = browser.get("/doku.php?id=start&do=login");
  REQUIRE(login_form.status == 200);
  const HttpResponse login = browser.post(
      "/doku.php?id=start&do=login",
      "sectok=" + url_encode(input_value(login_form.body, "sectok")) + "&id=start&do=login&u=editor&p=spawnd-secret");
  CHECK(login.status == 302);
  REQUIRE(browser.cookies.contains("DokuWiki"));  // the PHP session
  REQUIRE(browser.cookies.size() >= 2);            // and DokuWiki's auth cookie

  // Edit: the form carries a security token bound to the session.
  const std::string page = "playground:spawnd";
  const HttpResponse edit = browser.get("/doku.php?id=" + page + "&do=edit");
  REQUIRE(edit.status == 200);
  REQUIRE(contains(edit.body, "dw__editform"));
  const std::string sectok = input_value(edit.body, "sectok");
  REQUIRE(sectok.size() == 32);
  const std::string form_rest = "&id=" + page + "&rev=0&date=&prefix=.&suffix=&changecheck=" +
                                input_value(edit.body, "changecheck") +
                                "&target=section&summary=via+spawnd&do%5Bsave%5D=1&wikitext=";
  // A wrong token is refused: nothing is saved.
  const HttpResponse forged = browser.post("/doku.php?id=" + page + "&do=edit",
                                           "sectok=00000000000000000000000000000000" + form_rest + "forged+text");
  CHECK(forged.status == 200);
  CHECK(contains(forged.body, "Security Token did not match"));
  const std::string page_file = site.dir.path() + "/data/pages/playground/spawnd.txt";
  CHECK_FALSE(fs::exists(page_file));
  // Save with the form's token: 302 to the page, written to the data copy.
  const HttpResponse save =
      browser.post("/doku.php?id=" + page + "&do=edit", "sectok=" + sectok + form_rest + "Saved+by+spawnd+zebrafish42");
  CHECK(save.status == 302);
  CHECK(contains(save.field("Location").value_or(""), "id=" + page));
  CHECK(read_file(page_file) == "Saved by spawnd zebrafish42");
  const HttpResponse view = browser.get("/doku.php?id=" + page);
  CHECK(view.status == 200);
  CHECK(contains(view.body, "zebrafish42"));

  // Search: the indexer runs from lib/exe/taskrunner.php (a browser loads it with every page), then the full-text
  // search finds the new page.
  CHECK(browser.get("/lib/exe/taskrunner.php?id=" + url_encode(page)).status == 200);
  const HttpResponse search = browser.get("/doku.php?do=search&id=start&q=zebrafish42");
  CHECK(search.status == 200);
  CHECK(contains(search.body, "id=" + page));

  // Nothing timed out on the way.
  CHECK_FALSE(contains(site.server->stderr_text(), "no complete response"));
  const int status = site.server->stop();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
