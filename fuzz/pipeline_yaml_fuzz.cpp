// The pipeline YAML loader on arbitrary text: it must answer every input with a config or an error (file:line:
// column), never crash, hang or throw past load_config_text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 64 * 1024) return 0;  // the loader refuses files over 1 MiB; small inputs explore faster
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto config = mephisto::load_config_text(text, "fuzz.yaml", "/nonexistent", std::filesystem::path("/nonexistent/plugins"));
    if (!config && config.error().empty()) __builtin_trap();  // every refusal says why
    // ... with a position: a check that threw is caught (the host never crashes over a file), but is a bug.
    // (The prefix, not a search: the input itself may hold the words, and errors quote the input.)
    if (!config && config.error().rfind(std::string("fuzz.yaml: ") + mephisto::kUnexpectedConfigError, 0) == 0)
        __builtin_trap();
    return 0;
}
