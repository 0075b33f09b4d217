// The queries a PipelineConfig answers about itself.
#include <algorithm>

#include "config/config.hpp"

namespace mephisto {

std::string Mark::str() const { return file + ":" + std::to_string(line) + ":" + std::to_string(column); }

const TopicSpec* PipelineConfig::topic(const std::string& name) const {
    for (const auto& t : topics)
        if (t.name == name) return &t;
    return nullptr;
}

const ChannelSpec* PipelineConfig::channel(const std::string& name) const {
    for (const auto& ch : channels)
        if (ch.name == name) return &ch;
    return nullptr;
}

const TableSpec* PipelineConfig::table(const std::string& name) const {
    for (const auto& t : tables)
        if (t.name == name) return &t;
    return nullptr;
}

bool PipelineConfig::has_leader_timers() const {
    return std::any_of(timers.begin(), timers.end(), [](const TimerSpec& t) { return t.on_leader; });
}

std::vector<std::string> PipelineConfig::source_topics() const {
    std::vector<std::string> out;
    for (const auto& a : agents)
        for (const auto& t : a.from)
            if (!channel(t) && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    return out;
}

}  // namespace mephisto
