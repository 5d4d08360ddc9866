// spawnd/params.h — Params (ordered name/value pairs), Form and UploadedFile, the shapes the SDK's parsers fill.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spawnd::sdk {

// Ordered name/value pairs as they arrived; a name may repeat ("a=1&a=2" gives two entries). Names compare
// exactly (byte-wise, case-sensitive), as query parameters, form fields and cookie names do. Lookups are linear,
// which is the fast choice for the handful of entries a request carries.
class Params {
 public:
  using Entry = std::pair<std::string, std::string>;
  using const_iterator = std::vector<Entry>::const_iterator;

  // The value of the first entry named `name`, or nullopt. The view is valid while this Params lives unchanged.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;
  // The first value, or `fallback` when `name` is absent.
  [[nodiscard]] std::string_view get_or(std::string_view name, std::string_view fallback) const noexcept;
  // Every value of `name`, in arrival order.
  [[nodiscard]] std::vector<std::string_view> get_all(std::string_view name) const;
  [[nodiscard]] bool contains(std::string_view name) const noexcept { return get(name).has_value(); }

  void add(std::string name, std::string value) { entries_.emplace_back(std::move(name), std::move(value)); }
  void clear() noexcept { entries_.clear(); }

  [[nodiscard]] size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] const_iterator begin() const noexcept { return entries_.begin(); }
  [[nodiscard]] const_iterator end() const noexcept { return entries_.end(); }
  [[nodiscard]] const Entry& operator[](size_t i) const noexcept { return entries_[i]; }

 private:
  std::vector<Entry> entries_;
};

// One file part of a multipart/form-data body (RFC 7578 §4.2): a part whose Content-Disposition has a filename.
struct UploadedFile {
  std::string field;         // the part's name parameter
  std::string filename;      // as the client sent it (may be empty, may contain a path: never trust it as one)
  std::string content_type;  // the part's Content-Type, "text/plain" when absent (RFC 7578 §4.4)
  std::string data;          // the raw content, at most Limits::max_file_bytes
};

// A parsed form body: plain fields, plus files for multipart/form-data.
struct Form {
  Params fields;
  std::vector<UploadedFile> files;

  // The first file uploaded under `field`, or nullptr.
  [[nodiscard]] const UploadedFile* file(std::string_view field) const noexcept;
};

// Caps on what a request may make the handler hold in memory. Exceeding a form cap is the client's fault: 400.
// A body longer than max_body_bytes is refused before it is read: 413 (RFC 9110 §15.5.14).
struct Limits {
  size_t max_body_bytes = size_t{8} << 20;   // whole message body, read from stdin per CONTENT_LENGTH
  size_t max_form_fields = 256;              // fields + files in one form, or parameters in one query string
  size_t max_field_bytes = size_t{64} << 10; // one decoded name + value (not files)
  size_t max_file_bytes = size_t{4} << 20;   // one uploaded file's content
};

}  // namespace spawnd::sdk
