#include "common/duration.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

namespace mephisto {

Result<Millis> parse_duration(std::string_view text) {
    std::string s(text);
    if (s.empty()) return make_error("empty duration");
    char* end = nullptr;
    double number = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || !std::isfinite(number) || number < 0)
        return make_error("'" + s + "' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    std::string_view unit(end);
    double factor;
    if (unit.empty() || unit == "s") factor = 1000;
    else if (unit == "ms") factor = 1;
    else if (unit == "m" || unit == "min") factor = 60'000;
    else if (unit == "h") factor = 3'600'000;
    else if (unit == "d") factor = 86'400'000;
    else return make_error("'" + s + "' has an unknown unit '" + std::string(unit) + "' (use ms, s, m, h or d)");
    // Out of int64 range llround's result is unspecified (in practice INT64_MIN: a negative duration).
    const double ms = number * factor;
    if (!(ms < 9223372036854775807.0)) return make_error("'" + s + "' is too long (the limit is about 292 million years)");
    return Millis(static_cast<int64_t>(std::llround(ms)));
}

std::string format_duration(Millis d) {
    auto ms = d.count();
    if (ms % 3'600'000 == 0 && ms != 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace mephisto
