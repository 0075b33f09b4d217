// Durations as users write them (YAML and the command line): parse_duration never crashes, and what it accepts
// renders (format_duration) into text that parses back to the same duration.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/duration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 256) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto d = mephisto::parse_duration(text);
    if (!d) return 0;
    if (d->count() < 0) __builtin_trap();
    auto again = mephisto::parse_duration(mephisto::format_duration(*d));
    if (!again || *again != *d) __builtin_trap();
    return 0;
}
