#pragma once
// What the engine needs of a producer to send records: kafka/producer.hpp is the real one; the core tests
// (tests/core) drive the engine's record collector with a fake that answers like librdkafka.
#include <cstddef>
#include <cstdint>
#include <string>

#include <librdkafka/rdkafka.h>

#include "mephisto/mephisto.h"

namespace mephisto {

class RecordProducer {
public:
    virtual ~RecordProducer() = default;
    // Produces one message; its delivery report later carries `opaque`. `headers` may be NULL; ownership passes
    // on success and is freed on failure. Returns MPH_OK, MPH_ERR_FULL, or MPH_ERR_INVALID, with the reason in
    // `*why` and librdkafka's error in `*code` when given; a refused message gets no delivery report.
    virtual mph_status produce(const std::string& topic, const void* key, size_t key_len, const void* value,
                               size_t value_len, rd_kafka_headers_t* headers, int32_t partition, int64_t timestamp_ms,
                               void* opaque, std::string* why = nullptr, rd_kafka_resp_err_t* code = nullptr) = 0;
};

}  // namespace mephisto
