// RELIABILITY.md 9: an agent failing on one event restarts alone, with backoff; the event is dead-lettered by
// policy; past the restart limit the agent is quarantined while the others keep running, and nothing after
// the failing event is committed on its partition.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <regex>
#include <set>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

constexpr int kEvents = 400;
constexpr int kPoison = 157;

std::string fan_out_pipeline(const std::string& app, const std::string& flaky_policy) {
    return "app: {id: " + app + "}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" + kFastGroupYaml +
           "topics:\n  in: {partitions: 4}\n  out_a: {partitions: 4}\n  out_b: {partitions: 4}\n"
           "agents:\n"
           "  flaky:\n    plugin: test_agents\n    agent: forward\n    from: in\n    sinks: [out_a]\n"
           "    params: {fail_on: poison}\n" + flaky_policy +
           "  steady:\n    plugin: test_agents\n    agent: forward\n    from: in\n    sinks: [out_b]\n";
}

std::vector<Message> inputs() {
    std::vector<Message> m;
    for (int i = 0; i < kEvents; ++i)
        m.push_back({"k" + std::to_string(i % 8), i == kPoison ? "poison-" + std::to_string(i) : "seq-" + std::to_string(i), {}, -1});
    return m;
}

}  // namespace

TEST_CASE("a failing event restarts only its agent's instance, is retried, then dead-lettered, and the rest flows") {
    Broker broker;
    for (auto t : {"in", "out_a", "out_b"}) broker.create_topic(t, 4);
    TempDir dir;
    auto yaml = fan_out_pipeline("retry_dlq",
                                 "    on_error: {retry: 2, then: dead_letter}\n"
                                 "    supervisor: {max_restarts: 10, within: 60s, backoff: 20ms, max_backoff: 200ms}\n");
    auto host = start_host(dir.write("p.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");
    produce(broker.bootstrap(), "in", inputs());

    TopicReader a(broker.bootstrap(), "out_a", 4), b(broker.bootstrap(), "out_b", 4),
        dlq(broker.bootstrap(), "retry_dlq-flaky-dead-letter", 4);
    REQUIRE(b.read_until([](auto& r) { return r.size() >= kEvents; }, 60s));
    REQUIRE(a.read_until([](auto& r) { return r.size() >= kEvents - 1; }, 60s));
    REQUIRE(dlq.read_until([](auto& r) { return r.size() >= 1; }, 30s));
    CHECK(dlq.records()[0].value == "poison-" + std::to_string(kPoison));
    CHECK(dlq.records()[0].headers.at("mephisto.error") == "poisoned event");
    CHECK(a.value_counts().count("poison-" + std::to_string(kPoison)) == 0);

    // Three attempts (1 + retry 2), each a restart with doubling backoff: 20ms, 40ms, 80ms.
    const std::string log = host->log();
    CHECK(host->count_in_log("agent flaky failed at in[") == 3);
    CHECK(log.find("restarting its instance in 20ms (restart 1 of at most 10 within 1m)") != std::string::npos);
    CHECK(log.find("restarting its instance in 40ms (restart 2") != std::string::npos);
    CHECK(log.find("restarting its instance in 80ms (restart 3") != std::string::npos);
    // One-for-one: every failure names the same partition, the poisoned event's.
    std::regex failed_at(R"(agent flaky failed at in\[(\d)\]@(\d+))");
    std::set<std::string> where;
    for (std::sregex_iterator it(log.begin(), log.end(), failed_at), end; it != end; ++it) where.insert((*it)[0]);
    CHECK(where.size() == 1);
    CHECK(host->count_in_log("agent steady failed") == 0);

    std::string report;
    CHECK_MESSAGE(await_caught_up(broker.bootstrap(), "retry_dlq", "in", 4, 20s, &report), report);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("past its restart limit an agent is quarantined while the other agent keeps running and the commit stops at the event") {
    Broker broker;
    for (auto t : {"in", "out_a", "out_b"}) broker.create_topic(t, 4);
    TempDir dir;
    auto yaml = fan_out_pipeline("quarantine",
                                 "    on_error: {retry: 100, then: skip}\n"
                                 "    supervisor: {max_restarts: 2, within: 60s, backoff: 10ms}\n");
    auto host = start_host(dir.write("p.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");
    produce(broker.bootstrap(), "in", inputs());

    // Where did the poisoned event land?
    TopicReader in(broker.bootstrap(), "in", 4);
    REQUIRE(in.read_until([](auto& r) { return r.size() >= kEvents; }, 30s));
    int32_t poison_partition = -1;
    int64_t poison_offset = -1;
    for (const auto& r : in.records())
        if (r.value == "poison-" + std::to_string(kPoison)) {
            poison_partition = r.partition;
            poison_offset = r.offset;
        }
    REQUIRE(poison_partition >= 0);

    TopicReader b(broker.bootstrap(), "out_b", 4);
    REQUIRE(b.read_until([](auto& r) { return r.size() >= kEvents; }, 60s));  // steady is unaffected
    REQUIRE(host->await_log("agent flaky quarantined: more than 2 restarts within 1m", 30s));
    CHECK(host->count_in_log("agent flaky failed at") == 2);
    CHECK(host->running());

    // Let several commit intervals pass: the partition's commit never moves past the poisoned event.
    TopicReader a(broker.bootstrap(), "out_a", 4);
    a.read_for(1500ms);
    auto committed = committed_offsets(broker.bootstrap(), "quarantine", "in", 4);
    INFO("poison at " << poison_partition << "@" << poison_offset << ", committed " << committed[poison_partition]);
    CHECK(committed[poison_partition] <= poison_offset);
    CHECK(a.value_counts().count("poison-" + std::to_string(kPoison)) == 0);

    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(host->log().find("QUARANTINED") != std::string::npos);
    // The stop committed nothing past the event either.
    CHECK(committed_offsets(broker.bootstrap(), "quarantine", "in", 4)[poison_partition] <= poison_offset);
}
