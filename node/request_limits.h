// The bounds on what a request to the node may carry, so that no event the
// node records from it is larger than the hub accepts (sync/field_limits.h
// derives the limits and why they are enough).
//
// check_request_fields walks a JSON request body of the /api/v1 routes: a
// free-text field (a reason, a password) holds at most kMaxTextChars
// characters, every other string (an id, a level, an answer, a condition) at
// most kMaxIdChars, every list or object at most kMaxListItems items, and
// nothing nests deeper than the requests do. The first field over its limit is
// refused as invalid_input naming it: "screen_failure_reason: at most 2000
// characters (got 1048576); shorten it". The node's API calls it on every body
// before a route reads a field; `irt-node note` checks its --text with
// check_text. Characters are UTF-8 code points.
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "shared/result.h"

namespace irt::node {

// UTF-8 code points in `s`; a byte that is not part of a well-formed sequence
// counts as one, so a string never holds more than 4 bytes per character.
std::size_t utf8_length(std::string_view s);

shared::Status check_text(const std::string& name, std::string_view value, std::size_t max_chars);
shared::Status check_request_fields(const nlohmann::json& body);

}  // namespace irt::node
