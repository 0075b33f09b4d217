// The end of an agent's error policy: skip the event (counted), or send it to the dead-letter topic with why
// and where from in its headers. A dead letter is the event as it came, unless it is too large to produce: the
// producer refuses what passes its message.max.bytes (1 MB by default) and a broker what passes the topic's
// max.message.bytes. Such a letter goes again without the value, then without the key and the event's headers
// too, with a note saying what was dropped and why; the event itself stays readable at its coordinates until
// retention removes it. Stopping the host instead would stop it at every restart (the offset never commits).
#include "common/logging.hpp"
#include "engine/event_bytes.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {
namespace {

bool too_large(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

void add_header(rd_kafka_headers_t* headers, const char* name, const std::string& value) {
    rd_kafka_header_add(headers, name, -1, value.data(), static_cast<ssize_t>(value.size()));
}

}  // namespace

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
    letter->agent = &agent;
    letter->source = at;
    letter->error = error;
    letter->attempts = lane.tries.attempts();
    std::string why;
    if (!produce_dead_letter(std::move(letter), why)) {
        fail("cannot dead-letter " + at + " to " + policy.dead_letter_topic + ": " + why);
        return;
    }
    agent.stats.dead_lettered++;
}

bool Pipeline::produce_dead_letter(std::unique_ptr<DeadLetter> letter, std::string& why) {
    const AgentRuntime& agent = *letter->agent;
    const std::string topic = letter->topic.empty() ? agent.spec->on_error.dead_letter_topic : letter->topic;
    const EventBytes event = bytes_of(letter->event);
    for (; letter->level <= 2; ++letter->level) {
        rd_kafka_headers_t* headers = letter->level < 2 ? copy_headers(letter->event) : nullptr;
        if (!headers) headers = rd_kafka_headers_new(5);
        add_header(headers, "mephisto.error", letter->error);
        add_header(headers, "mephisto.agent", agent.spec->name);
        add_header(headers, "mephisto.source", letter->source);
        for (const auto& [name, value] : letter->headers) add_header(headers, name.c_str(), value);
        if (letter->level >= 1)
            add_header(headers, "mephisto.value-dropped",
                       std::to_string(event.value_len) + " bytes, too large to dead-letter (" + letter->refusal +
                           "); the event stays at " + letter->source);
        if (letter->level >= 2)
            add_header(headers, "mephisto.key-dropped",
                       std::to_string(event.key_len) + " bytes of key and the event's headers, too large as well");
        const void* key = letter->level < 2 ? event.key : nullptr;
        const size_t key_len = letter->level < 2 ? event.key_len : 0;
        const void* value = letter->level == 0 ? event.value : nullptr;
        const size_t value_len = letter->level == 0 ? event.value_len : 0;
        const std::string note =
            letter->level == 0 ? "" : fmt::format(", without its {} ({})", letter->level == 1 ? "value" : "value, key and headers",
                                                  letter->refusal);
        const std::string logged = fmt::format("dead-lettered {} to {} after {} attempt(s){}: {}", letter->source, topic,
                                               letter->attempts, note, letter->error);
        // The letter's share of its event: the offset commits only once the broker took the letter. The delivery
        // report owns the letter from the moment it is produced (it may come before produce returns).
        InFlight* f = letter->event;
        f->pending.fetch_add(1, std::memory_order_relaxed);
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
        DeadLetter* tag = letter.release();
        if (producer_->produce(topic, key, key_len, value, value_len, headers, MPH_PARTITION_ANY, event.timestamp_ms,
                               static_cast<DeliveryTag*>(tag), &why, &code) == MPH_OK) {
            agent.log->warn("{}", logged);
            return true;
        }
        letter.reset(tag);
        f->pending.fetch_sub(1, std::memory_order_relaxed);
        if (!too_large(code)) return false;
        letter->refusal = rd_kafka_err2str(code);
    }
    why = "even its coordinates alone are too large to produce (" + letter->refusal + ")";
    return false;
}

void Pipeline::on_dead_letter_delivery(DeadLetter* raw, rd_kafka_resp_err_t err) {
    std::unique_ptr<DeadLetter> letter(raw);
    InFlight* event = letter->event;
    if (!err) {
        finish(event);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {  // shutdown
        finish(event, 0);
        return;
    }
    const std::string topic = letter->topic.empty() ? letter->agent->spec->on_error.dead_letter_topic : letter->topic;
    if (too_large(err) && letter->level < 2) {
        // The broker's limit is below the producer's: the next level goes, with its own share of the event,
        // before this letter lets go of its share.
        letter->agent->log->warn("the broker refused the dead letter of {} to {}: {}; sending it without its {}",
                                 letter->source, topic, rd_kafka_err2str(err),
                                 letter->level == 0 ? "value" : "key and headers");
        auto next = std::make_unique<DeadLetter>(*letter);
        next->level++;
        next->refusal = rd_kafka_err2str(err);
        std::string why;
        if (produce_dead_letter(std::move(next), why)) {
            finish(event);
            return;
        }
        fail("cannot dead-letter " + letter->source + " to " + topic + ": " + why);
        finish(event, 0);
        return;
    }
    fail("cannot dead-letter " + letter->source + " to " + topic + ": " + rd_kafka_err2str(err) +
         "; the event stays uncommitted");
    finish(event, 0);
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
    letter->agent = &agent;
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
    if (!produce_dead_letter(std::move(letter), why)) {
        fail("cannot dead-letter the quarantined record " + poison.place() + " to " + poison_topic(agent) + ": " + why);
        return;
    }
    agent.stats.poison_quarantined++;
    agent.stats.dead_lettered++;
}

}  // namespace mephisto
