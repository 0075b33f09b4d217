#pragma once
// A call into a plugin on behalf of a lane or a timer: named for the crash report (PluginCall), and clocked
// for the pipeline's hung-callback watch (CallClock). A nested call (a plugin's codec inside on_event) puts
// the outer one back when it returns.
#include <chrono>
#include <cstdint>

#include "common/crash_report.hpp"
#include "engine/lane.hpp"

namespace mephisto {

inline int64_t steady_ns(std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now()) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

class ClockedCall {
public:
    // `started`: when the call begins, for callers that read the clock anyway (the latency histogram).
    ClockedCall(CallClock& clock, const PluginCallRecord& record,
                std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now())
        : call_(record),
          clock_(clock),
          saved_started_(clock.started_ns.load(std::memory_order_relaxed)),
          saved_name_(clock.name.load(std::memory_order_relaxed)),
          saved_offset_(clock.offset.load(std::memory_order_relaxed)) {
        clock.name.store(record.callback, std::memory_order_relaxed);
        clock.offset.store(record.offset, std::memory_order_relaxed);
        clock.started_ns.store(steady_ns(started), std::memory_order_release);  // publishes name and offset
    }
    ~ClockedCall() {
        clock_.started_ns.store(0, std::memory_order_release);
        clock_.name.store(saved_name_, std::memory_order_relaxed);
        clock_.offset.store(saved_offset_, std::memory_order_relaxed);
        if (saved_started_ != 0) clock_.started_ns.store(saved_started_, std::memory_order_release);
    }
    ClockedCall(const ClockedCall&) = delete;
    ClockedCall& operator=(const ClockedCall&) = delete;

private:
    PluginCall call_;
    CallClock& clock_;
    int64_t saved_started_;
    const char* saved_name_;
    int64_t saved_offset_;
};

}  // namespace mephisto
