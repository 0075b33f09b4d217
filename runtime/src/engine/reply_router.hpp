#pragma once
// The asking side of Faust's agent.ask: a host's own reply topic, the requests waiting for an answer, and
// their deadlines. A request carries the reply topic and a correlation id in its headers; whichever host
// serves the agent answers onto the reply topic (host function `reply`), and the router hands the answer, or
// a timeout, back to whoever asked. It knows nothing of lanes: the pipeline gives it an opaque waiter and
// gets it back with the answer.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include "common/result.hpp"
#include "kafka/client_config.hpp"
#include "mephisto/mephisto.h"

namespace mephisto {

// Header names of a request and of its reply (Faust uses the same two ideas: reply_to and correlation_id).
inline constexpr const char* kReplyToHeader = "mephisto-reply-to";
inline constexpr const char* kCorrelationHeader = "mephisto-correlation-id";

// Who waits for an answer: opaque to the router.
struct ReplyWaiter {
    virtual ~ReplyWaiter() = default;
};

// An answer on its way back: the reply (status MPH_OK, message set and owned by the receiver) or a timeout
// (MPH_ERR_TIMEOUT, message null); MPH_ERR_STATE when the router stopped before either.
struct Answer {
    uint64_t id = 0;
    mph_status status = MPH_OK;
    rd_kafka_message_t* message = nullptr;
    std::shared_ptr<ReplyWaiter> waiter;
    void* token = nullptr;  // the asker's own bookkeeping (the event that asked)
};

class ReplyRouter {
public:
    using Clock = std::chrono::steady_clock;
    using Deliver = std::function<void(Answer&&)>;

    // `topic` must exist (one partition); it is read from its beginning: a fresh name per host start, so
    // nothing on it predates this router. `deliver` runs on the router's thread (or in stop()).
    ReplyRouter(std::string topic, std::map<std::string, std::string> client_properties, Deliver deliver,
                std::shared_ptr<spdlog::logger> log);
    ~ReplyRouter();

    Status start();
    // Every request still waiting is answered with MPH_ERR_STATE.
    void stop();

    const std::string& topic() const { return topic_; }
    // Registers a request before it is produced (its reply may come back at once); returns its id.
    uint64_t expect(std::weak_ptr<ReplyWaiter> waiter, void* token, Clock::time_point deadline);
    // Withdraws a request whose produce failed; its token, or null when it was already answered.
    void* withdraw(uint64_t id);
    size_t waiting() const;

private:
    struct Waiting {
        std::weak_ptr<ReplyWaiter> waiter;
        void* token = nullptr;
        Clock::time_point deadline;
    };
    void run();
    void answer(uint64_t id, mph_status status, rd_kafka_message_t* message);

    std::string topic_;
    std::map<std::string, std::string> properties_;
    Deliver deliver_;
    std::shared_ptr<spdlog::logger> log_;
    KafkaPtr consumer_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mu_;
    uint64_t next_id_ = 1;
    std::map<uint64_t, Waiting> waiting_;
    std::multimap<Clock::time_point, uint64_t> deadlines_;
    void forget(std::map<uint64_t, Waiting>::iterator it);  // drops a waiting ask and its deadline; under mu_
};

// The correlation id a request carries, parsed from its header; 0 when absent or malformed.
uint64_t correlation_id(const rd_kafka_message_t* message);
// A header's last value as a string; empty when absent.
std::string header_value(const rd_kafka_message_t* message, const char* name);

}  // namespace mephisto
