// The record collector in-process (engine/record_collector) on a fake producer that answers like librdkafka:
// outputs hold their input until acknowledged, refusals give the share back, failed deliveries abandon the
// input and fail the pipeline, purges only abandon, and other reports reach their owners.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/record_collector.hpp"
#include "fake_producer.hpp"

using namespace mephisto;
using mephisto::testing_support::FakeProducer;

namespace {

struct Fixture {
    FakeProducer producer;
    std::vector<std::string> failures;
    std::vector<DeliveryTag*> flushes, letters;
    RecordCollector collector{producer, RecordCollector::Handlers{
                                            [this](DeliveryTag* t, rd_kafka_resp_err_t, const rd_kafka_message_t&) {
                                                flushes.push_back(t);
                                            },
                                            [this](DeliveryTag* t, rd_kafka_resp_err_t) { letters.push_back(t); },
                                            [this](const std::string& why) { failures.push_back(why); }}};
    PartitionLedger ledger;

    // The broker's answer to the oldest outstanding record.
    void report(rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR) {
        const auto r = producer.next();
        rd_kafka_message_t msg{};
        msg.err = err;
        msg.partition = r.partition;
        collector.on_delivery(r.opaque, err, msg);
    }
    InFlight* consume(int64_t offset) {
        REQUIRE(ledger.fetched(offset));
        return ledger.admit(nullptr, offset, 1);
    }
    mph_status send(InFlight* cause, const std::string& value, const std::string& topic = "out") {
        std::string why;
        return collector.send(cause, topic, "k", 1, value.data(), value.size(), nullptr, -1, 0, why);
    }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "record collector: an input commits only once all its outputs are acknowledged") {
    InFlight* f = consume(0);
    REQUIRE(send(f, "a") == MPH_OK);
    REQUIRE(send(f, "b") == MPH_OK);
    finish(f);  // the callback returned
    CHECK(ledger.committable() == 0);
    report();
    CHECK(ledger.committable() == 0);
    report();
    CHECK(ledger.committable() == 1);
    CHECK(collector.sent() == 2);
    CHECK(failures.empty());
}

TEST_CASE_FIXTURE(Fixture, "record collector: records go to the producer in the order they were sent") {
    InFlight* a = consume(0);
    InFlight* b = consume(1);
    for (int i = 0; i < 5; ++i) REQUIRE(send(i % 2 ? b : a, std::to_string(i)) == MPH_OK);
    REQUIRE(producer.produced.size() == 5);
    for (int i = 0; i < 5; ++i) CHECK(producer.produced[static_cast<size_t>(i)].value == std::to_string(i));
    finish(a);
    finish(b);
    while (!producer.outstanding.empty()) report();
    CHECK(ledger.committable() == 2);
}

TEST_CASE_FIXTURE(Fixture, "record collector: a refused record gives its share back and the caller sees why") {
    InFlight* f = consume(0);
    producer.refuse = MPH_ERR_FULL;
    std::string why;
    CHECK(collector.send(f, "out", "k", 1, "v", 1, rd_kafka_headers_new(1), -1, 0, why) == MPH_ERR_FULL);
    CHECK(why == "Local: Queue full");
    CHECK(f->pending.load() == 1);  // only the callback's own share
    finish(f);
    CHECK(ledger.committable() == 1);  // the agent decides (a retry); nothing waits for a report that never comes
    CHECK(collector.sent() == 0);
}

TEST_CASE_FIXTURE(Fixture, "record collector: a failed delivery abandons the input and fails the pipeline") {
    InFlight* f = consume(0);
    InFlight* g = consume(1);
    REQUIRE(send(f, "lost") == MPH_OK);
    REQUIRE(send(g, "kept") == MPH_OK);
    finish(f);
    finish(g);
    report(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    report();
    CHECK(ledger.committable() == 0);  // 0 is never committed: after a restart it is processed again
    CHECK(ledger.unfinished() == 0);
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].find("Message timed out") != std::string::npos);
    CHECK(failures[0].find("stays uncommitted") != std::string::npos);
    CHECK(collector.lost() == 1);
}

TEST_CASE_FIXTURE(Fixture, "record collector: a purge at shutdown abandons the input without failing") {
    InFlight* f = consume(0);
    REQUIRE(send(f, "x") == MPH_OK);
    finish(f);
    report(RD_KAFKA_RESP_ERR__PURGE_QUEUE);
    CHECK(ledger.committable() == 0);
    CHECK(failures.empty());
}

TEST_CASE_FIXTURE(Fixture, "record collector: a timer's output is tracked by nobody, and failing it still fails") {
    REQUIRE(send(nullptr, "tick") == MPH_OK);
    report();
    REQUIRE(send(nullptr, "tock") == MPH_OK);
    report(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    CHECK(failures.size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "record collector: flush and dead-letter reports reach their owners") {
    DeliveryTag flush{DeliveryTag::Kind::flush}, letter{DeliveryTag::Kind::dead_letter};
    rd_kafka_message_t msg{};
    collector.on_delivery(&flush, RD_KAFKA_RESP_ERR_NO_ERROR, msg);
    collector.on_delivery(&letter, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, msg);
    REQUIRE(flushes.size() == 1);
    CHECK(flushes[0] == &flush);
    REQUIRE(letters.size() == 1);
    CHECK(letters[0] == &letter);
    CHECK(failures.empty());  // their owners decide what a failure means
}
