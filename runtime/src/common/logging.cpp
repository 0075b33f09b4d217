#include "common/logging.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace mephisto {
namespace {

std::mutex g_mutex;
std::shared_ptr<spdlog::sinks::dist_sink_mt> g_sink;  // stderr, and the log file when there is one
LogFormat g_format = LogFormat::text;
spdlog::level::level_enum g_level = spdlog::level::info;

// Lines appended to a file descriptor with one write each (O_APPEND keeps concurrent writers' lines whole).
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit FdSink(int fd) : fd_(fd) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        for (size_t done = 0; done < line.size();) {
            const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
            if (w <= 0) return;  // a full disk must not stop the host over its log
            done += static_cast<size_t>(w);
        }
    }
    void flush_() override {}

private:
    int fd_;
};

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
        g_sink = std::make_shared<spdlog::sinks::dist_sink_mt>();
        g_sink->add_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
        g_sink->set_formatter(make_formatter(LogFormat::text));
    }
}

}  // namespace

void setup_logging(LogFormat format, spdlog::level::level_enum level) {
    std::lock_guard lock(g_mutex);
    ensure_sink_locked();
    g_format = format;
    g_sink->set_formatter(make_formatter(format));
    g_level = level;
    spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

Result<int> add_log_file(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        return make_error("--log-file " + file.string() + ": " +
                          (errno == ELOOP ? std::string("is a symbolic link; name the file itself") : std::strerror(errno)));
    std::lock_guard lock(g_mutex);
    ensure_sink_locked();
    g_sink->add_sink(std::make_shared<FdSink>(fd));
    g_sink->set_formatter(make_formatter(g_format));  // the new sink gets the format too
    return fd;
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
