#pragma once
// JSON from outside (message values and keys, what a plugin's codec renders) is bounded before anything
// recursive touches it: nlohmann's parser is iterative, but dump, copy and comparison recurse once per level,
// so a value nested 100,000 deep overflows a thread's stack. The depth is counted here without recursion, in
// one pass that allocates nothing.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/result.hpp"

namespace mephisto {

// Far deeper than any real record (serde_json refuses past 128, simdjson past 1024), far shallower than what
// a worker's stack can recurse through.
inline constexpr size_t kMaxJsonDepth = 512;

// The deepest nesting of arrays and objects in `text`, strings skipped (their brackets do not count); stops
// reading once it passes `limit` and then returns limit + 1. Text that is not JSON gets a number all the same.
size_t json_depth(std::string_view text, size_t limit = kMaxJsonDepth);

// "nested deeper than 512 levels" when `text` is, else nothing.
std::optional<std::string> json_depth_error(std::string_view text);

// `text` parsed, or a discarded value (is_discarded()) when it is not JSON or nests deeper than kMaxJsonDepth.
nlohmann::json parse_json_bounded(std::string_view text);

// The top-level member `field` of the JSON object `text`, as a key: a string's content, anything else as
// compact JSON (`group_by: {field: NAME}`). Errors: not JSON, too deep, not an object, no such field (or null).
Result<std::string> json_field_key(std::string_view text, const std::string& field);

}  // namespace mephisto
