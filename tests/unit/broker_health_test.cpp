// Broker health in-process (kafka/broker_health): an outage starts with librdkafka's "all brokers down", says
// why with the latest connection error, and past broker_unreachable_timeout the probe says to fail; a probe of a
// client that cannot reach anything does not end the outage.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>

#include "common/logging.hpp"
#include "kafka/broker_health.hpp"

using namespace std::chrono_literals;
using mephisto::BrokerHealth;

namespace {

// A producer whose only broker is a closed loopback port: metadata requests fail.
struct Unreachable {
    rd_kafka_t* rk = nullptr;
    Unreachable() {
        char err[256];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof err) == RD_KAFKA_CONF_OK);
        REQUIRE(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err) == RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        REQUIRE(rk);
    }
    ~Unreachable() { rd_kafka_destroy(rk); }
};

}  // namespace

TEST_CASE("an outage says since when and why, from the latest connection error") {
    BrokerHealth health("127.0.0.1:1", 0ms, mephisto::logger("test"));
    CHECK_FALSE(health.down());
    CHECK_FALSE(health.problem());
    health.on_client_error(RD_KAFKA_RESP_ERR__TRANSPORT, "Connect to ipv4#127.0.0.1:1 failed: Connection refused");
    CHECK_FALSE(health.down());  // one connection failing is no outage
    health.on_client_error(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down");
    REQUIRE(health.down());
    const auto problem = health.problem();
    REQUIRE(problem);
    CHECK(problem->find("no broker of 127.0.0.1:1 reachable for") == 0);
    CHECK(problem->find("Connection refused") != std::string::npos);
}

TEST_CASE("past broker_unreachable_timeout the probe says to fail, and without one it never does") {
    Unreachable client;
    BrokerHealth bounded("127.0.0.1:1", 1ms, mephisto::logger("test"));
    BrokerHealth patient("127.0.0.1:1", 0ms, mephisto::logger("test"));
    CHECK_FALSE(bounded.probe(client.rk));  // no outage: nothing to probe
    bounded.on_client_error(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down");
    patient.on_client_error(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down");
    const auto verdict = bounded.probe(client.rk);  // its metadata request fails after a second
    REQUIRE(verdict);
    CHECK(verdict->find("broker_unreachable_timeout") != std::string::npos);
    CHECK(bounded.down());
    CHECK_FALSE(patient.probe(client.rk));
    CHECK(patient.down());
}
