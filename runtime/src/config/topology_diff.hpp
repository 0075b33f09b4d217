#pragma once
// What an edit of a pipeline file changes (DESIGN.md §5, topology reload). The host applies an edit in place
// when only agents, timers and declared topics changed and the pipeline keeps reading the same topics: new
// agents start, removed ones stop, changed ones restart, and the agents that did not change never pause.
// Anything else (the topics the consumer reads, tables, broker, workers...) needs the pipeline restarted; the
// diff then says why. File positions (marks) are ignored: adding a line above an agent does not change it.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace mephisto {

struct TopologyDiff {
    std::vector<std::string> agents_added, agents_removed, agents_changed;
    std::vector<std::string> timers_added, timers_removed, timers_changed;
    std::vector<std::string> topics_added, topics_removed;  // declarations (output topics, dead letters)
    // Why the edit cannot be applied in place; empty when it can.
    std::vector<std::string> restart_reasons;

    bool empty() const;
    bool in_place() const { return restart_reasons.empty(); }
    // "agents +a -b ~c; timers +t; topics +x" ("no change" when empty).
    std::string summary() const;
};

TopologyDiff diff_topology(const PipelineConfig& running, const PipelineConfig& edited);

// Field by field, marks ignored.
bool same_agent(const AgentSpec& a, const AgentSpec& b);
bool same_timer(const TimerSpec& a, const TimerSpec& b);

}  // namespace mephisto
