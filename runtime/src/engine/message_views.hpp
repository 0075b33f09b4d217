#pragma once
// Conversions between librdkafka messages and the ABI's plain structs (mph_message, mph_header, mph_event).
#include <vector>

#include <librdkafka/rdkafka.h>

#include "mephisto/mephisto.h"

namespace mephisto {

// Copies the first `size` bytes a plugin declared, zero-filling members it does not know (convention 3).
mph_message read_message(const mph_message* m);
// A plugin's headers as a librdkafka header list (null when there are none); the caller owns it.
rd_kafka_headers_t* to_kafka_headers(const mph_header* headers, size_t count);
// The headers of a consumed message as mph_header views, valid while the message lives.
void read_headers(const rd_kafka_message_t* msg, std::vector<mph_header>& out);
// A consumed message as an event; `topic` and `headers` must outlive the event.
mph_event make_event(const char* topic, const rd_kafka_message_t* msg, std::vector<mph_header>& headers);

}  // namespace mephisto
