// env — shows the request as a handler sees it: meta-variables, header fields, query parameters, cookies and form
// fields, each as an HTML table with every value escaped. A debugging aid for handler authors: point a form at
// /cgi-bin/env to see what it sends. Malformed input is shown as an error row instead of failing the page.
#include <spawnd/handler.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sdk = spawnd::sdk;

namespace {

void row(std::string& out, std::string_view name, std::string_view value) {
  out += "<tr><th>";
  sdk::append_html_escaped(out, name);
  out += "</th><td>";
  sdk::append_html_escaped(out, value);
  out += "</td></tr>\n";
}

void section(std::string& out, std::string_view title) {
  out += "<h2>";
  sdk::append_html_escaped(out, title);
  out += "</h2>\n<table>\n";
}

void end_section(std::string& out, bool was_empty) {
  if (was_empty) out += "<tr><td colspan=\"2\"><em>none</em></td></tr>\n";
  out += "</table>\n";
}

void params_section(std::string& out, std::string_view title, const sdk::Params& params) {
  section(out, title);
  for (const auto& [name, value] : params) row(out, name, value);
  end_section(out, params.empty());
}

void error_section(std::string& out, std::string_view title, const sdk::HttpError& e) {
  section(out, title);
  row(out, "error", e.what());
  end_section(out, false);
}

sdk::Response handle(sdk::Request& req, sdk::Context&) {
  std::string out =
      "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n<title>spawnd env</title>\n"
      "<link rel=\"stylesheet\" href=\"/style.css\">\n<h1>Request as the handler sees it</h1>\n";

  section(out, "Request");
  row(out, "method", req.method());
  row(out, "path", req.path());
  row(out, "SCRIPT_NAME", req.script_name());
  row(out, "PATH_INFO", req.path_info());
  row(out, "QUERY_STRING", req.query_string());
  row(out, "body bytes", std::to_string(req.body().size()));
  end_section(out, false);

  std::vector<std::pair<std::string_view, std::string_view>> meta;
  for (const auto& [name, value] : req.meta_vars()) meta.emplace_back(name, value);
  std::sort(meta.begin(), meta.end());
  section(out, "Meta-variables (RFC 3875 §4.1)");
  for (const auto& [name, value] : meta) row(out, name, value);
  end_section(out, meta.empty());

  auto headers = req.headers();
  section(out, "Header fields");
  for (const auto& [name, value] : headers) row(out, name, value);
  end_section(out, headers.empty());

  try {
    params_section(out, "Query parameters", req.query());
  } catch (const sdk::HttpError& e) {
    error_section(out, "Query parameters", e);
  }

  params_section(out, "Cookies", req.cookies());

  try {
    const sdk::Form& form = req.form();
    params_section(out, "Form fields", form.fields);
    section(out, "Uploaded files");
    for (const sdk::UploadedFile& f : form.files)
      row(out, f.field, f.filename + " (" + f.content_type + ", " + std::to_string(f.data.size()) + " bytes)");
    end_section(out, form.files.empty());
  } catch (const sdk::HttpError& e) {
    error_section(out, "Form fields", e);
  }

  out += "</html>\n";
  return sdk::Response::html(std::move(out));
}

}  // namespace

SPAWND_HANDLER(handle);
