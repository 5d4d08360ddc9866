// fuzz/fuzz_sdk_forms.cpp — the handler SDK's parsers of client input (spawnd/forms.h): urlencoded text (query
// strings and form bodies), multipart/form-data, Cookie values and media types, with small limits so that every
// limit is reached; and Request (spawnd/request.h), which runs them lazily from the meta-variables.
//
// Input: newline-separated QUERY_STRING, HTTP_COOKIE and CONTENT_TYPE, then the body.
// Asserts: a parser that succeeds stays within its limits (fields, field bytes, file bytes); a failing parser
// returns an error with a description; Request throws only HttpError(400) for bad forms and queries.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <spawnd/forms.h>
#include <spawnd/http_error.h>
#include <spawnd/params.h>
#include <spawnd/request.h>

#include "fuzz/fuzz_check.h"

namespace sdk = spawnd::sdk;

namespace {

sdk::Limits small_limits() {
  sdk::Limits limits;
  limits.max_body_bytes = 4096;
  limits.max_form_fields = 8;
  limits.max_field_bytes = 64;
  limits.max_file_bytes = 256;
  return limits;
}

void check_params(const sdk::Params& params, const sdk::Limits& limits) {
  FUZZ_CHECK(params.size() <= limits.max_form_fields);
  for (const auto& [name, value] : params) FUZZ_CHECK(name.size() + value.size() <= limits.max_field_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spawnd::fuzz::FuzzInput input(data, size);
  const std::string_view query = input.line();
  const std::string_view cookie = input.line();
  const std::string_view content_type = input.line();
  const std::string_view body = input.rest();
  const sdk::Limits limits = small_limits();

  for (std::string_view text : {query, body}) {
    sdk::Params params;
    const sdk::FormError error = sdk::parse_urlencoded(text, params, limits);
    FUZZ_CHECK(sdk::describe(error) != nullptr);
    if (error == sdk::FormError::None) check_params(params, limits);
  }

  sdk::Params cookies;
  sdk::parse_cookies(cookie, cookies);
  for (const auto& [name, value] : cookies) FUZZ_CHECK(!name.empty());

  const std::string media = sdk::media_type(content_type);
  for (char c : media) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  if (const std::optional<std::string> boundary = sdk::multipart_boundary(content_type)) {
    FUZZ_CHECK(!boundary->empty() && boundary->size() <= 70);
    sdk::Form form;
    const sdk::FormError error = sdk::parse_multipart(body, *boundary, form, limits);
    FUZZ_CHECK(sdk::describe(error) != nullptr);
    if (error == sdk::FormError::None) {
      check_params(form.fields, limits);
      FUZZ_CHECK(form.fields.size() + form.files.size() <= limits.max_form_fields);
      for (const sdk::UploadedFile& file : form.files) FUZZ_CHECK(file.data.size() <= limits.max_file_bytes);
    }
  }

  // The same input through Request, as a handler sees it.
  sdk::MetaVars meta{{"REQUEST_METHOD", "POST"},
                     {"QUERY_STRING", std::string(query)},
                     {"HTTP_COOKIE", std::string(cookie)},
                     {"CONTENT_TYPE", std::string(content_type)},
                     {"CONTENT_LENGTH", std::to_string(body.size())}};
  const sdk::Request request(std::move(meta), std::string(body.substr(0, limits.max_body_bytes)), limits);
  (void)request.cookies();
  try {
    check_params(request.query(), limits);
  } catch (const sdk::HttpError& e) {
    FUZZ_CHECK(e.status() == 400);
  }
  try {
    const sdk::Form& form = request.form();
    check_params(form.fields, limits);
  } catch (const sdk::HttpError& e) {
    FUZZ_CHECK(e.status() == 400);
  }
  return 0;
}
