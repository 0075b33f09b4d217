#include "common/json_bounds.hpp"

#include <nlohmann/json.hpp>

namespace mephisto {

size_t json_depth(std::string_view text, size_t limit) {
    size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') ++i;  // the escaped character cannot end the string
            else if (c == '"') in_string = false;
            continue;
        }
        switch (c) {
            case '"': in_string = true; break;
            case '[':
            case '{':
                if (++depth > deepest) {
                    deepest = depth;
                    if (deepest > limit) return limit + 1;
                }
                break;
            case ']':
            case '}':
                if (depth > 0) --depth;
                break;
            default: break;
        }
    }
    return deepest;
}

std::optional<std::string> json_depth_error(std::string_view text) {
    if (json_depth(text) <= kMaxJsonDepth) return std::nullopt;
    return "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
}

nlohmann::json parse_json_bounded(std::string_view text) {
    if (json_depth(text) > kMaxJsonDepth) return nlohmann::json(nlohmann::json::value_t::discarded);
    return nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
}

Result<std::string> json_field_key(std::string_view text, const std::string& field) {
    if (auto deep = json_depth_error(text)) return make_error("the value is " + *deep);
    auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (json.is_discarded() || !json.is_object()) return make_error("the value is not a JSON object");
    auto it = json.find(field);
    if (it == json.end() || it->is_null()) return make_error("the value has no field '" + field + "'");
    // Keys are bytes: what is not UTF-8 inside a string is kept as it came, never refused.
    return it->is_string() ? it->get<std::string>()
                           : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mephisto
