// server/mime.h — media type for a file name, from its extension (case-insensitive).
#pragma once

#include <string_view>

namespace spawnd::server {

// Returns the Content-Type field value for `path` (e.g. "text/html; charset=utf-8" for "index.html", "image/png"
// for "a.PNG"). Text types carry "; charset=utf-8". Unknown or missing extensions give "application/octet-stream".
// The table covers the common web types: html, css, js/mjs, json, txt, xml, svg, png, jpg/jpeg, gif, webp, avif, ico,
// woff/woff2, ttf, otf, pdf, wasm, mp4, webm, mp3, ogg, wav, zip, gz, tar, csv, md, map.
[[nodiscard]] std::string_view mime_type_for(std::string_view path) noexcept;

}  // namespace spawnd::server
