// The files of a web UI held in a binary (the hub's dashboard, hub/web_ui.h;
// the node's tablet UI, node/web_ui.h), written at build time by
// cmake/embed.cmake, and how both are served: GET / gives index.html, GET
// /web/NAME the other files, each with the same strict headers. The
// Content-Security-Policy allows scripts and styles from the server only (no
// inline script, handler or style attribute), fetches to the server only, and
// no framing; nosniff, no referrer, and nothing kept in a cache (the pages
// show participant data).
// Header-only: the server type is a template parameter, so this library
// links no HTTP library (cpp-httplib's httplib::Server in practice).
// Thread-safety: constants, and routes mounted once before the server starts.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace irt::shared {

struct WebAsset {
  std::string_view name;   // "index.html", "app.js", ...
  std::string_view bytes;
};

inline constexpr std::string_view kWebContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

// Every header a web UI's file is sent with.
inline const std::vector<std::pair<std::string, std::string>>& web_headers() {
  static const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Security-Policy", std::string(kWebContentSecurityPolicy)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Frame-Options", "DENY"},
      {"Cache-Control", "no-store"}};
  return headers;
}

inline std::string web_content_type(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

// GET / (index.html) and GET /web/NAME (every other file of `assets`) on
// `server`; an unknown name is a plain-text 404 that names `what`.
template <class Server>
void mount_web_assets(Server& server, const std::vector<WebAsset>& assets, std::string what) {
  auto find = [&assets](std::string_view name) -> const WebAsset* {
    for (const auto& a : assets)
      if (a.name == name) return &a;
    return nullptr;
  };
  auto send = [](auto& res, const WebAsset& asset) {
    res.set_content(std::string(asset.bytes), web_content_type(asset.name));
    for (const auto& [k, v] : web_headers()) res.set_header(k, v);
  };
  server.Get("/", [find, send](const auto&, auto& res) { send(res, *find("index.html")); });
  server.Get("/web/([A-Za-z0-9._-]+)", [find, send, what](const auto& req, auto& res) {
    const auto* asset = find(req.matches[1].str());
    if (!asset || asset->name == "index.html") {
      res.status = 404;
      res.set_content("no such file of the " + what + "\n", "text/plain; charset=utf-8");
      res.set_header("X-Content-Type-Options", "nosniff");
      return;
    }
    send(res, *asset);
  });
}

}  // namespace irt::shared
