#pragma once
// Whether a pipeline's clients can reach a broker (RELIABILITY 12), from what librdkafka tells them: "all brokers
// down" starts an outage, the latest connection error says why, and a metadata request that gets an answer ends
// it (librdkafka has no event for a broker coming back).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

namespace mephisto {

class BrokerHealth {
public:
    // `unreachable_timeout`: how long an outage may last before probe() says to fail (0: forever).
    BrokerHealth(std::string bootstrap, std::chrono::milliseconds unreachable_timeout, std::shared_ptr<spdlog::logger> log)
        : bootstrap_(std::move(bootstrap)), timeout_(unreachable_timeout), log_(std::move(log)) {}

    // A client's error callback. THREAD: librdkafka's.
    void on_client_error(rd_kafka_resp_err_t err, const std::string& reason);
    // While no broker is reachable: since when and why ("no broker of H reachable for 12 s: <reason>"). THREAD: any.
    std::optional<std::string> problem() const;
    bool down() const { return down_since_ns_.load() != 0; }
    // During an outage, at most once a second: asks `client` for metadata, and ends the outage when it answers.
    // Returns why the pipeline must fail once the outage outlasted the timeout. THREAD: one (the watch).
    std::optional<std::string> probe(rd_kafka_t* client);

private:
    std::string bootstrap_;
    std::chrono::milliseconds timeout_;
    std::shared_ptr<spdlog::logger> log_;
    std::atomic<int64_t> down_since_ns_{0};  // steady clock; 0: reachable
    mutable std::mutex mu_;
    std::string reason_;      // guarded by mu_: the latest word on why a connection failed
    int64_t probed_ns_ = 0;  // probe's thread only
};

}  // namespace mephisto
