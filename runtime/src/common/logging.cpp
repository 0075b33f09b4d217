#include "common/logging.hpp"

#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace mephisto {
namespace {

std::mutex g_mutex;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;

// Escapes the message payload for a JSON string (spdlog has no JSON formatter of its own).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        for (char c : msg.payload) {
            switch (c) {
                case '"': dest.append(std::string_view("\\\"")); break;
                case '\\': dest.append(std::string_view("\\\\")); break;
                case '\n': dest.append(std::string_view("\\n")); break;
                case '\r': dest.append(std::string_view("\\r")); break;
                case '\t': dest.append(std::string_view("\\t")); break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        char buf[8];
                        std::snprintf(buf, sizeof buf, "\\u%04x", c);
                        dest.append(std::string_view(buf));
                    } else {
                        dest.push_back(c);
                    }
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    if (format == LogFormat::json) {
        f->add_flag<JsonMessageFlag>('*');
        f->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","thread":%t,"msg":"%*"})");
    } else {
        f->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
    }
    return f;
}

void ensure_sink_locked() {
    if (!g_sink) {
        g_sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        g_sink->set_formatter(make_formatter(LogFormat::text));
    }
}

}  // namespace

void setup_logging(LogFormat format, spdlog::level::level_enum level) {
    std::lock_guard lock(g_mutex);
    ensure_sink_locked();
    g_sink->set_formatter(make_formatter(format));
    g_level = level;
    spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
    if (auto existing = spdlog::get(name)) return existing;
    std::lock_guard lock(g_mutex);
    if (auto existing = spdlog::get(name)) return existing;
    ensure_sink_locked();
    auto l = std::make_shared<spdlog::logger>(name, g_sink);
    l->set_level(g_level);
    l->flush_on(spdlog::level::info);
    spdlog::register_logger(l);
    return l;
}

}  // namespace mephisto
