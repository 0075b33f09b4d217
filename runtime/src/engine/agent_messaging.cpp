// Agents talking to agents (Faust's agent.cast and agent.ask, and the reply an asked agent yields) and manual
// acknowledgement (Faust's acks=False with stream.ack). Both keep the host's one promise: an input's offset is
// committed only after everything it caused is done. An ask holds the asking event until the reply (or the
// timeout) has been through on_reply; a manually acknowledged event is held until the agent acknowledges it.
#include <algorithm>
#include <random>

#include "engine/clocked_call.hpp"
#include "engine/message_views.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {
namespace {

// A fresh reply topic per host start, as Faust does (reply_to defaults to a unique name): nothing on it is
// older than the host reading it, so it is read from the beginning and needs no committed offsets.
std::string fresh_reply_topic(const std::string& app_id) {
    std::random_device random;
    const uint64_t token = (static_cast<uint64_t>(random()) << 32) ^ random();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(token));
    return app_id + "-reply-" + hex;
}

// A header of the event being answered, whichever its source (a topic or a channel); empty when absent.
std::string request_header(const InFlight* event, const char* name) {
    if (event->message) return header_value(event->message, name);
    for (auto it = event->channel_event->headers.rbegin(); it != event->channel_event->headers.rend(); ++it)
        if (it->first == name) return it->second.value_or("");
    return {};
}

mph_message message_of(const mph_message* raw) {
    mph_message m = read_message(raw);
    if (raw->struct_size < offsetof(mph_message, partition) + sizeof(int32_t)) m.partition = MPH_PARTITION_ANY;
    return m;
}

}  // namespace

std::string Pipeline::agent_topic(const std::string& agent) const {
    std::lock_guard lock(agents_mutex_);
    // An agent re-keyed by group_by/through reads its repartition topic: a message goes to the sources of its
    // repartition agent instead, to be re-keyed like every other event.
    for (const auto& a : agents_)
        if (a->spec->builtin == "repartition" && a->spec->name == agent + "-repartition" && !a->spec->from.empty())
            return a->spec->from.front();
    for (const auto& a : agents_)
        if (a->spec->name == agent && !a->spec->from.empty()) return a->spec->from.front();
    return {};
}

mph_status Pipeline::cast(mph_agent_ctx& ctx, const std::string& agent, const mph_message* raw) {
    if (!raw || raw->struct_size < offsetof(mph_message, partition)) return MPH_ERR_INVALID;
    const std::string topic = agent_topic(agent);
    if (topic.empty()) {
        ctx.log->warn("cast to {}: no agent of that name in pipeline {}", agent, config_.app_id);
        return MPH_ERR_NOT_FOUND;
    }
    return send(ctx, topic, raw);
}

Status Pipeline::ensure_reply_router() {
    if (reply_router_ready_.load(std::memory_order_acquire)) return {};
    std::lock_guard lock(reply_router_mutex_);
    if (reply_router_) return {};
    // A broker that refused the reply topic is not asked again on every ask (each try names a new topic).
    if (reply_router_failed_at_ != std::chrono::steady_clock::time_point{} &&
        std::chrono::steady_clock::now() - reply_router_failed_at_ < std::chrono::seconds(10))
        return make_error("the reply topic could not be created; retrying in at most 10 s");
    reply_router_failed_at_ = std::chrono::steady_clock::now();
    const std::string topic = fresh_reply_topic(config_.app_id);
    if (auto st = topic_admin_->ensure(topic, 1); !st) return make_error("cannot create the reply topic: " + st.error());
    std::map<std::string, std::string> props = config_.broker.properties;
    props["bootstrap.servers"] = bootstrap_;
    props["client.id"] = "mephisto-" + config_.app_id + "-replies";
    auto router = std::make_unique<ReplyRouter>(topic, std::move(props), [this](Answer&& a) { route_answer(std::move(a)); },
                                                log_);
    if (auto st = router->start(); !st) return st;
    reply_router_failed_at_ = {};
    reply_router_ = std::move(router);
    reply_router_ready_.store(reply_router_.get(), std::memory_order_release);
    return {};
}

size_t Pipeline::asks_waiting() const {
    const ReplyRouter* router = reply_router_ready_.load(std::memory_order_acquire);
    return router ? router->waiting() : 0;
}

