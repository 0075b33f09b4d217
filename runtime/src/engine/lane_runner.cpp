// The lane runner's delivery (engine/lane_runner.hpp): one by one to on_event, in batches to on_batch (take:
// gathers them), through the agent's filter first; a verdict other than OK to on_failure. THREAD: a worker.
#include "engine/lane_runner.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"
#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/event_bytes.hpp"
#include "engine/message_views.hpp"
#include "tables/codec.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kLaneBudget = 256;   // events a worker runs on one lane before giving others a turn
constexpr size_t kMaxBatch = 500;  // events handed to on_batch at once
// A lane held back by a full channel is woken when the channel drained; should that wake-up meet the lane still
// in its turn, it looks again this much later.
constexpr milliseconds kFullChannelRecheck{100};

mph_event make_event(const PartitionState& ps, const InFlight* f, std::vector<mph_header>& headers) {
    if (f->message) return mephisto::make_event(ps.topic.c_str(), f->message, headers);
    const ChannelEvent& c = *f->channel_event;
    headers.clear();
    for (const auto& [name, value] : c.headers)
        headers.push_back(mph_header{name.c_str(), name.size(), value ? value->data() : nullptr, value ? value->size() : 0});
    mph_event ev{};
    ev.struct_size = sizeof ev;
    ev.topic = ps.topic.c_str();
    ev.partition = 0;
    ev.offset = c.sequence;
    ev.timestamp_ms = c.timestamp_ms;
    const auto key = c.key(), value = c.value();
    ev.key = key ? key->data() : nullptr;
    ev.key_len = key ? key->size() : 0;
    ev.value = value ? value->data() : nullptr;
    ev.value_len = value ? value->size() : 0;
    ev.headers = headers.empty() ? nullptr : headers.data();
    ev.header_count = headers.size();
    return ev;
}

// Values a topic's codec rejects never reach the agent; they follow its error policy (RELIABILITY 36). A
// plugin's codec runs under `call` (the agent and the event), with the codec's plugin named.
std::optional<std::string> decode_error(const PartitionState& ps, const InFlight* f, PluginCallRecord call) {
    if (!ps.spec || !f->message) return std::nullopt;  // a channel carries what agents sent: not checked again
    const rd_kafka_message_t* msg = f->message;
    if (ps.value_codec && msg->payload) {
        call.plugin = ps.spec->value_codec.plugin.c_str();
        call.sha1 = nullptr;
        PluginCall in_codec(call);
        if (auto st = validate_with(*ps.value_codec, {static_cast<const char*>(msg->payload), msg->len}); !st)
            return "the value is not valid " + ps.spec->value_codec.name + ": " + st.error();
    }
    auto check = [](Codec codec, const void* data, size_t len, const char* what) -> std::optional<std::string> {
        if (codec != Codec::json || !data) return std::nullopt;  // a tombstone or missing key is no JSON error
        const std::string_view text(static_cast<const char*>(data), len);
        if (auto deep = json_depth_error(text)) return std::string(what) + " is " + *deep;
        if (!nlohmann::json::accept(text.begin(), text.end())) return std::string(what) + " is not valid JSON";
        return std::nullopt;
    };
    if (auto e = check(ps.spec->key, msg->key, msg->key_len, "the key")) return e;
    return check(ps.spec->value, msg->payload, msg->len, "the value");
}

thread_local std::vector<mph_header> t_headers;

}  // namespace

PluginCallRecord LaneRunner::call_record(const Lane& lane, const char* callback, int64_t offset) const {
    PluginCallRecord r;
    r.pipeline = s_.app_id.c_str();
    r.agent = lane.agent->spec->name.c_str();
    r.plugin = lane.agent->plugin ? lane.agent->plugin->name().c_str() : "(built into the host)";
    r.sha1 = lane.agent->plugin ? lane.agent->plugin->sha1().c_str() : nullptr;
    r.callback = callback;
    r.topic = lane.partition->topic.c_str();
    r.partition = lane.partition->channel ? -1 : lane.partition->partition;
    r.offset = offset;
    return r;
}

void LaneRunner::work() {
    while (Lane* lane = s_.scheduler->pop()) run(*lane);
}

