#include "common/byte_size.hpp"

#include <cstdio>
#include <limits>

namespace mephisto {

Result<uint64_t> parse_byte_size(std::string_view text) {
    const std::string given(text);
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 18) return make_error("'" + given + "' is not a size such as 512MiB");
    uint64_t number = 0;
    for (size_t i = 0; i < digits; ++i) number = number * 10 + static_cast<uint64_t>(text[i] - '0');
    std::string_view unit = text.substr(digits);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    struct Unit {
        const char* name;
        uint64_t factor;
    };
    static constexpr Unit units[] = {{"", 1},         {"B", 1},           {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
                                     {"GiB", 1ull << 30}, {"TiB", 1ull << 40}, {"KB", 1000},      {"MB", 1000'000},
                                     {"GB", 1000'000'000}, {"TB", 1000'000'000'000}};
    for (const auto& u : units)
        if (unit == u.name) {
            if (number > std::numeric_limits<uint64_t>::max() / u.factor) return make_error("'" + given + "' is too large");
            return number * u.factor;
        }
    return make_error("'" + given + "' has an unknown unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

std::string format_byte_size(uint64_t bytes) {
    static constexpr const char* names[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    double value = static_cast<double>(bytes);
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    char text[48];
    if (unit == 0) std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
    else std::snprintf(text, sizeof text, "%.4g %s", value, names[unit]);
    return text;
}

}  // namespace mephisto
