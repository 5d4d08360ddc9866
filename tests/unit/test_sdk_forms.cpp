// Tables for the SDK's pure parsers (handlers/sdk/include/spawnd/forms.h): urlencoded text and query strings,
// multipart/form-data, Cookie headers, media types, including malformed and over-limit input.
#include <catch2/catch.hpp>

#include <spawnd/forms.h>

#include <string>
#include <utility>
#include <vector>

using spawnd::sdk::Form;
using spawnd::sdk::FormError;
using spawnd::sdk::Limits;
using spawnd::sdk::Params;
using Pairs = std::vector<std::pair<std::string, std::string>>;

namespace {

Pairs to_pairs(const Params& p) { return Pairs(p.begin(), p.end()); }

}  // namespace

TEST_CASE("urlencoded text splits on & and = and decodes + and percent-escapes", "[unit][sdk]") {
  struct Row {
    const char* in;
    Pairs want;
  };
  const Row rows[] = {
      {"", {}},
      {"a=1", {{"a", "1"}}},
      {"a=1&b=2", {{"a", "1"}, {"b", "2"}}},
      {"a=1&a=2", {{"a", "1"}, {"a", "2"}}},
      {"a", {{"a", ""}}},
      {"a=", {{"a", ""}}},
      {"=v", {{"", "v"}}},
      {"a=1&&b=2&", {{"a", "1"}, {"b", "2"}}},
      {"a=b=c", {{"a", "b=c"}}},
      {"q=hello+world", {{"q", "hello world"}}},
      {"q=%2B%20%26%3D", {{"q", "+ &="}}},
      {"%E2%82%AC=%e2%82%ac", {{"\xE2\x82\xAC", "\xE2\x82\xAC"}}},
      {"n=%3Cscript%3E", {{"n", "<script>"}}},
      {"semi=a;b", {{"semi", "a;b"}}},
  };
  for (const Row& row : rows) {
    INFO("input: " << row.in);
    Params out;
    REQUIRE(parse_urlencoded(row.in, out, Limits{}) == FormError::None);
    CHECK(to_pairs(out) == row.want);
  }
}

TEST_CASE("urlencoded text with a bad percent-escape is rejected", "[unit][sdk]") {
  for (const char* in : {"a=%", "a=%4", "a=%zz", "a=%G0", "%=1", "a=1&b=%2"}) {
    INFO("input: " << in);
    Params out;
    CHECK(parse_urlencoded(in, out, Limits{}) == FormError::BadEscape);
  }
}

TEST_CASE("urlencoded text over the field-count or field-size limit is rejected", "[unit][sdk]") {
  Limits limits;
  limits.max_form_fields = 3;
  limits.max_field_bytes = 8;
  Params out;
  CHECK(parse_urlencoded("a=1&b=2&c=3", out, limits) == FormError::None);
  out.clear();
  CHECK(parse_urlencoded("a=1&b=2&c=3&d=4", out, limits) == FormError::TooManyFields);
  out.clear();
  CHECK(parse_urlencoded("names=1234", out, limits) == FormError::FieldTooLarge);  // 5 + 4 bytes > 8
  out.clear();
  CHECK(parse_urlencoded("name=1234", out, limits) == FormError::None);  // exactly 8
  out.clear();
  // The limit is on decoded bytes: 6 escapes decode to 2 + 2 bytes.
  CHECK(parse_urlencoded("%41%41=%42%42", out, limits) == FormError::None);
  CHECK(out.get("AA") == "BB");
}

TEST_CASE("Params keeps order and duplicates", "[unit][sdk]") {
  Params p;
  p.add("a", "1");
  p.add("b", "2");
  p.add("a", "3");
  CHECK(p.size() == 3);
  CHECK(p.get("a") == "1");
  CHECK(p.get_all("a") == std::vector<std::string_view>{"1", "3"});
  CHECK_FALSE(p.get("A").has_value());  // names are case-sensitive
  CHECK(p.get_or("missing", "dflt") == "dflt");
  CHECK(p.contains("b"));
}

