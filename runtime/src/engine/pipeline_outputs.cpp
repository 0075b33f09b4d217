// What agents produce: emit, send, forward and echo, each output tracked until the broker acknowledges it,
// since its input is committed only then (at least once).
#include "engine/event_bytes.hpp"
#include "engine/message_views.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {

mph_status Pipeline::produce_tracked(mph_agent_ctx& ctx, const std::string& topic, const void* key, size_t key_len,
                                     const void* value, size_t value_len, rd_kafka_headers_t* headers,
                                     int32_t partition, int64_t timestamp_ms) {
    if (!channels_.empty())
        if (auto it = channels_.find(topic); it != channels_.end())
            return send_to_channel(ctx, *it->second, key, key_len, value, value_len, headers, timestamp_ms);
    InFlight* f = ctx.inflight;
    if (f) f->pending.fetch_add(1, std::memory_order_relaxed);
    std::string why;
    mph_status st = producer_->produce(topic, key, key_len, value, value_len, headers, partition, timestamp_ms,
                                       f ? static_cast<DeliveryTag*>(f) : nullptr, &why);
    if (st != MPH_OK) {
        if (f) f->pending.fetch_sub(1, std::memory_order_relaxed);  // the caller still holds its own share
        ctx.log->warn("{}", why);
    } else if (ctx.stats) {
        ctx.stats->outputs.fetch_add(1, std::memory_order_relaxed);
    }
    return st;
}

void Pipeline::on_delivery(void* opaque, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) {
    auto* tag = static_cast<DeliveryTag*>(opaque);
    if (tag && tag->kind == DeliveryTag::Kind::flush) {
        on_flush_delivery(static_cast<ShardFlush*>(tag), err, msg);
        return;
    }
    if (tag && tag->kind == DeliveryTag::Kind::dead_letter) {
        on_dead_letter_delivery(static_cast<DeadLetter*>(tag), err);
        return;
    }
    auto* f = static_cast<InFlight*>(tag);
    if (err) {
        if (err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            fail(std::string("delivery to ") + rd_kafka_topic_name(msg.rkt) + " failed: " + rd_kafka_err2str(err) +
                 "; the input that produced it stays uncommitted");
        if (f) finish(f, 0);
        return;
    }
    if (f) finish(f);
}

mph_status Pipeline::emit(mph_agent_ctx& ctx, const mph_message* raw) {
    if (!ctx.sinks || ctx.sinks->empty()) return MPH_ERR_UNSUPPORTED;
    if (raw->struct_size < offsetof(mph_message, partition)) return MPH_ERR_INVALID;
    mph_message m = read_message(raw);
    if (raw->struct_size < offsetof(mph_message, partition) + sizeof(int32_t)) m.partition = MPH_PARTITION_ANY;
    for (const auto& sink : *ctx.sinks) {
        mph_status st = produce_tracked(ctx, sink, m.key, m.key_len, m.value, m.value_len,
                                        to_kafka_headers(m.headers, m.header_count), m.partition, m.timestamp_ms);
        if (st != MPH_OK) return st;
    }
    return MPH_OK;
}

mph_status Pipeline::send(mph_agent_ctx& ctx, const std::string& topic, const mph_message* raw) {
    if (raw->struct_size < offsetof(mph_message, partition)) return MPH_ERR_INVALID;
    mph_message m = read_message(raw);
    if (raw->struct_size < offsetof(mph_message, partition) + sizeof(int32_t)) m.partition = MPH_PARTITION_ANY;
    return produce_tracked(ctx, topic, m.key, m.key_len, m.value, m.value_len,
                           to_kafka_headers(m.headers, m.header_count), m.partition, m.timestamp_ms);
}

mph_status Pipeline::forward(mph_agent_ctx& ctx) {
    if (!ctx.current) return MPH_ERR_STATE;
    if (!ctx.sinks || ctx.sinks->empty()) return MPH_ERR_UNSUPPORTED;
    return forward_to(ctx, ctx.current, *ctx.sinks);
}

mph_status Pipeline::echo(Lane& lane, InFlight* event) {
    if (event->offset() <= lane.echoed) return MPH_OK;  // copied before a retry
    lane.ctx.inflight = event;
    const mph_status st = forward_to(lane.ctx, event, lane.agent->spec->echo);
    lane.ctx.inflight = nullptr;
    if (st == MPH_OK) lane.echoed = event->offset();
    return st;
}

mph_status Pipeline::forward_to(mph_agent_ctx& ctx, const InFlight* event, const std::vector<std::string>& topics) {
    const EventBytes bytes = bytes_of(event);
    for (const auto& sink : topics) {
        mph_status st = produce_tracked(ctx, sink, bytes.key, bytes.key_len, bytes.value, bytes.value_len,
                                        copy_headers(event), MPH_PARTITION_ANY, bytes.timestamp_ms);
        if (st != MPH_OK) return st;
    }
    return MPH_OK;
}

}  // namespace mephisto
