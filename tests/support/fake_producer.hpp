#pragma once
// A RecordProducer for the in-process core tests: it keeps what was produced, in order, until the test answers
// for it (next()), and refuses the way librdkafka does: a full queue (`refuse`), or a message larger than its
// message.max.bytes (`max_bytes`, with RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE).
#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "kafka/record_producer.hpp"

namespace mephisto::testing_support {

class FakeProducer : public RecordProducer {
public:
    struct Record {
        std::string topic, key, value;
        std::map<std::string, std::string> headers;
        int32_t partition = -1;
        void* opaque = nullptr;
    };
    mph_status refuse = MPH_OK;  // what produce answers (a full queue: MPH_ERR_FULL)
    size_t max_bytes = std::numeric_limits<size_t>::max();  // key and value together
    std::deque<Record> outstanding;  // produced, not yet answered
    std::vector<Record> produced;    // everything accepted, in order

    mph_status produce(const std::string& topic, const void* key, size_t key_len, const void* value, size_t value_len,
                       rd_kafka_headers_t* headers, int32_t partition, int64_t, void* opaque, std::string* why,
                       rd_kafka_resp_err_t* code) override {
        Record r{topic, std::string(static_cast<const char*>(key), key_len),
                 std::string(static_cast<const char*>(value), value_len), {}, partition, opaque};
        const char* name = nullptr;
        const void* v = nullptr;
        size_t len = 0;
        for (size_t i = 0; headers && rd_kafka_header_get_all(headers, i, &name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
            r.headers[name] = std::string(static_cast<const char*>(v), len);
        if (headers) rd_kafka_headers_destroy(headers);  // ours on success, freed on failure: either way gone
        if (refuse != MPH_OK) {
            if (why) *why = "Local: Queue full";
            return refuse;
        }
        if (key_len + value_len > max_bytes) {
            if (why) *why = "Broker: Message size too large";
            if (code) *code = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
            return MPH_ERR_INVALID;
        }
        produced.push_back(r);
        outstanding.push_back(r);
        return MPH_OK;
    }
    // The oldest record still waiting for its delivery report.
    Record next() {
        REQUIRE(!outstanding.empty());
        Record r = outstanding.front();
        outstanding.pop_front();
        return r;
    }
};

}  // namespace mephisto::testing_support
