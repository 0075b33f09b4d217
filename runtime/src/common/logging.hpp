#pragma once
// One spdlog logger per subsystem ("host", "kafka", "loader", ...) and one per loaded plugin agent, all sharing
// one sink so that text and JSON-lines formats apply everywhere (STYLE.md, "spdlog / fmt").
#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "common/result.hpp"

namespace mephisto {

enum class LogFormat { text, json };

// Configures the shared sink (stderr) and the default level. Call once at startup; safe to call again.
void setup_logging(LogFormat format, spdlog::level::level_enum level);

// Writes every line to `file` as well (appending; created 0640; a symbolic link is refused, as a log written
// by root must not be pointed at another file). Returns the file's descriptor, which stays open for the life
// of the process (the crash report writes to it too).
Result<int> add_log_file(const std::filesystem::path& file);

// Returns the logger named `name`, creating it on the shared sink on first use. THREAD: any.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

}  // namespace mephisto