mph_status Pipeline::ask(mph_agent_ctx& ctx, const std::string& agent, const mph_message* raw, int64_t timeout_ms,
                         uint64_t* request_id) {
    if (!raw || raw->struct_size < offsetof(mph_message, partition) || timeout_ms <= 0) return MPH_ERR_INVALID;
    Lane* lane = ctx.lane;
    InFlight* f = ctx.inflight;
    if (!lane || !f) return MPH_ERR_STATE;  // a timer, or no event to hold until the reply
    if (!lane->agent->info->callbacks.on_reply) return MPH_ERR_UNSUPPORTED;
    const std::string topic = agent_topic(agent);
    if (topic.empty()) {
        ctx.log->warn("ask {}: no agent of that name in pipeline {}", agent, config_.app_id);
        return MPH_ERR_NOT_FOUND;
    }
    if (auto st = ensure_reply_router(); !st) {
        ctx.log->warn("ask {}: {}", agent, st.error());
        return MPH_ERR_STATE;
    }
    ReplyRouter& router = *reply_router_ready_.load(std::memory_order_acquire);
    const mph_message m = message_of(raw);
    // The ask's own share of the event: it stays unfinished until on_reply has run.
    f->pending.fetch_add(1, std::memory_order_relaxed);
    const uint64_t id = router.expect(lane->mailbox, f,
                                      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms));
    rd_kafka_headers_t* headers = to_kafka_headers(m.headers, m.header_count);
    if (!headers) headers = rd_kafka_headers_new(2);
    const std::string correlation = std::to_string(id);
    rd_kafka_header_add(headers, kReplyToHeader, -1, router.topic().data(), static_cast<ssize_t>(router.topic().size()));
    rd_kafka_header_add(headers, kCorrelationHeader, -1, correlation.data(), static_cast<ssize_t>(correlation.size()));
    const mph_status st =
        produce_tracked(ctx, topic, m.key, m.key_len, m.value, m.value_len, headers, m.partition, m.timestamp_ms);
    if (st != MPH_OK) {
        if (router.withdraw(id)) {
            f->pending.fetch_sub(1, std::memory_order_relaxed);
            return st;
        }
        // Timed out while the produce blocked: on_reply hears of it, so the caller gets the id after all.
    }
    lane->agent->stats.asks.fetch_add(1, std::memory_order_relaxed);
    if (request_id) *request_id = id;
    return MPH_OK;
}

mph_status Pipeline::reply(mph_agent_ctx& ctx, const void* value, size_t value_len) {
    if (!ctx.current) return MPH_ERR_STATE;
    const std::string reply_to = request_header(ctx.current, kReplyToHeader);
    const std::string correlation = request_header(ctx.current, kCorrelationHeader);
    if (reply_to.empty() || correlation.empty()) return MPH_ERR_NOT_FOUND;
    rd_kafka_headers_t* headers = rd_kafka_headers_new(2);
    rd_kafka_header_add(headers, kCorrelationHeader, -1, correlation.data(), static_cast<ssize_t>(correlation.size()));
    rd_kafka_header_add(headers, "mephisto-agent", -1, ctx.agent_name.data(), static_cast<ssize_t>(ctx.agent_name.size()));
    // A NULL value would be a tombstone; an answer is always a value, possibly empty.
    static const char empty = '\0';
    return produce_tracked(ctx, reply_to, correlation.data(), correlation.size(), value ? value : &empty, value_len,
                           headers, 0, 0);
}

void Pipeline::route_answer(Answer&& answer) {
    auto* f = static_cast<InFlight*>(answer.token);
    int completed = 0;
    if (auto box = std::static_pointer_cast<LaneMailbox>(answer.waiter)) {
        std::lock_guard box_lock(box->mu);
        if (Lane* lane = box->lane) {
            lane->give([&] {
                lane->replies.push_back(std::move(answer));
                lane->has_replies.store(true, std::memory_order_release);
            });
            return;
        }
        completed = box->released_as;
    }
    // Nobody to tell. After a revoke (or when the router stopped) the event stays uncommitted and whoever owns
    // the partition next asks again; after the agent was removed, its share is done.
    if (answer.message) rd_kafka_message_destroy(answer.message);
    finish(f, completed);
}

mph_status Pipeline::ack(mph_agent_ctx& ctx, int64_t offset) {
    Lane* lane = ctx.lane;
    if (!lane || !lane->agent->spec->manual_ack) return MPH_ERR_STATE;
    if (auto it = lane->held.find(offset); it != lane->held.end()) {
        InFlight* f = it->second;
        lane->held.erase(it);
        lane->agent->stats.unacked.fetch_sub(1, std::memory_order_relaxed);
        finish(f);
        return MPH_OK;
    }
    for (size_t i = 0; i < lane->in_callback && i < lane->local.size(); ++i)
        if (lane->local[i]->offset() == offset) {
            if (std::find(lane->early_acks.begin(), lane->early_acks.end(), offset) == lane->early_acks.end())
                lane->early_acks.push_back(offset);
            return MPH_OK;
        }
    return MPH_ERR_NOT_FOUND;
}

}  // namespace mephisto
