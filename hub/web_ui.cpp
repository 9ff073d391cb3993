#include "hub/web_ui.h"

#include <httplib.h>

#include <string>

namespace irt::hub {

namespace {

std::string content_type(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

void send(httplib::Response& res, const WebAsset& asset) {
  res.set_content(std::string(asset.bytes), content_type(asset.name));
  res.set_header("Content-Security-Policy", std::string(kWebContentSecurityPolicy));
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Cache-Control", "no-store");
}

const WebAsset* find_asset(std::string_view name) {
  for (const auto& a : web_assets())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace

void mount_web_ui(httplib::Server& server) {
  server.Get("/", [](const httplib::Request&, httplib::Response& res) { send(res, *find_asset("index.html")); });
  server.Get("/web/([A-Za-z0-9._-]+)", [](const httplib::Request& req, httplib::Response& res) {
    const auto* asset = find_asset(req.matches[1].str());
    if (!asset || asset->name == "index.html") {
      res.status = 404;
      res.set_content("no such file of the dashboard\n", "text/plain; charset=utf-8");
      res.set_header("X-Content-Type-Options", "nosniff");
      return;
    }
    send(res, *asset);
  });
}

}  // namespace irt::hub
