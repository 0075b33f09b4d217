// The dead-letter queue in-process (engine/dead_letter_queue) on a fake producer: a letter holds its event until
// the broker took it; a letter too large for the producer or for the broker goes again without its value, then
// without its key and headers; any other failed delivery fails the pipeline and leaves the event uncommitted.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/logging.hpp"
#include "engine/dead_letter_queue.hpp"
#include "fake_producer.hpp"

using namespace mephisto;
using mephisto::testing_support::FakeProducer;

namespace {

struct Fixture {
    FakeProducer producer;
    std::vector<std::string> failures;
    DeadLetterQueue queue{[this](const std::string& why) { failures.push_back(why); }};
    PartitionLedger consumed, channel;
    InFlight* event = nullptr;  // a channel event, caused by the consumed message at offset 0

    Fixture() {
        queue.set_producer(producer);
        REQUIRE(consumed.fetched(0));
        InFlight* cause = consumed.admit(nullptr, 0, 1);
        ChannelEvent e;
        e.bytes = "the-key" + std::string(2'000, 'v');
        e.key_len = 7;
        e.value_len = 2'000;
        e.headers = {{"trace", std::string("abc")}};
        event = channel.admit_sent(std::move(e), cause, 1);
        finish(cause);  // the agent reading the consumed message is done: the channel event holds it now
    }
    bool send() {
        auto letter = std::make_unique<DeadLetter>();
        letter->event = event;
        letter->topic = "dead";
        letter->agent = "a";
        letter->log = logger("a");
        letter->source = "ch@0";
        letter->error = "boom";
        letter->attempts = 3;
        std::string why;
        const bool sent = queue.send(std::move(letter), why);
        if (!sent) failures.push_back(why);
        return sent;
    }
    // The broker's answer to the oldest outstanding letter.
    void report(rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR) {
        queue.on_delivery(static_cast<DeadLetter*>(static_cast<DeliveryTag*>(producer.next().opaque)), err);
    }
    bool committable() { return consumed.committable() == std::optional<int64_t>(1); }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "dead letters: a letter holds its event until the broker took it") {
    REQUIRE(send());
    finish(event);  // the agent gave up on it: only the letter holds it now
    CHECK_FALSE(committable());
    REQUIRE(producer.produced.size() == 1);
    const auto& letter = producer.produced[0];
    CHECK(letter.topic == "dead");
    CHECK(letter.key == "the-key");
    CHECK(letter.value.size() == 2'000);
    CHECK(letter.headers.at("trace") == "abc");
    CHECK(letter.headers.at("mephisto.error") == "boom");
    CHECK(letter.headers.at("mephisto.agent") == "a");
    CHECK(letter.headers.at("mephisto.source") == "ch@0");
    report();
    CHECK(committable());
    CHECK(failures.empty());
}

TEST_CASE_FIXTURE(Fixture, "dead letters: too large for the producer, a letter goes without its value, then without its key") {
    producer.max_bytes = 100;  // the key fits, the value does not
    REQUIRE(send());
    REQUIRE(producer.produced.size() == 1);
    CHECK(producer.produced[0].value.empty());
    CHECK(producer.produced[0].key == "the-key");
    CHECK(producer.produced[0].headers.count("mephisto.value-dropped") == 1);
    CHECK(producer.produced[0].headers.count("trace") == 1);  // level 1 keeps the event's headers

    producer.max_bytes = 0;  // not even the key
    producer.outstanding.clear();
    producer.produced.clear();
    REQUIRE(send());
    REQUIRE(producer.produced.size() == 1);
    CHECK(producer.produced[0].key.empty());
    CHECK(producer.produced[0].headers.count("mephisto.key-dropped") == 1);
    CHECK(producer.produced[0].headers.count("trace") == 0);
    CHECK(producer.produced[0].headers.at("mephisto.source") == "ch@0");  // the coordinates always go
}

TEST_CASE_FIXTURE(Fixture, "dead letters: the broker's refusal sends the next level, which then holds the event") {
    REQUIRE(send());
    finish(event);
    report(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    REQUIRE(producer.produced.size() == 2);
    CHECK(producer.produced[1].value.empty());
    CHECK(producer.produced[1].headers.at("mephisto.value-dropped").find("Message size too large") != std::string::npos);
    CHECK_FALSE(committable());  // the second letter holds the event
    report();
    CHECK(committable());
    CHECK(failures.empty());
}

TEST_CASE_FIXTURE(Fixture, "dead letters: a failed delivery fails the pipeline and the event is never committed") {
    REQUIRE(send());
    finish(event);
    report(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].find("cannot dead-letter ch@0 to dead") != std::string::npos);
    CHECK_FALSE(committable());
    CHECK(producer.produced.size() == 1);
}