TEST_CASE("Cookie headers parse leniently", "[unit][sdk]") {
  struct Row {
    const char* in;
    Pairs want;
  };
  const Row rows[] = {
      {"", {}},
      {"a=1", {{"a", "1"}}},
      {"a=1; b=2", {{"a", "1"}, {"b", "2"}}},
      {"a=1;b=2", {{"a", "1"}, {"b", "2"}}},
      {"  a = 1 ;  b=2  ", {{"a", "1"}, {"b", "2"}}},
      {"s=\"quoted\"", {{"s", "quoted"}}},
      {"s=\"", {{"s", "\""}}},
      {"flag; a=1", {{"a", "1"}}},         // no '=': skipped
      {"=nameless; a=1", {{"a", "1"}}},    // empty name: skipped
      {"a=x=y", {{"a", "x=y"}}},
      {"a=%3C", {{"a", "%3C"}}},           // no decoding (RFC 6265 defines none)
      {";;a=1;;", {{"a", "1"}}},
  };
  for (const Row& row : rows) {
    INFO("input: " << row.in);
    Params out;
    spawnd::sdk::parse_cookies(row.in, out);
    CHECK(to_pairs(out) == row.want);
  }
}

TEST_CASE("media_type lower-cases and drops parameters", "[unit][sdk]") {
  CHECK(spawnd::sdk::media_type("Text/HTML; charset=utf-8") == "text/html");
  CHECK(spawnd::sdk::media_type(" application/x-www-form-urlencoded ") == "application/x-www-form-urlencoded");
  CHECK(spawnd::sdk::media_type("") == "");
}

TEST_CASE("multipart boundary comes from the Content-Type parameter", "[unit][sdk]") {
  using spawnd::sdk::multipart_boundary;
  CHECK(multipart_boundary("multipart/form-data; boundary=abc") == "abc");
  CHECK(multipart_boundary("multipart/form-data; charset=x; BOUNDARY=abc") == "abc");
  CHECK(multipart_boundary("multipart/form-data; boundary=\"a b;c\"") == "a b;c");
  CHECK(multipart_boundary("multipart/form-data;boundary=----WebKitFormBoundary7MA4YWxk") ==
        "----WebKitFormBoundary7MA4YWxk");
  CHECK_FALSE(multipart_boundary("multipart/form-data").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=\"\"").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'x')).has_value());
  CHECK(multipart_boundary("multipart/form-data; boundary=" + std::string(70, 'x')) == std::string(70, 'x'));
}

namespace {

const char kTwoParts[] =
    "preamble, ignored\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"name\"\r\n"
    "\r\n"
    "Ada\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n"
    "Content-Type: text/markdown\r\n"
    "\r\n"
    "line 1\r\nline 2 --XyZ not a delimiter\r\n"
    "--XyZ--\r\n"
    "epilogue, ignored";

}  // namespace

TEST_CASE("multipart/form-data with a field and a file", "[unit][sdk]") {
  Form form;
  REQUIRE(parse_multipart(kTwoParts, "XyZ", form, Limits{}) == FormError::None);
  CHECK(to_pairs(form.fields) == Pairs{{"name", "Ada"}});
  REQUIRE(form.files.size() == 1);
  const auto* f = form.file("upload");
  REQUIRE(f != nullptr);
  CHECK(f->filename == "a.txt");
  CHECK(f->content_type == "text/markdown");
  CHECK(f->data == "line 1\r\nline 2 --XyZ not a delimiter");
  CHECK(form.file("name") == nullptr);
}

