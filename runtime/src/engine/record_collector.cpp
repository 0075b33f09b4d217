#include "engine/record_collector.hpp"

namespace mephisto {

mph_status RecordCollector::send(InFlight* cause, const std::string& topic, const void* key, size_t key_len,
                                 const void* value, size_t value_len, rd_kafka_headers_t* headers, int32_t partition,
                                 int64_t timestamp_ms, std::string& why) {
    if (cause) add_share(cause);  // its delivery report lets go of it
    const mph_status st = producer_.produce(topic, key, key_len, value, value_len, headers, partition, timestamp_ms,
                                            cause ? static_cast<DeliveryTag*>(cause) : nullptr, &why);
    if (st != MPH_OK) {
        if (cause) cause->pending.fetch_sub(1, std::memory_order_relaxed);  // no report comes: the caller's share stands
        return st;
    }
    sent_.fetch_add(1, std::memory_order_relaxed);
    return MPH_OK;
}

void RecordCollector::on_delivery(void* opaque, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) {
    auto* tag = static_cast<DeliveryTag*>(opaque);
    if (tag && tag->kind == DeliveryTag::Kind::flush) return handlers_.flush(tag, err, msg);
    if (tag && tag->kind == DeliveryTag::Kind::dead_letter) return handlers_.dead_letter(tag, err);
    auto* cause = static_cast<InFlight*>(tag);
    if (!err) {
        if (cause) finish(cause);
        return;
    }
    lost_.fetch_add(1, std::memory_order_relaxed);
    // A purge (a shutdown past its deadline) loses nothing: the input stays uncommitted and is processed again.
    if (err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        handlers_.fail(std::string("delivery to ") + (msg.rkt ? rd_kafka_topic_name(msg.rkt) : "?") +
                       " failed: " + rd_kafka_err2str(err) + "; the input that produced it stays uncommitted");
    if (cause) finish(cause, 0);
}

}  // namespace mephisto
