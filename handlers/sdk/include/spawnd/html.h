// spawnd/html.h — HTML escaping for text a handler puts into a page.
#pragma once

#include <string>
#include <string_view>

namespace spawnd::sdk {

// Escapes the five characters that matter in HTML text and in quoted attribute values: & < > " '
// (as &amp; &lt; &gt; &quot; &#39;). Safe for element content and for "..." or '...' attributes; NOT for
// unquoted attributes, URLs in href (check the scheme yourself), <script> or <style> content. Bytes are
// otherwise passed through unchanged (invalid UTF-8 included).
[[nodiscard]] std::string html_escape(std::string_view text);

// Appends html_escape(text) to `out` without a temporary.
void append_html_escaped(std::string& out, std::string_view text);

}  // namespace spawnd::sdk
