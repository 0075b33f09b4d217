#include "engine/event_bytes.hpp"

#include "engine/pipeline.hpp"

namespace mephisto {

std::string where(const PartitionState& ps, int64_t offset) {
    return ps.topic + "[" + std::to_string(ps.partition) + "]@" + std::to_string(offset);
}

EventBytes bytes_of(const InFlight* f) {
    EventBytes b;
    if (const rd_kafka_message_t* m = f->message) {
        b.key = m->key;
        b.key_len = m->key ? m->key_len : 0;
        b.value = m->payload;
        b.value_len = m->payload ? m->len : 0;
        rd_kafka_timestamp_type_t type;
        const int64_t ts = rd_kafka_message_timestamp(m, &type);
        b.timestamp_ms = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? 0 : ts;
        return b;
    }
    const ChannelEvent& c = *f->channel_event;
    const auto key = c.key(), value = c.value();
    b.key = key ? key->data() : nullptr;
    b.key_len = key ? key->size() : 0;
    b.value = value ? value->data() : nullptr;
    b.value_len = value ? value->size() : 0;
    b.timestamp_ms = c.timestamp_ms;
    return b;
}

rd_kafka_headers_t* copy_headers(const InFlight* f) {
    if (f->message) {
        rd_kafka_headers_t* original = nullptr;
        if (rd_kafka_message_headers(f->message, &original) == RD_KAFKA_RESP_ERR_NO_ERROR && original)
            return rd_kafka_headers_copy(original);
        return nullptr;
    }
    const auto& headers = f->channel_event->headers;
    if (headers.empty()) return nullptr;
    rd_kafka_headers_t* h = rd_kafka_headers_new(headers.size());
    for (const auto& [name, value] : headers)
        rd_kafka_header_add(h, name.data(), static_cast<ssize_t>(name.size()), value ? value->data() : nullptr,
                            value ? static_cast<ssize_t>(value->size()) : 0);
    return h;
}

}  // namespace mephisto
