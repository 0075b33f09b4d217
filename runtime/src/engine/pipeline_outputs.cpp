// What agents produce: emit, send, forward and echo, each output tracked until the broker acknowledges it,
// since its input is committed only then (at least once).
#include "engine/event_bytes.hpp"
#include "engine/message_views.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {

mph_status Pipeline::produce_tracked(mph_agent_ctx& ctx, const std::string& topic, const void* key, size_t key_len,
                                     const void* value, size_t value_len, rd_kafka_headers_t* headers,
                                     int32_t partition, int64_t timestamp_ms) {
    if (!channels_->empty())
        if (PartitionState* channel = channels_->find(topic))
            return Channels::send(ctx, *channel, key, key_len, value, value_len, headers, timestamp_ms);
    std::string why;
    const mph_status st = collector_->send(ctx.inflight, topic, key, key_len, value, value_len, headers, partition,
                                           timestamp_ms, why);
    if (st != MPH_OK) ctx.log->warn("{}", why);
    else if (ctx.stats) ctx.stats->outputs.fetch_add(1, std::memory_order_relaxed);
    return st;
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
