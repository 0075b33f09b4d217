#pragma once
// What a reload did, kept in a short history (GET /reloads, and the answer of POST /reload).
#include <chrono>
#include <string>
#include <vector>

namespace mephisto {

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
