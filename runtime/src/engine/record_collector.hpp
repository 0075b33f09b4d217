#pragma once
// Where agents' outputs go (Kafka Streams' RecordCollector): each record is produced holding a share of the
// input that caused it (engine/partition_ledger.hpp), and its delivery report lets go of that share, so an input
// is committed only once everything it produced was acknowledged. A failed delivery abandons the input (it is
// processed again after a restart, never committed) and fails the pipeline; a purge at shutdown only abandons.
// The delivery reports of changelog flushes and dead letters go to their owners.
// THREAD: send on the callback's thread; on_delivery on the producer's poll thread.
#include <atomic>
#include <functional>
#include <string>

#include "engine/partition_ledger.hpp"
#include "kafka/record_producer.hpp"

namespace mephisto {

class RecordCollector {
public:
    struct Handlers {
        // A changelog flush's record and a dead letter: their tags' kinds say which (DeliveryTag::Kind).
        std::function<void(DeliveryTag*, rd_kafka_resp_err_t, const rd_kafka_message_t&)> flush;
        std::function<void(DeliveryTag*, rd_kafka_resp_err_t)> dead_letter;
        // An output was lost: the pipeline cannot go on without losing it.
        std::function<void(const std::string& reason)> fail;
    };
    RecordCollector(RecordProducer& producer, Handlers handlers)
        : producer_(producer), handlers_(std::move(handlers)) {}

    // Produces one record caused by `cause` (null: a timer's, which nobody commits). A refused record gives its
    // share back at once (the caller still holds its own) and says why in `why`.
    mph_status send(InFlight* cause, const std::string& topic, const void* key, size_t key_len, const void* value,
                    size_t value_len, rd_kafka_headers_t* headers, int32_t partition, int64_t timestamp_ms,
                    std::string& why);
    // The producer's delivery report of a record sent with `opaque`.
    void on_delivery(void* opaque, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg);

    uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
    uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }  // deliveries that failed

private:
    RecordProducer& producer_;
    Handlers handlers_;
    std::atomic<uint64_t> sent_{0};
    std::atomic<uint64_t> lost_{0};
};

}  // namespace mephisto
