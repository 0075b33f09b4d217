// The JSON field extraction of group_by (and the bounds every JSON value from outside goes through): the first
// line is the field's name, the rest the value. Nothing may crash or recurse without bound; a value that
// parses within the bound must render (dump recurses once per level).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    const auto newline = input.find('\n');
    const std::string field = newline == std::string::npos ? std::string("id") : input.substr(0, newline);
    const std::string_view text = newline == std::string::npos ? std::string_view(input) : std::string_view(input).substr(newline + 1);

    const size_t depth = mephisto::json_depth(text);
    if (depth > mephisto::kMaxJsonDepth + 1) __builtin_trap();  // counting stops right past the bound
    auto doc = mephisto::parse_json_bounded(text);
    if (!doc.is_discarded()) {
        if (depth > mephisto::kMaxJsonDepth) __builtin_trap();  // a deeper one must have been refused
        (void)doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    auto key = mephisto::json_field_key(text, field);
    if (!key && key.error().empty()) __builtin_trap();
    return 0;
}
