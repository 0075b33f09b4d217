// Hostile input that once stopped a host for good (issue 11, findings 1 and 2, and 8's pointless retry): a
// value nested 100,000 deep, and events too large to dead-letter whole. Each now follows the agent's error
// policy, the events around it pass, and the host keeps running.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

constexpr int16_t kProduceRequest = 0;  // the Kafka protocol's ApiKey of Produce

// {"id": [[[ ... ]]]}: an array nested `depth` deep under the field group_by reads.
std::string deeply_nested(int depth) {
    return "{\"id\": " + std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']') + "}";
}

const Record* find_value(const TopicReader& reader, const std::string& value) {
    for (const auto& r : reader.records())
        if (r.value == value) return &r;
    return nullptr;
}

}  // namespace

TEST_CASE("a value nested 100000 deep in a group_by field is dead-lettered, and the events around it pass") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    broker.create_topic("deep-fwd-dead-letter", 1);
    TempDir dir;
    auto yaml = dir.write("deep.yaml", pipeline_yaml("deep",
                                                     "topics:\n  in: {partitions: 1}\n  out: {partitions: 1}\n"
                                                     "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n"
                                                     "    from: in\n    sinks: [out]\n    group_by: {field: id}\n"
                                                     "    on_error: {retry: 2, then: dead_letter}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    // A raw topic: only the group_by field extraction stands between this value and the stack.
    produce(broker.bootstrap(), "in", {{"a", std::string("{\"id\": \"a\"}"), {}, -1},
                                       {"deep", deeply_nested(100'000), {}, -1},
                                       {"b", std::string("{\"id\": \"b\"}"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    TopicReader dead(broker.bootstrap(), "deep-fwd-dead-letter", 1);
    REQUIRE(dead.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK(dead.records().front().value == deeply_nested(100'000));  // the value itself, intact
    CHECK(dead.records().front().header("mephisto.error").find("nested deeper than") != std::string::npos);
    CHECK(dead.records().front().header("mephisto.source") == "in[0]@1");
    CHECK(host->running());
    CHECK(await_caught_up(broker.bootstrap(), "deep", "in", 1, 30s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a json topic refuses a value nested deeper than the bound as undecodable, at once, without retries") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    broker.create_topic("deepjson-fwd-dead-letter", 1);
    TempDir dir;
    auto yaml = dir.write("deep.yaml", pipeline_yaml("deepjson",
                                                     "topics:\n  in: {partitions: 1, value: json}\n  out: {partitions: 1}\n"
                                                     "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n"
                                                     "    from: in\n    sinks: [out]\n"
                                                     "    on_error: {retry: 3, backoff: 2s, then: dead_letter}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    produce(broker.bootstrap(), "in", {{"deep", "[" + deeply_nested(2000) + "]", {}, -1},
                                       {"broken", std::string("{\"id\": "), {}, -1},
                                       {"fine", std::string("{\"id\": 1}"), {}, -1}});
    TopicReader dead(broker.bootstrap(), "deepjson-fwd-dead-letter", 1);
    REQUIRE(dead.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    CHECK(dead.records()[0].header("mephisto.error").find("nested deeper than") != std::string::npos);
    CHECK(dead.records()[1].header("mephisto.error").find("not valid JSON") != std::string::npos);
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](auto& r) { return r.size() >= 1; }, 30s));
    // Undecodable input goes to its policy at once: a retry (2 s of backoff each) could not change it.
    CHECK(host->count_in_log("asked to retry") == 0);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("an undecodable event of 2 MB is dead-lettered without its value, with a note, and the host runs on") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    broker.create_topic("big-fwd-dead-letter", 1);
    TempDir dir;
    auto yaml = dir.write("big.yaml", pipeline_yaml("big",
                                                    "topics:\n  in: {partitions: 1, value: json}\n  out: {partitions: 1}\n"
                                                    "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n"
                                                    "    from: in\n    sinks: [out]\n"
                                                    "    on_error: {retry: 0, then: dead_letter}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string huge(2 * 1024 * 1024, 'x');  // not JSON
    produce(broker.bootstrap(), "in", {{"k", std::string("{\"n\": 1}"), {}, -1},
                                       {"k", huge, {{"trace", "t-1"}}, -1},
                                       {"k", std::string("{\"n\": 2}"), {}, -1}});
    TopicReader dead(broker.bootstrap(), "big-fwd-dead-letter", 1);
    REQUIRE(dead.read_until([](auto& r) { return !r.empty(); }, 30s));
    const Record& letter = dead.records().front();
    CHECK_FALSE(letter.value.has_value());
    CHECK(letter.key == "k");
    CHECK(letter.header("trace") == "t-1");  // the event's own headers, kept
    CHECK(letter.header("mephisto.source") == "in[0]@1");
    CHECK(letter.header("mephisto.value-dropped").find("2097152 bytes") != std::string::npos);
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    CHECK(find_value(out, "{\"n\": 2}") != nullptr);
    CHECK(await_caught_up(broker.bootstrap(), "big", "in", 1, 30s));
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a raw event of 1.5 MB an agent fails on is dead-lettered without its value, and the host runs on") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    broker.create_topic("bigraw-fwd-dead-letter", 1);
    TempDir dir;
    auto yaml = dir.write("big.yaml", pipeline_yaml("bigraw",
                                                    "topics:\n  in: {partitions: 1}\n  out: {partitions: 1}\n"
                                                    "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n"
                                                    "    from: in\n    sinks: [out]\n    params: {retry_on: poison}\n"
                                                    "    on_error: {retry: 1, backoff: 10ms, then: dead_letter}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    std::string huge = "poison" + std::string(1536 * 1024, 'p');
    produce(broker.bootstrap(), "in", {{"k", huge, {}, -1}, {"k", std::string("after"), {}, -1}});
    TopicReader dead(broker.bootstrap(), "bigraw-fwd-dead-letter", 1);
    REQUIRE(dead.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK_FALSE(dead.records().front().value.has_value());
    CHECK(dead.records().front().header("mephisto.value-dropped").find(std::to_string(huge.size()) + " bytes") !=
          std::string::npos);
    CHECK(dead.records().front().header("mephisto.error") == "not yet");
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK(find_value(out, "after") != nullptr);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a dead letter the broker refuses as too large is sent again without its value") {
    // Two brokers: the dead-letter topic's leader is broker 2, which alone refuses one produce request.
    Broker broker(2);
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    broker.create_topic("refused-fwd-dead-letter", 1);
    broker.set_leader("in", 0, 1);
    broker.set_leader("out", 0, 1);
    broker.set_leader("refused-fwd-dead-letter", 0, 2);
    TempDir dir;
    auto yaml = dir.write("refused.yaml", pipeline_yaml("refused",
                                                        "topics:\n  in: {partitions: 1, value: json}\n  out: {partitions: 1}\n"
                                                        "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n"
                                                        "    from: in\n    sinks: [out]\n"
                                                        "    on_error: {retry: 0, then: dead_letter}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    produce(broker.bootstrap(), "in", {{"k", std::string("{\"n\": 1}"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](auto& r) { return !r.empty(); }, 30s));
    // The broker refuses the dead letter as too large: a topic whose max.message.bytes is below the client's.
    broker.fail_requests(2, kProduceRequest, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    produce(broker.bootstrap(), "in", {{"k", std::string("not json"), {}, -1}, {"k", std::string("{\"n\": 2}"), {}, -1}});
    TopicReader dead(broker.bootstrap(), "refused-fwd-dead-letter", 1);
    REQUIRE(dead.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK_FALSE(dead.records().front().value.has_value());
    CHECK(dead.records().front().header("mephisto.value-dropped").find("8 bytes") != std::string::npos);
    CHECK(dead.records().front().header("mephisto.source") == "in[0]@1");
    CHECK(out.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    CHECK(await_caught_up(broker.bootstrap(), "refused", "in", 1, 30s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