TEST_CASE("multipart/form-data edge cases that are valid", "[unit][sdk]") {
  SECTION("no preamble, empty value, file without Content-Type, transport padding") {
    const std::string body =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
        "\r\n--b  \r\n"
        "Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n"
        "\r\n--b--";
    Form form;
    REQUIRE(parse_multipart(body, "b", form, Limits{}) == FormError::None);
    CHECK(form.fields.get("empty") == "");
    REQUIRE(form.files.size() == 1);
    CHECK(form.files[0].filename.empty());
    CHECK(form.files[0].content_type == "text/plain");
    CHECK(form.files[0].data.empty());
  }
  SECTION("an empty form: only the close-delimiter") {
    Form form;
    CHECK(parse_multipart("--b--\r\n", "b", form, Limits{}) == FormError::None);
    CHECK(form.fields.empty());
  }
  SECTION("a quoted name with an escaped quote, binary content") {
    const std::string body = std::string("--b\r\nContent-Disposition: form-data; name=\"a\\\"q\"\r\n\r\n") +
                             std::string("\0\xff\r\n", 4) + "\r\n--b--";
    Form form;
    REQUIRE(parse_multipart(body, "b", form, Limits{}) == FormError::None);
    CHECK(form.fields.get("a\"q") == std::string("\0\xff\r\n", 4));
  }
}

TEST_CASE("malformed or truncated multipart/form-data is rejected", "[unit][sdk]") {
  struct Row {
    const char* name;
    std::string body;
    FormError want;
  };
  const Row rows[] = {
      {"empty body", "", FormError::Malformed},
      {"no delimiter at all", "just some text", FormError::Malformed},
      {"wrong boundary", "--other\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--other--",
       FormError::Malformed},
      {"ends after the first delimiter", "--b", FormError::Truncated},
      {"ends inside part headers", "--b\r\nContent-Disposition: form-data; na", FormError::Truncated},
      {"ends inside content", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhalf a val",
       FormError::Truncated},
      {"no close-delimiter", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b",
       FormError::Truncated},
      {"junk after delimiter", "--bjunk\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--",
       FormError::Malformed},
      {"part without Content-Disposition", "--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--", FormError::Malformed},
      {"part without headers", "--b\r\n\r\nv\r\n--b--", FormError::Malformed},
      {"disposition without name", "--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--", FormError::Malformed},
      {"disposition not form-data", "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--b--",
       FormError::Malformed},
      {"header line without colon", "--b\r\nContent-Disposition form-data\r\n\r\nv\r\n--b--", FormError::Malformed},
      {"oversized part headers", "--b\r\nX: " + std::string(9000, 'h') + "\r\n\r\nv\r\n--b--", FormError::Malformed},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    Form form;
    CHECK(parse_multipart(row.body, "b", form, Limits{}) == row.want);
  }
  Form form;
  CHECK(parse_multipart("--\r\n", "", form, Limits{}) == FormError::MissingBoundary);
}

TEST_CASE("multipart/form-data over a limit is rejected", "[unit][sdk]") {
  auto part = [](const std::string& name, const std::string& value, bool file = false) {
    std::string p = "--b\r\nContent-Disposition: form-data; name=\"" + name + "\"";
    if (file) p += "; filename=\"f.bin\"";
    return p + "\r\n\r\n" + value + "\r\n";
  };
  Limits limits;
  limits.max_form_fields = 2;
  limits.max_field_bytes = 10;
  limits.max_file_bytes = 16;
  Form form;
  CHECK(parse_multipart(part("a", "1") + part("b", "2") + "--b--", "b", form, limits) == FormError::None);
  form = {};
  CHECK(parse_multipart(part("a", "1") + part("b", "2") + part("c", "3") + "--b--", "b", form, limits) ==
        FormError::TooManyFields);
  form = {};
  CHECK(parse_multipart(part("field", "123456") + "--b--", "b", form, limits) == FormError::FieldTooLarge);
  form = {};
  CHECK(parse_multipart(part("f", std::string(16, 'x'), true) + "--b--", "b", form, limits) == FormError::None);
  form = {};
  CHECK(parse_multipart(part("f", std::string(17, 'x'), true) + "--b--", "b", form, limits) ==
        FormError::FileTooLarge);
}

TEST_CASE("every FormError has a description", "[unit][sdk]") {
  for (FormError e : {FormError::None, FormError::BadEscape, FormError::TooManyFields, FormError::FieldTooLarge,
                      FormError::FileTooLarge, FormError::MissingBoundary, FormError::Malformed, FormError::Truncated})
    CHECK(std::string(spawnd::sdk::describe(e)).size() > 3);
}
