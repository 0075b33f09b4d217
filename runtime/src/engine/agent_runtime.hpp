#pragma once
// One agent of a pipeline as it runs: its YAML, its plugin and callbacks, its counters and its supervisor's
// state, shared by every lane of the agent. Internal to the engine.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "common/histogram.hpp"
#include "config/config.hpp"
#include "engine/poison_record.hpp"
#include "engine/restart_policy.hpp"
#include "plugin/plugin.hpp"

namespace mephisto {

// Counters of one agent, readable from any thread.
struct AgentStats {
    std::atomic<uint64_t> processed{0};     // events whose verdict was OK
    std::atomic<uint64_t> failures{0};      // RETRY or FATAL verdicts (and failed creates)
    std::atomic<uint64_t> skipped{0};       // events skipped by the error policy
    std::atomic<uint64_t> dead_lettered{0};
    std::atomic<uint64_t> poison_quarantined{0};  // records dead-lettered because they crashed the worker
    std::atomic<uint64_t> undecodable{0};   // values the topic's codec rejected
    std::atomic<uint64_t> restarts{0};
    std::atomic<bool> quarantined{false};
    std::atomic<uint64_t> outputs{0};       // messages produced by emit, send and forward
    std::atomic<uint64_t> filtered{0};      // events the agent's filter predicate kept from it
    std::atomic<uint64_t> asks{0};          // requests sent by ask
    std::atomic<uint64_t> replies{0};       // answers delivered to on_reply
    std::atomic<uint64_t> ask_timeouts{0};  // asks that got no reply in time
    std::atomic<uint64_t> unacked{0};       // ack: manual: events processed and not yet acknowledged
    std::atomic<uint64_t> hung{0};          // callbacks that ran past hung_callback_after (each counted once)

    LatencyHistogram latency;  // how long on_event / on_batch calls take
};

// One agent of the pipeline: its plugin, its policy and its supervisor.
struct AgentRuntime {
    // Its YAML. A topology reload that changes the agent points `spec` at a new version while the agent's
    // lanes are stopped; earlier versions stay alive for readers that took the pointer before (the admin API).
    const AgentSpec* spec = nullptr;
    std::vector<std::unique_ptr<const AgentSpec>> spec_versions;
    std::shared_ptr<Plugin> plugin;
    const AgentInfo* info = nullptr;
    std::map<std::string, std::string> params;
    std::shared_ptr<spdlog::logger> log;
    AgentStats stats;
    RestartPolicy restarts;
    std::atomic<uint64_t> generation{0};  // bumped by a one_for_all restart: every instance re-creates
    const mph_predicate_descriptor* filter = nullptr;  // `filter:`, resolved from the plugins (null: none)
    std::shared_ptr<Plugin> filter_plugin;              // the plugin that provides it
    // Records that crashed the worker quarantine_after times, by place ("topic[p]@offset"); set before start.
    std::map<std::string, PoisonRecord> poison;
    explicit AgentRuntime(const AgentSpec& s) : restarts(s.supervisor) { set_spec(s); }
    void set_spec(const AgentSpec& s) {
        spec_versions.push_back(std::make_unique<const AgentSpec>(s));
        spec = spec_versions.back().get();
    }
};

}  // namespace mephisto
