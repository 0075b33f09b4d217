#pragma once
// Sizes as written in YAML: "512MiB", "2GiB", "64KiB", "1000000" (bytes); also KB, MB, GB (powers of 1000),
// for those who write them so.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mephisto {

Result<uint64_t> parse_byte_size(std::string_view text);
// "512 MiB", "1.5 GiB", "1000 bytes".
std::string format_byte_size(uint64_t bytes);

}  // namespace mephisto
