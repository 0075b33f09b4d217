// The end of an agent's error policy: skip the event (counted), or send it to the dead-letter topic with why and
// where from in its headers (engine/dead_letter_queue.hpp); and records that crashed the worker too often,
// quarantined: dead-lettered instead of given to the agent again.
#include "common/logging.hpp"
#include "engine/event_bytes.hpp"
#include "engine/lane_runner.hpp"
#include "engine/agent_runtime.hpp"

namespace mephisto {
void LaneRunner::apply_error_policy(Lane& lane, InFlight* f, const std::string& error) {
    AgentRuntime& agent = *lane.agent;
    const auto& policy = agent.spec->on_error;
    const std::string at = where(*lane.partition, f->offset());
    if (policy.then == ThenPolicy::skip) {
        agent.stats.skipped++;
        agent.log->warn("skipping {} after {} attempt(s): {}", at, lane.tries.attempts(), error);
        return;
    }
    auto letter = std::make_unique<DeadLetter>();
    letter->event = f;
    letter->topic = policy.dead_letter_topic;
    letter->agent = agent.spec->name;
    letter->log = agent.log;
    letter->source = at;
    letter->error = error;
    letter->attempts = lane.tries.attempts();
    std::string why;
    if (!s_.dead_letters->send(std::move(letter), why)) {
        s_.fail("cannot dead-letter " + at + " to " + policy.dead_letter_topic + ": " + why);
        return;
    }
    agent.stats.dead_lettered++;
}

std::string poison_topic(const std::string& app_id, const AgentRuntime& agent) {
    const std::string& topic = agent.spec->on_error.dead_letter_topic;
    return topic.empty() ? app_id + "-" + agent.spec->name + "-dead-letter" : topic;
}

void LaneRunner::dead_letter_poison(Lane& lane, InFlight* f, const PoisonRecord& poison) {
    AgentRuntime& agent = *lane.agent;
    auto letter = std::make_unique<DeadLetter>();
    letter->event = f;
    letter->agent = agent.spec->name;
    letter->log = agent.log;
    letter->source = poison.place();
    letter->topic = poison_topic(s_.app_id, agent);
    letter->attempts = poison.crashes;
    letter->error = "quarantined: it crashed the worker " + std::to_string(poison.crashes) + " time(s), last with " +
                    poison.fault + " in plugin " + poison.plugin;
    letter->headers = {{"mephisto.crash.signal", poison.fault},
                       {"mephisto.crash.agent", poison.agent},
                       {"mephisto.crash.plugin", poison.plugin},
                       {"mephisto.crash.plugin-sha1", poison.sha1},
                       {"mephisto.crash.count", std::to_string(poison.crashes)},
                       {"mephisto.crash.last-ms", std::to_string(poison.last_crash_ms)}};
    std::string why;
    if (!s_.dead_letters->send(std::move(letter), why)) {
        s_.fail("cannot dead-letter the quarantined record " + poison.place() + " to " + poison_topic(s_.app_id, agent) + ": " + why);
        return;
    }
    agent.stats.poison_quarantined++;
    agent.stats.dead_lettered++;
}

}  // namespace mephisto
