#pragma once
// One spdlog logger per subsystem ("host", "kafka", "loader", ...) and one per loaded plugin agent, all sharing
// one sink so that text and JSON-lines formats apply everywhere (STYLE.md, "spdlog / fmt").
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace mephisto {

enum class LogFormat { text, json };

// Configures the shared sink (stderr) and the default level. Call once at startup; safe to call again.
void setup_logging(LogFormat format, spdlog::level::level_enum level);

// Returns the logger named `name`, creating it on the shared sink on first use. THREAD: any.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

}  // namespace mephisto