void LaneRunner::run(Lane& lane) {
    Outcome outcome = Outcome::done;
    milliseconds delay{0};
    int budget = kLaneBudget;
    while (budget > 0 && !lane.stopping.load(std::memory_order_relaxed)) {
        // Read after the stopping check: a plugin swap changes the agent's image only while its lanes stop.
        const auto& cb = lane.agent->info->callbacks;
        if (lane.agent->stats.quarantined.load(std::memory_order_relaxed)) {
            outcome = Outcome::park;
            break;
        }
        if (lane.created && lane.generation != lane.agent->generation.load()) destroy_instance(lane);  // one_for_all
        std::string error;
        if (lane.has_replies.load(std::memory_order_acquire) && !deliver_replies(lane, error)) {
            outcome = on_failure(lane, 0, MPH_FATAL, "create failed: " + error, delay);
            if (outcome == Outcome::done) continue;
            break;
        }
        if (lane.local.empty()) {
            std::lock_guard lock(lane.mu);
            lane.local.swap(lane.queue);
        }
        const size_t dropped = lane.partition->channel ? Channels::drop_revoked_events(lane) : 0;
        if (lane.local.empty() && lane.orphans.empty()) {
            if (dropped > 0) continue;  // all dropped: take what is queued
            break;
        }
        if (!s_.channels->empty() && !lane.partition->channel && s_.channels->holds_back(lane)) {
            delay = kFullChannelRecheck;  // its events wait in its queue (the partition's marks bound them)
            outcome = Outcome::delay;
            break;
        }
        if (!ensure_instance(lane, error)) {
            outcome = on_failure(lane, 0, MPH_FATAL, "create failed: " + error, delay);
            if (outcome == Outcome::done) continue;
            break;
        }
        size_t filtered_limit = kMaxBatch;
        if (lane.agent->filter) {
            const size_t before = lane.local.size();
            outcome = filter_events(lane, filtered_limit, delay);
            budget -= static_cast<int>(before - lane.local.size());  // filtered events count: other lanes get a turn
            if (outcome != Outcome::done) break;
            if (lane.local.empty()) continue;  // all filtered: take what is queued
        }
        // One by one to on_event; to on_batch when the agent has no on_event, or takes batches (take:).
        if (cb.on_event && !lane.agent->spec->take) {
            outcome = deliver(lane, lane.local.front(), delay);
            --budget;
        } else {
            size_t limit = std::min(kMaxBatch, filtered_limit);
            if (const auto& take = lane.agent->spec->take) {
                // Gather up to take.max, or until the batch's first event has waited take.within.
                limit = std::min(static_cast<size_t>(take->max), filtered_limit);
                const auto now = std::chrono::steady_clock::now();
                std::lock_guard lock(lane.mu);
                while (lane.local.size() < limit && !lane.queue.empty()) {
                    lane.local.push_back(lane.queue.front());
                    lane.queue.pop_front();
                }
                if (lane.batch_since == std::chrono::steady_clock::time_point{}) lane.batch_since = now;
                const auto waited = std::chrono::duration_cast<milliseconds>(now - lane.batch_since);
                if (lane.local.size() < limit && waited < take->within) {
                    lane.batch_waiting = lane.local.size();
                    delay = take->within - waited;
                    outcome = Outcome::delay;
                    break;
                }
                lane.batch_waiting = 0;
                lane.batch_since = {};  // this batch goes; the next one starts gathering now
            }
            size_t n = std::min(lane.local.size(), limit);
            outcome = deliver_batch(lane, n, delay);
            budget -= static_cast<int>(n);
        }
        if (outcome != Outcome::done) break;
    }
    lane.end_turn(outcome == Outcome::delay  ? Lane::TurnEnd::later
                  : outcome == Outcome::park ? Lane::TurnEnd::park
                                             : Lane::TurnEnd::done,
                  delay);
}

LaneRunner::Outcome LaneRunner::deliver(Lane& lane, InFlight* f, milliseconds& delay) {
    const rd_kafka_message_t* msg = f->message;  // null for a channel event
    if (!lane.agent->poison.empty() && msg)
        if (auto it = lane.agent->poison.find(where(*lane.partition, f->offset())); it != lane.agent->poison.end()) {
            dead_letter_poison(lane, f, it->second);  // never given to the agent again
            if (failed()) return Outcome::park;
            lane.local.pop_front();
            finish(f);
            return Outcome::done;
        }
    if (auto bad = decode_error(*lane.partition, f, call_record(lane, "the topic's value codec", f->offset()))) {
        lane.agent->stats.undecodable++;
        // Retrying cannot fix an undecodable value: the error policy applies at once.
        lane.tries.exhaust(lane.local.front()->offset(), lane.agent->spec->on_error);  // the policy applies now
        return on_failure(lane, 1, MPH_RETRY, *bad, delay);
    }
    if (!lane.agent->spec->echo.empty())
        if (mph_status st = s_.echo(lane, f); st != MPH_OK)
            return on_failure(lane, 1, MPH_RETRY, "echo to " + lane.agent->spec->echo.front() + " failed", delay);
    mph_event ev = make_event(*lane.partition, f, t_headers);
    lane.ctx.message = msg;
    lane.ctx.current = f;
    lane.ctx.inflight = f;
    lane.ctx.error.clear();
    lane.ctx.views.clear();
    lane.in_callback = 1;
    const auto started = std::chrono::steady_clock::now();
    mph_status verdict;
    {
        ClockedCall call(lane.call, call_record(lane, "on_event", f->offset()), started);
        verdict = lane.agent->info->callbacks.on_event(lane.instance, &lane.ctx, &ev);
    }
    lane.agent->stats.latency.record(std::chrono::steady_clock::now() - started);
    lane.ctx.message = nullptr;
    lane.ctx.current = nullptr;
    lane.ctx.inflight = nullptr;
    if (verdict == MPH_OK) {
        lane.tries.succeeded(f->offset());
        lane.agent->stats.processed.fetch_add(1, std::memory_order_relaxed);
        if (lane.windowed) advance_windows(lane, {msg}, f);  // on_window_close may still ack the event
        lane.in_callback = 0;
        lane.local.pop_front();
        finished_by_agent(lane, f);
        lane.early_acks.clear();
        return Outcome::done;
    }
    lane.in_callback = 0;
    lane.early_acks.clear();  // the event comes again: an acknowledgement of it meant this attempt
    return on_failure(lane, 1, verdict, lane.ctx.error, delay);
}

