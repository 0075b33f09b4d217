#pragma once
// What an in-flight event holds, whichever its source (a consumed message or a channel event): its bytes, its
// headers and its coordinates, for producing it again (forward, echo, dead letters) and for messages.
#include <cstddef>
#include <cstdint>
#include <string>

#include <librdkafka/rdkafka.h>

namespace mephisto {

struct InFlight;
struct PartitionState;

// "topic[partition]@offset", as logs and dead-letter headers name an event.
std::string where(const PartitionState& ps, int64_t offset);

// An event's key, value and timestamp (0: none).
struct EventBytes {
    const void* key = nullptr;
    size_t key_len = 0;
    const void* value = nullptr;  // null: a tombstone
    size_t value_len = 0;
    int64_t timestamp_ms = 0;
};
EventBytes bytes_of(const InFlight* f);

// A copy of an event's headers for producing it again (null when it has none); the caller owns it.
rd_kafka_headers_t* copy_headers(const InFlight* f);

}  // namespace mephisto
