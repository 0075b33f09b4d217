// Cron schedules (timers' `cron:`): parse never crashes and says why it refuses; an accepted schedule's next
// tick, in UTC and in a zone with daylight saving, lies after the time asked about.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/cron.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 256) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto schedule = mephisto::CronSchedule::parse(text);
    if (!schedule) {
        if (schedule.error().empty()) __builtin_trap();
        return 0;
    }
    // 2026-03-29 00:30 UTC: the night Europe/Paris springs forward.
    const auto after = std::chrono::system_clock::time_point(std::chrono::seconds(1774744200));
    for (const char* zone : {"UTC", "Europe/Paris"})
        if (auto next = schedule->next_after(after, zone); next && *next <= after) __builtin_trap();
    return 0;
}
