#pragma once
// Durations as written in YAML and on the command line: "250ms", "10s", "5m", "1h", "2d", or a bare number of
// seconds (Faust's convention for float seconds).
#include <chrono>
#include <string_view>

#include "common/result.hpp"

namespace mephisto {

using Millis = std::chrono::milliseconds;

Result<Millis> parse_duration(std::string_view text);
std::string format_duration(Millis d);

}  // namespace mephisto
