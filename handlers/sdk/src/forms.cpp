// forms.cpp — Params and the pure parsers of spawnd/forms.h. Every loop is bounded by its input and by Limits;
// nothing here allocates more than the (already size-capped) input it is given.
#include <spawnd/forms.h>

#include <common/uri.h>

#include "ascii.h"

namespace spawnd::sdk {

using detail::ascii_lower;
using detail::iequals;
using detail::trim_ows;

// ---- Params, Form

std::optional<std::string_view> Params::get(std::string_view name) const noexcept {
  for (const Entry& e : entries_)
    if (e.first == name) return std::string_view(e.second);
  return std::nullopt;
}

std::string_view Params::get_or(std::string_view name, std::string_view fallback) const noexcept {
  auto v = get(name);
  return v ? *v : fallback;
}

std::vector<std::string_view> Params::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Entry& e : entries_)
    if (e.first == name) out.emplace_back(e.second);
  return out;
}

const UploadedFile* Form::file(std::string_view field) const noexcept {
  for (const UploadedFile& f : files)
    if (f.field == field) return &f;
  return nullptr;
}

// ---- errors

const char* describe(FormError error) noexcept {
  switch (error) {
    case FormError::None: return "no error";
    case FormError::BadEscape: return "malformed percent-escape";
    case FormError::TooManyFields: return "too many form fields";
    case FormError::FieldTooLarge: return "form field too large";
    case FormError::FileTooLarge: return "uploaded file too large";
    case FormError::MissingBoundary: return "multipart/form-data without a boundary";
    case FormError::Malformed: return "malformed multipart/form-data body";
    case FormError::Truncated: return "truncated multipart/form-data body";
  }
  return "bad form";
}

// ---- application/x-www-form-urlencoded

FormError parse_urlencoded(std::string_view text, Params& out, const Limits& limits) {
  size_t count = 0;
  std::string name, value;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    if (++count > limits.max_form_fields) return FormError::TooManyFields;
    size_t eq = pair.find('=');
    std::string_view raw_name = pair.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    // Decoding never grows text, so this bounds the allocation before we make it.
    if (raw_name.size() + raw_value.size() > 3 * limits.max_field_bytes) return FormError::FieldTooLarge;
    if (!percent_decode(raw_name, name, true) || !percent_decode(raw_value, value, true))
      return FormError::BadEscape;
    if (name.size() + value.size() > limits.max_field_bytes) return FormError::FieldTooLarge;
    out.add(std::move(name), std::move(value));
    name.clear();
    value.clear();
  }
  return FormError::None;
}

// ---- media types and parameters (RFC 9110 §5.6.6, §8.3.1)

std::string media_type(std::string_view content_type) {
  std::string_view type = trim_ows(content_type.substr(0, content_type.find(';')));
  std::string out(type);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

namespace {

// Reads one `;`-separated parameter from `rest` (which starts at or before the ';'). Returns false at the end.
// Values may be a token or a quoted-string; a quoted-string's backslash escapes are undone.
bool next_parameter(std::string_view& rest, std::string_view& name, std::string& value) {
  for (;;) {
    rest = trim_ows(rest);
    if (rest.empty()) return false;
    if (rest.front() != ';') {
      // Junk between parameters: skip to the next ';' (lenient, as browsers are).
      size_t semi = rest.find(';');
      if (semi == std::string_view::npos) return false;
      rest.remove_prefix(semi);
    }
    rest.remove_prefix(1);
    rest = trim_ows(rest);
    size_t eq = rest.find_first_of("=;");
    if (eq == std::string_view::npos || rest[eq] == ';') {  // a parameter without '=': skip it
      if (eq == std::string_view::npos) return false;
      rest.remove_prefix(eq);
      continue;
    }
    name = trim_ows(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    rest = trim_ows(rest);
    value.clear();
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i]);
      }
      rest.remove_prefix(i < rest.size() ? i + 1 : i);  // past the closing quote, if any
    } else {
      size_t end = rest.find(';');
      value.assign(trim_ows(rest.substr(0, end)));
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    }
    return true;
  }
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  size_t semi = content_type.find(';');
  if (semi == std::string_view::npos) return std::nullopt;
  std::string_view rest = content_type.substr(semi);
  std::string_view name;
  std::string value;
  while (next_parameter(rest, name, value)) {
    if (!iequals(name, "boundary")) continue;
    if (value.empty() || value.size() > 70) return std::nullopt;  // RFC 2046 §5.1.1: 1*70 bchars
    return value;
  }
  return std::nullopt;
}

