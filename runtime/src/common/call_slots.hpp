#pragma once
// The calls in progress of a worker process, in a file its supervisor reads after the worker died: which
// record of which agent was being processed when it crashed (the poison-record quarantine, issue 12).
//
// The worker maps the file; each thread that calls plugins owns one slot of it and, before each call, writes
// what it is about to run there: plain stores into shared memory, no system call (names are copied only when
// their pointers change, or after names_freed). The fatal-signal handler and the exit guard mark the slot of the thread that failed. Whatever
// kills the worker, the file stays behind for the supervisor: the process's memory goes, the page stays.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/crash_report.hpp"
#include "common/result.hpp"

namespace mephisto::call_slots {

// A slot's fault: the fatal signal, or kFaultExit for a plugin that exited the process.
inline constexpr int32_t kFaultExit = 1000;

// A slot as the supervisor reads it.
struct CallInProgress {
    std::string pipeline, agent, plugin, sha1, callback, topic;
    int32_t partition = -1;
    int64_t offset = -1;
    int64_t started_ns = 0;  // CLOCK_MONOTONIC_COARSE, the same clock in every process
    int32_t fault = 0;       // 0: the thread was not the one that failed
    bool about_an_event() const { return !topic.empty() && partition >= 0 && offset >= 0; }
};

// In the worker: creates (or empties) `file` and publishes this process's calls there from now on.
Status share(const std::filesystem::path& file);
// The calling thread's record changes (crash_report's PluginCall): `record.plugin` null means no call.
void publish(const PluginCallRecord& record) noexcept;
// Names that slots were copied from may be freed now (a pipeline, a partition's state or a plugin goes, and
// another name may later sit at the same address): every thread copies its names afresh at its next call.
void names_freed() noexcept;
// Async-signal-safe: marks the calling thread's slot as the one that failed with `fault`.
void mark_fault(int32_t fault) noexcept;

// In the supervisor: the calls in progress recorded in `file`. Of a worker that died, as they are; of a live
// one (`live`), only the slots read whole, not while their thread rewrote them.
std::vector<CallInProgress> read(const std::filesystem::path& file, bool live = false);
// The one that failed: the marked slot; else, with `hung_before_ns` set, the oldest call running since before it.
std::optional<CallInProgress> culprit(const std::vector<CallInProgress>& calls, int64_t hung_before_ns = 0);
// CLOCK_MONOTONIC_COARSE now, in ns.
int64_t now_ns() noexcept;

}  // namespace mephisto::call_slots
