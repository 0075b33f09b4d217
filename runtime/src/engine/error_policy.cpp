// The end of an agent's error policy: skip the event (counted), or send it to the dead-letter topic with why and
// where from in its headers (engine/dead_letter_queue.hpp); and records that crashed the worker too often,
// quarantined: dead-lettered instead of given to the agent again.
#include "common/logging.hpp"
#include "engine/event_bytes.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {
void Pipeline::apply_error_policy(Lane& lane, InFlight* f, const std::string& error) {
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
    if (!dead_letters_->send(std::move(letter), why)) {
        fail("cannot dead-letter " + at + " to " + policy.dead_letter_topic + ": " + why);
        return;
    }
    agent.stats.dead_lettered++;
}

std::string Pipeline::poison_topic(const AgentRuntime& agent) const {
    const std::string& topic = agent.spec->on_error.dead_letter_topic;
    return topic.empty() ? config_.app_id + "-" + agent.spec->name + "-dead-letter" : topic;
}

void Pipeline::quarantine(const std::vector<PoisonRecord>& records) {
    for (const auto& r : records) {
        if (r.pipeline != config_.app_id) continue;
        for (auto& agent : agents_) {
            if (agent->spec->name != r.agent || agent->spec->quarantine_after == 0 ||
                r.crashes < agent->spec->quarantine_after)
                continue;
            agent->poison[r.place()] = r;
            agent->log->warn("{} crashed the worker {} time(s) (last: {}, plugin {} sha1 {}): it goes to {} "
                             "instead of to the agent",
                             r.place(), r.crashes, r.fault, r.plugin, r.sha1, poison_topic(*agent));
        }
    }
}

void Pipeline::dead_letter_poison(Lane& lane, InFlight* f, const PoisonRecord& poison) {
    AgentRuntime& agent = *lane.agent;
    auto letter = std::make_unique<DeadLetter>();
    letter->event = f;
    letter->agent = agent.spec->name;
    letter->log = agent.log;
    letter->source = poison.place();
    letter->topic = poison_topic(agent);
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
    if (!dead_letters_->send(std::move(letter), why)) {
        fail("cannot dead-letter the quarantined record " + poison.place() + " to " + poison_topic(agent) + ": " + why);
        return;
    }
    agent.stats.poison_quarantined++;
    agent.stats.dead_lettered++;
}

}  // namespace mephisto
