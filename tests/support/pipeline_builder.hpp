#pragma once
// A pipeline file for a test, built rather than pasted: the app id, the test plugins, the quick group
// settings of the 2.0.2 mock (kFastGroupYaml) and a state directory come by default, and a test adds only
// what it is about:
//
//   const std::string yaml = PipelineBuilder("counts")
//                                .state_dir(dir.path() / "state")
//                                .topic("words", 4)
//                                .table("counts", "{value: int64}")
//                                .agent("counter", "{plugin: test_agents, agent: count, from: words, tables: [counts]}")
//                                .str();
//
// Entries keep the order they were added in; `line` adds any other top-level YAML as it is.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"  // test_plugin_dir, kFastGroupYaml (it includes this file at its end: either order works)

namespace mephisto::test {

class PipelineBuilder {
public:
    explicit PipelineBuilder(std::string app) : app_(std::move(app)) {}

    PipelineBuilder& plugins(const std::filesystem::path& dir) {
        plugins_ = dir;
        return *this;
    }
    PipelineBuilder& state_dir(const std::filesystem::path& dir) { return line("state_dir: " + dir.string()); }
    // Without the quick group settings: librdkafka's defaults (a rebalance then waits 44 s on the mock).
    PipelineBuilder& default_group_settings() {
        fast_group_ = false;
        return *this;
    }
    // Any top-level YAML, as it is ("commit_interval: 1s", "supervisor: {...}").
    PipelineBuilder& line(const std::string& yaml) {
        lines_.push_back(yaml);
        return *this;
    }
    PipelineBuilder& topic(const std::string& name, int partitions, const std::string& more = {}) {
        topics_.emplace_back(name, "{partitions: " + std::to_string(partitions) + (more.empty() ? "" : ", " + more) + "}");
        return *this;
    }
    PipelineBuilder& channel(const std::string& name, const std::string& spec = "{}") {
        channels_.emplace_back(name, spec);
        return *this;
    }
    PipelineBuilder& table(const std::string& name, const std::string& spec) {
        tables_.emplace_back(name, spec);
        return *this;
    }
    PipelineBuilder& agent(const std::string& name, const std::string& spec) {
        agents_.emplace_back(name, spec);
        return *this;
    }
    PipelineBuilder& timer(const std::string& name, const std::string& spec) {
        timers_.emplace_back(name, spec);
        return *this;
    }

    std::string str() const {
        std::string out = "app: {id: " + app_ + "}\nplugins: {dir: " +
                          (plugins_.empty() ? test_plugin_dir() : plugins_).string() + "}\n";
        if (fast_group_) out += kFastGroupYaml;
        for (const auto& l : lines_) out += l + (l.empty() || l.back() != '\n' ? "\n" : "");
        section(out, "topics", topics_);
        section(out, "channels", channels_);
        section(out, "tables", tables_);
        section(out, "agents", agents_);
        section(out, "timers", timers_);
        return out;
    }
    operator std::string() const { return str(); }

private:
    using Entries = std::vector<std::pair<std::string, std::string>>;
    static void section(std::string& out, const char* key, const Entries& entries) {
        if (entries.empty()) return;
        out += std::string(key) + ":\n";
        for (const auto& [name, spec] : entries) out += "  " + name + ": " + spec + "\n";
    }

    std::string app_;
    std::filesystem::path plugins_;
    bool fast_group_ = true;
    std::vector<std::string> lines_;
    Entries topics_, channels_, tables_, agents_, timers_;
};

}  // namespace mephisto::test
