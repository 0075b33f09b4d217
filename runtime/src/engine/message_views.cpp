#include "engine/message_views.hpp"

#include <algorithm>
#include <cstring>

namespace mephisto {

mph_message read_message(const mph_message* m) {
    mph_message out{};
    std::memcpy(&out, m, std::min(m->struct_size, sizeof out));
    return out;
}

rd_kafka_headers_t* to_kafka_headers(const mph_header* headers, size_t count) {
    if (!headers || count == 0) return nullptr;
    rd_kafka_headers_t* h = rd_kafka_headers_new(count);
    for (size_t i = 0; i < count; ++i)
        rd_kafka_header_add(h, headers[i].name, static_cast<ssize_t>(headers[i].name_len), headers[i].value,
                            static_cast<ssize_t>(headers[i].value_len));
    return h;
}

void read_headers(const rd_kafka_message_t* msg, std::vector<mph_header>& out) {
    out.clear();
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs) return;
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
        out.push_back(mph_header{name, std::strlen(name), value, size});
}

mph_event make_event(const char* topic, const rd_kafka_message_t* msg, std::vector<mph_header>& headers) {
    mph_event ev{};
    ev.struct_size = sizeof ev;
    ev.topic = topic;
    ev.partition = msg->partition;
    ev.offset = msg->offset;
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(msg, &type);
    ev.timestamp_ms = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
    ev.key = msg->key;
    ev.key_len = msg->key ? msg->key_len : 0;
    ev.value = msg->payload;
    ev.value_len = msg->payload ? msg->len : 0;
    read_headers(msg, headers);
    ev.headers = headers.empty() ? nullptr : headers.data();
    ev.header_count = headers.size();
    return ev;
}

}  // namespace mephisto