LaneRunner::Outcome LaneRunner::filter_events(Lane& lane, size_t& limit, milliseconds& delay) {
    const mph_predicate_descriptor& predicate = *lane.agent->filter;
    std::string why;
    auto keep = [&](InFlight* f) {
        std::vector<mph_header> headers;
        const mph_event ev = make_event(*lane.partition, f, headers);
        char errbuf[256] = {};
        PluginCallRecord record = call_record(lane, "the filter predicate", f->offset());
        if (const auto& image = lane.agent->filter_plugin) {  // the predicate's plugin, when not the agent's
            record.plugin = image->name().c_str();
            record.sha1 = image->sha1().c_str();
        }
        ClockedCall call(lane.call, record);
        const int32_t verdict = predicate.keep(&ev, errbuf, sizeof errbuf);
        errbuf[sizeof errbuf - 1] = '\0';
        why = errbuf[0] ? errbuf : "the predicate returned " + std::to_string(verdict);
        return verdict;
    };
    auto drop = [&](size_t i) {  // acknowledged: it is done as far as this agent is concerned
        InFlight* f = lane.local[i];
        lane.local.erase(lane.local.begin() + static_cast<std::ptrdiff_t>(i));
        lane.agent->stats.filtered.fetch_add(1, std::memory_order_relaxed);
        finish(f);
    };
    while (!lane.local.empty()) {
        const int32_t verdict = keep(lane.local.front());
        if (verdict == 1) break;
        if (verdict == 0) {
            drop(0);
            continue;
        }
        // A retry would ask the same predicate the same question: the policy applies now.
        lane.tries.exhaust(lane.local.front()->offset(), lane.agent->spec->on_error);
        return on_failure(lane, 1, MPH_RETRY, "filter " + lane.agent->spec->filter.name + ": " + why, delay);
    }
    if (lane.agent->info->callbacks.on_event && !lane.agent->spec->take)
        return Outcome::done;  // one event at a time: the head is enough
    for (size_t i = 1; i < lane.local.size() && i < limit;) {
        const int32_t verdict = keep(lane.local[i]);
        if (verdict == 1) ++i;
        else if (verdict == 0) drop(i);
        else limit = i;  // the batch stops before it; it is handled at the head next time
    }
    return Outcome::done;
}

