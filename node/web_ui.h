// The node's tablet web UI: one page of plain HTML, CSS and JavaScript held in
// the binary and served at "/", talking only to the node's own /api/v1. It
// shows connectivity and the last sync at all times, is laid out for a
// 768x1024 tablet with large touch targets, and never shows an arm to a
// blinded role (it shows what the API gives it, and the API enforces blinding).
// Thread-safety: a constant.
#pragma once

#include <string_view>

namespace irt::node {

std::string_view web_ui_page();

}  // namespace irt::node
