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
    LatencyHistogram pauses;  // one sample per agent per swap, and per agent restarted by a topology edit
    // Pipeline files: edits applied in place, pipelines restarted (or started, stopped) and edits refused.
    std::atomic<uint64_t> topology_applied{0};
    std::atomic<uint64_t> topology_restarted{0};
    std::atomic<uint64_t> topology_refused{0};
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

// What an edited, added or removed pipeline file did.
struct TopologyChange {
    std::string pipeline;
    std::string file;
    // "applied" (in place: the agents it does not name ran on), "restarted" (the pipeline, see reason),
    // "started", "stopped", or "refused" (nothing changed, see reason).
    std::string result;
    std::string summary;  // what changed: "agents +a -b ~c; timers +t; topics +x"
    std::string reason;
    std::vector<std::pair<std::string, std::chrono::microseconds>> pauses;  // agent -> pause (0: it started)
};

struct ReloadRecord {
    std::chrono::system_clock::time_point at;
    std::string trigger;  // "SIGHUP", "POST /reload", "plugin directory", "pipeline file"
    std::vector<PluginChange> changes;  // plugins; empty: none had changed
    std::vector<TopologyChange> topology;  // pipeline files; empty: none had changed
    bool refused() const {
        for (const auto& c : changes)
            if (c.result == "refused") return true;
        for (const auto& t : topology)
            if (t.result == "refused") return true;
        return false;
    }
};

}  // namespace mephisto