// ---- multipart/form-data

namespace {

constexpr size_t kMaxPartHeaderBytes = 8 * 1024;

struct PartHeaders {
  bool has_disposition = false;
  bool is_form_data = false;
  bool has_name = false;
  bool has_filename = false;
  std::string name;
  std::string filename;
  std::string content_type;
};

bool parse_part_headers(std::string_view block, PartHeaders& out) {
  while (!block.empty()) {
    size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view field = line.substr(0, colon);
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals(field, "Content-Disposition")) {
      out.has_disposition = true;
      size_t semi = value.find(';');
      out.is_form_data = iequals(trim_ows(value.substr(0, semi)), "form-data");
      if (semi == std::string_view::npos) continue;
      std::string_view rest = value.substr(semi);
      std::string_view pname;
      std::string pvalue;
      while (next_parameter(rest, pname, pvalue)) {
        if (iequals(pname, "name")) {
          out.name = pvalue;
          out.has_name = true;
        } else if (iequals(pname, "filename")) {
          out.filename = pvalue;
          out.has_filename = true;
        }
      }
    } else if (iequals(field, "Content-Type")) {
      out.content_type.assign(value);
    }
  }
  return true;
}

}  // namespace

FormError parse_multipart(std::string_view body, std::string_view boundary, Form& out, const Limits& limits) {
  if (boundary.empty()) return FormError::MissingBoundary;
  std::string delimiter = "\r\n--";
  delimiter.append(boundary);
  const std::string_view dash_boundary = std::string_view(delimiter).substr(2);  // "--boundary"

  // The first delimiter may open the body or follow a preamble (RFC 2046 §5.1.1).
  size_t pos;
  if (body.substr(0, dash_boundary.size()) == dash_boundary) {
    pos = dash_boundary.size();
  } else {
    pos = body.find(delimiter);
    if (pos == std::string_view::npos) return FormError::Malformed;
    pos += delimiter.size();
  }

  size_t count = 0;
  for (;;) {
    std::string_view rest = body.substr(pos);
    if (rest.substr(0, 2) == "--") return FormError::None;  // close-delimiter; the epilogue is ignored
    while (!rest.empty() && detail::is_ows(rest.front())) rest.remove_prefix(1);  // transport-padding
    if (rest.empty()) return FormError::Truncated;
    if (rest.substr(0, 2) != "\r\n") return rest.size() < 2 ? FormError::Truncated : FormError::Malformed;
    rest.remove_prefix(2);

    // Part headers end at an empty line; a part may have none at all (then it is rejected below: no name).
    std::string_view header_block;
    if (rest.substr(0, 2) == "\r\n") {
      rest.remove_prefix(2);
    } else {
      // Look no further than the cap, so a headerless run of junk costs O(cap), not O(body).
      size_t end = rest.substr(0, kMaxPartHeaderBytes + 4).find("\r\n\r\n");
      if (end == std::string_view::npos)
        return rest.size() >= kMaxPartHeaderBytes + 4 ? FormError::Malformed : FormError::Truncated;
      header_block = rest.substr(0, end);
      rest.remove_prefix(end + 4);
    }
    size_t content_end = rest.find(delimiter);
    if (content_end == std::string_view::npos) return FormError::Truncated;
    std::string_view content = rest.substr(0, content_end);

    PartHeaders part;
    if (!parse_part_headers(header_block, part)) return FormError::Malformed;
    if (!part.has_disposition || !part.is_form_data || !part.has_name) return FormError::Malformed;
    if (++count > limits.max_form_fields) return FormError::TooManyFields;
    if (part.has_filename) {
      if (content.size() > limits.max_file_bytes) return FormError::FileTooLarge;
      out.files.push_back(UploadedFile{std::move(part.name), std::move(part.filename),
                                       part.content_type.empty() ? std::string("text/plain")
                                                                 : std::move(part.content_type),
                                       std::string(content)});
    } else {
      if (part.name.size() + content.size() > limits.max_field_bytes) return FormError::FieldTooLarge;
      out.fields.add(std::move(part.name), std::string(content));
    }
    pos = static_cast<size_t>(rest.data() - body.data()) + content_end + delimiter.size();
  }
}

// ---- Cookie

void parse_cookies(std::string_view header, Params& out) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = trim_ows(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = trim_ows(pair.substr(0, eq));
    std::string_view value = trim_ows(pair.substr(eq + 1));
    if (name.empty()) continue;
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    out.add(std::string(name), std::string(value));
  }
}

}  // namespace spawnd::sdk