LaneRunner::Outcome LaneRunner::deliver_batch(Lane& lane, size_t count, milliseconds& delay) {
    // Undecodable events at the head follow the error policy one by one; the batch is the decodable run.
    const PluginCallRecord in_codec = call_record(lane, "the topic's value codec");
    if (auto bad = decode_error(*lane.partition, lane.local.front(), in_codec)) {
        lane.agent->stats.undecodable++;
        lane.tries.exhaust(lane.local.front()->offset(), lane.agent->spec->on_error);  // the policy applies now
        return on_failure(lane, 1, MPH_RETRY, *bad, delay);
    }
    size_t n = 1;
    while (n < count && !decode_error(*lane.partition, lane.local[n], in_codec)) ++n;
    std::vector<std::vector<mph_header>> headers(n);
    std::vector<mph_event> events(n);
    std::vector<const mph_event*> pointers(n);
    for (size_t i = 0; i < n; ++i) {
        events[i] = make_event(*lane.partition, lane.local[i], headers[i]);
        pointers[i] = &events[i];
    }
    if (!lane.agent->spec->echo.empty())
        for (size_t i = 0; i < n; ++i)  // each copy tracked against its own event
            if (mph_status st = s_.echo(lane, lane.local[i]); st != MPH_OK)
                return on_failure(lane, n, MPH_RETRY, "echo to " + lane.agent->spec->echo.front() + " failed", delay);
    // Outputs are tracked against the first event: the commit cannot pass it before they are acknowledged. (A
    // channel has no such order: there they are tracked against a token holding every event of the batch.)
    InFlight* token = nullptr;
    if (lane.partition->channel && n > 1)
        token = lane.partition->hold_batch({lane.local.begin(), lane.local.begin() + static_cast<std::ptrdiff_t>(n)});
    lane.ctx.inflight = token ? token : lane.local.front();
    lane.ctx.error.clear();
    lane.ctx.views.clear();
    lane.in_callback = n;
    const auto started = std::chrono::steady_clock::now();
    mph_status verdict;
    {
        ClockedCall call(lane.call, call_record(lane, "on_batch", lane.local.front()->offset()), started);
        verdict = lane.agent->info->callbacks.on_batch(lane.instance, &lane.ctx, pointers.data(), n);
    }
    lane.agent->stats.latency.record(std::chrono::steady_clock::now() - started);
    lane.ctx.inflight = nullptr;
    // Also after a failure: what the failed attempt sent is on its way, and the events stay held by their lane.
    if (token) finish(token, 1);
    if (verdict == MPH_OK) {
        lane.tries.succeeded(lane.local[n - 1]->offset());
        lane.agent->stats.processed.fetch_add(n, std::memory_order_relaxed);
        if (lane.windowed) {
            std::vector<const rd_kafka_message_t*> messages;
            for (size_t i = 0; i < n; ++i) messages.push_back(lane.local[i]->message);
            advance_windows(lane, messages, lane.local.front());
        }
        lane.in_callback = 0;
        for (size_t i = 0; i < n; ++i) {
            InFlight* f = lane.local.front();
            lane.local.pop_front();
            finished_by_agent(lane, f);
        }
        lane.early_acks.clear();
        return Outcome::done;
    }
    lane.in_callback = 0;
    lane.early_acks.clear();
    return on_failure(lane, n, verdict, lane.ctx.error, delay);
}

LaneRunner::Outcome LaneRunner::on_failure(Lane& lane, size_t count, mph_status verdict, std::string error,
                                           milliseconds& delay) {
    AgentRuntime& agent = *lane.agent;
    const ErrorPolicy& policy = agent.spec->on_error;
    const SupervisorSpec& supervisor = agent.spec->supervisor;
    agent.stats.failures++;
    if (error.empty()) error = "no reason given (status " + std::to_string(verdict) + ")";
    const std::string at = count > 0 ? where(*lane.partition, lane.local.front()->offset())
                                     : lane.partition->topic + "[" + std::to_string(lane.partition->partition) + "]";
    std::optional<RestartPolicy::Decision> restart;
    if (restarts_instance(verdict)) {
        destroy_instance(lane);
        restart = agent.restarts.on_failure(Clock::now());
        agent.stats.restarts++;
        if (supervisor.strategy == Strategy::one_for_all) agent.generation++;
    }
    const auto offset = count > 0 ? std::optional(lane.local.front()->offset()) : std::nullopt;
    const FailureDecision d = decide_failure(policy, verdict, offset, lane.tries, restart);
    if (d.quarantine) {
        if (!agent.stats.quarantined.exchange(true))
            agent.log->error("agent {} quarantined: more than {} restarts within {} (last failure at {}: {}); "
                             "its events stay uncommitted, the other agents keep running",
                             agent.spec->name, supervisor.max_restarts, format_duration(supervisor.within), at, error);
        return Outcome::park;
    }
    delay = d.delay;
    if (d.restart)
        agent.log->error("agent {} failed at {}: {}; restarting its instance in {} (restart {} of at most {} within {})",
                         agent.spec->name, at, error, format_duration(d.delay), d.restarts_in_window,
                         supervisor.max_restarts, format_duration(supervisor.within));
    if (d.give_up) {
        // Out of retries: the policy decides, for every event the verdict covered.
        for (size_t i = 0; i < count; ++i) {
            InFlight* f = lane.local.front();
            if (policy.then == ThenPolicy::crash) {
                s_.fail("agent " + agent.spec->name + " failed at " + where(*lane.partition, f->offset()) + " after " +
                     std::to_string(lane.tries.attempts()) + " attempt(s) and its policy is crash: " + error);
                return Outcome::park;
            }
            apply_error_policy(lane, f, error);
            if (failed()) return Outcome::park;
            lane.local.pop_front();
            finish(f);
        }
        lane.tries.reset();
        return d.restart ? Outcome::delay : Outcome::done;
    }
    if (!d.restart)
        agent.log->warn("agent {} asked to retry {} (attempt {} of {}): {}; retrying in {}", agent.spec->name, at,
                        lane.tries.attempts(), policy.retry + 1, error, format_duration(d.delay));
    return Outcome::delay;
}

}  // namespace mephisto
