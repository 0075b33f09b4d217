#pragma once
// What a reload did, kept in a short history (GET /reloads, and the answer of POST /reload).
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common/histogram.hpp"

namespace mephisto {

// Counters of every reload since the host started (the history keeps only the last few).
struct ReloadStats {
    std::atomic<uint64_t> swapped{0};
    std::atomic<uint64_t> refused{0};
    LatencyHistogram pauses;  // one sample per agent per swap
};

struct PluginChange {
    std::string pipeline;
    std::string plugin;
    std::string file;
    std::string result;  // "swapped" or "refused"
    std::string reason;  // why it was refused
    std::string old_sha1, new_sha1;
    std::vector<std::pair<std::string, std::chrono::microseconds>> pauses;  // agent -> pause
    bool old_unloaded = false;  // the old image left memory (checked with RTLD_NOLOAD)
};

struct ReloadRecord {
    std::chrono::system_clock::time_point at;
    std::string trigger;  // "SIGHUP", "POST /reload", "plugin directory"
    std::vector<PluginChange> changes;  // empty: nothing had changed
};

}  // namespace mephisto
