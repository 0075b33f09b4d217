#pragma once
// Dead letters on their way to their topic (an agent's error policy, a quarantined record). A letter holds a
// share of its event (engine/partition_ledger.hpp) until the broker took it, so the event commits only then.
// A letter too large to produce whole, for the producer (message.max.bytes) or for the broker (the topic's
// max.message.bytes), goes again with less of its event: without its value, then also without its key and
// headers, with a note of what was dropped and why. Its coordinates and the reason always go, so an event's size
// never stops the host (which would stop it again at every restart: the offset never commits). Internal to the
// engine. THREAD: send on the callback's thread; on_delivery on the producer's poll thread.
#include <functional>
#include <memory>
#include <spdlog/logger.h>
#include <string>
#include <utility>
#include <vector>

#include "engine/partition_ledger.hpp"
#include "kafka/record_producer.hpp"

namespace mephisto {

struct DeadLetter : DeliveryTag {
    DeadLetter() : DeliveryTag{Kind::dead_letter} {}
    InFlight* event = nullptr;
    std::string topic;   // where it goes
    std::string agent;   // the agent whose policy sent it
    std::shared_ptr<spdlog::logger> log;  // the agent's
    std::string source;  // "topic[partition]@offset"
    std::string error;   // why the agent's policy sent it here
    int attempts = 0;
    int level = 0;       // 0: whole; 1: without its value; 2: only its coordinates and the reason
    std::string refusal; // why the previous level was refused ("Broker: Message size too large")
    std::vector<std::pair<std::string, std::string>> headers;  // more headers (a quarantined record's crashes)
};

class DeadLetterQueue {
public:
    // `fail`: a letter could not be delivered; the pipeline cannot go on without losing its event.
    explicit DeadLetterQueue(std::function<void(const std::string& reason)> fail) : fail_(std::move(fail)) {}
    void set_producer(RecordProducer& producer) { producer_ = &producer; }  // at start, before any send

    // Produces `letter` at its level, or at a lower one when the producer refuses it as too large; false, with the
    // reason, when even its coordinates could not be produced.
    bool send(std::unique_ptr<DeadLetter> letter, std::string& why);
    // A letter's delivery report: its event's share is let go, the letter goes again with less of its event
    // (the broker's limit is below the producer's), or the pipeline fails.
    void on_delivery(DeadLetter* letter, rd_kafka_resp_err_t err);

private:
    RecordProducer* producer_ = nullptr;
    std::function<void(const std::string&)> fail_;
};

}  // namespace mephisto
