#pragma once
// The pipeline's producer: idempotent, murmur2_random (keys land where Java and Faust producers put them),
// polled on its own thread so delivery reports never wait for a worker.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>

#include "common/duration.hpp"
#include "kafka/client_config.hpp"
#include "kafka/record_producer.hpp"
#include "mephisto/mephisto.h"

namespace mephisto {

class Producer : public RecordProducer {
public:
    // Called once per produced message on the producer's poll thread: `opaque` is what produce() got,
    // `err` is NO_ERROR when the broker acknowledged the message.
    using DeliveryFn = std::function<void(void* opaque, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg)>;
    // Called on the poll thread for errors librdkafka reports outside deliveries (`err`: its code, such as
    // RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN); `fatal` means the producer can no longer guarantee its semantics
    // and the pipeline must stop.
    using ErrorFn = std::function<void(rd_kafka_resp_err_t err, bool fatal, const std::string& reason)>;

    static Result<std::unique_ptr<Producer>> create(const std::map<std::string, std::string>& properties,
                                                    DeliveryFn on_delivery, ErrorFn on_error);
    ~Producer() override;

    // Produces one message. `headers` may be NULL; ownership passes to librdkafka on success and is freed
    // here on failure. When the local queue is full, waits up to `queue_wait` for room.
    // Returns MPH_OK, MPH_ERR_FULL, or MPH_ERR_INVALID (unknown partition, message too large...), with the
    // reason in `*why` and librdkafka's error in `*code` when given.
    mph_status produce(const std::string& topic, const void* key, size_t key_len, const void* value,
                       size_t value_len, rd_kafka_headers_t* headers, int32_t partition, int64_t timestamp_ms,
                       void* opaque, std::string* why = nullptr, rd_kafka_resp_err_t* code = nullptr) override;

    // Waits until every produced message got its delivery report, or the timeout passed. Returns true when
    // nothing is outstanding.
    bool flush(Millis timeout);
    // Drops undelivered messages (their delivery reports arrive with ERR__PURGE_QUEUE). Used at shutdown
    // after flush timed out, so no report is left pending.
    void purge();
    // Stops the poll thread (after flush/purge).
    void stop();

    rd_kafka_t* handle() const { return rk_.get(); }
    int64_t outstanding() const { return rd_kafka_outq_len(rk_.get()); }

private:
    Producer() = default;
    rd_kafka_topic_t* topic_handle(const std::string& name);

    KafkaPtr rk_;
    DeliveryFn on_delivery_;
    ErrorFn on_error_;
    std::shared_mutex topics_mutex_;
    std::map<std::string, rd_kafka_topic_t*, std::less<>> topics_;
    std::atomic<bool> running_{true};
    std::thread poller_;
};

}  // namespace mephisto
