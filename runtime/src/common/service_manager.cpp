// sd_notify for systemd's Type=notify (common/service_manager.hpp).
#include "common/service_manager.hpp"

#include <time.h>

#include <systemd/sd-daemon.h>

namespace mephisto {
namespace {

void notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

// STATUS= is one line.
std::string status_line(std::string status) {
    for (char& c : status)
        if (c == '\n') c = ' ';
    return "STATUS=" + status;
}

}  // namespace

void notify_ready(const std::string& status) { notify("READY=1\n" + status_line(status)); }

void notify_reloading(const std::string& status) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long long usec = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
    notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n" + status_line(status));
}

void notify_stopping(const std::string& status) { notify("STOPPING=1\n" + status_line(status)); }

}  // namespace mephisto
