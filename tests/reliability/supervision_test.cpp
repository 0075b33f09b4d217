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
    return pipeline_yaml(app, "topics:\n  in: {partitions: 4}\n  out_a: {partitions: 4}\n  out_b: {partitions: 4}\n"
           "agents:\n"
           "  flaky:\n    plugin: test_agents\n    agent: forward\n    from: in\n    sinks: [out_a]\n"
           "    params: {fail_on: poison}\n" + flaky_policy +
           "  steady:\n    plugin: test_agents\n    agent: forward\n    from: in\n    sinks: [out_b]\n");
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

TEST_CASE("a C++ plugin that throws on every 10th event is restarted each time while another agent keeps running") {
    Broker broker;
    for (auto t : {"in", "out_a", "out_b"}) broker.create_topic(t, 4);
    TempDir dir;
    auto plugins = dir.path() / "plugins";
    std::filesystem::create_directories(plugins);
    std::filesystem::copy_file(std::filesystem::path(MEPHISTO_ABI_FIXTURE_DIR) / "throws.so", plugins / "throws.so");
    std::filesystem::copy_file(test_plugin_dir() / "test_agents.so", plugins / "test_agents.so");
    auto yaml = "app: {id: thrower}\nplugins: {dir: " + plugins.string() + "}\n" + std::string(kFastGroupYaml) +
                "topics:\n  in: {partitions: 4}\n  out_a: {partitions: 4}\n  out_b: {partitions: 4}\n"
                "agents:\n"
                "  thrower:\n    plugin: throws\n    from: in\n    sinks: [out_a]\n"
                "    on_error: {retry: 0, then: skip}\n"
                "    supervisor: {max_restarts: 1000, within: 60s, backoff: 1ms, max_backoff: 5ms}\n"
                "  steady:\n    plugin: test_agents\n    agent: forward\n    from: in\n    sinks: [out_b]\n";
    auto host = start_host(dir.write("p.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");
    produce_sequence(broker.bootstrap(), "in", 0, 200, 8);

    // Which inputs sit at an offset ending in 9 (the ones the plugin throws on)?
    TopicReader in(broker.bootstrap(), "in", 4);
    REQUIRE(in.read_until([](auto& r) { return r.size() >= 200; }, 30s));
    std::set<std::string> thrown, kept;
    for (const auto& r : in.records()) (r.offset % 10 == 9 ? thrown : kept).insert(*r.value);
    REQUIRE(!thrown.empty());

    TopicReader a(broker.bootstrap(), "out_a", 4), b(broker.bootstrap(), "out_b", 4);
    REQUIRE(b.read_until([](auto& r) { return r.size() >= 200; }, 60s));
    REQUIRE(a.read_until([&](auto& r) { return r.size() >= kept.size(); }, 60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "thrower", "in", 4, 20s));
    a.read_for(300ms);
    std::set<std::string> got;
    for (auto& [v, n] : a.value_counts()) got.insert(v);
    CHECK(got == kept);
    CHECK(host->count_in_log("agent thrower failed at in[") == thrown.size());
    CHECK(host->count_in_log("boom on event") >= thrown.size());
    CHECK(host->count_in_log("agent steady failed") == 0);
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(host->log().find(std::to_string(thrown.size()) + " restarts, " + std::to_string(thrown.size()) + " skipped") !=
          std::string::npos);
}

TEST_CASE("one_for_one re-creates only the failed instance, one_for_all re-creates every instance of the agent") {
    Broker broker;
    for (auto t : {"in", "out_a", "out_b"}) broker.create_topic(t, 4);
    TempDir dir;
    auto agent = [](const std::string& name, const std::string& sink, const std::string& strategy) {
        return "  " + name + ":\n    plugin: test_agents\n    agent: forward\n    from: in\n    sinks: [" + sink +
               "]\n    params: {fail_on: poison}\n    on_error: {retry: 0, then: skip}\n"
               "    supervisor: {strategy: " + strategy + ", max_restarts: 10, backoff: 1ms}\n";
    };
    auto yaml = "app: {id: strategies}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" + std::string(kFastGroupYaml) +
                "topics:\n  in: {partitions: 4}\n  out_a: {partitions: 4}\n  out_b: {partitions: 4}\nagents:\n" +
                agent("single", "out_a", "one_for_one") + agent("every", "out_b", "one_for_all");
    auto host = start_host(dir.write("p.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");

    // Every partition gets events, so each agent has one instance per partition.
    std::vector<Message> first;
    for (int p = 0; p < 4; ++p) first.push_back({"k", "seq-" + std::to_string(p), {}, p});
    produce(broker.bootstrap(), "in", first);
    TopicReader a(broker.bootstrap(), "out_a", 4), b(broker.bootstrap(), "out_b", 4);
    REQUIRE(a.read_until([](auto& r) { return r.size() >= 4; }, 30s));
    REQUIRE(b.read_until([](auto& r) { return r.size() >= 4; }, 30s));
    CHECK(host->count_in_log("[single] instance created") == 4);
    CHECK(host->count_in_log("[every] instance created") == 4);

    // A poisoned event on partition 0; once both agents restarted for it, one more event on every partition
    // (an instance of one_for_all re-creates when it next runs, so each partition needs an event after it).
    produce(broker.bootstrap(), "in", {{"k", "poison", {}, 0}});
    REQUIRE(host->await_log("agent single failed at in[0]", 30s));
    REQUIRE(host->await_log("agent every failed at in[0]", 30s));
    std::vector<Message> second;
    for (int p = 0; p < 4; ++p) second.push_back({"k", "after-" + std::to_string(p), {}, p});
    produce(broker.bootstrap(), "in", second);
    REQUIRE(a.read_until([](auto& r) { return r.size() >= 8; }, 30s));
    REQUIRE(b.read_until([](auto& r) { return r.size() >= 8; }, 30s));
    CHECK(host->count_in_log("[single] instance created") == 4 + 1);
    CHECK(host->count_in_log("[every] instance created") == 4 + 4);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("then: crash stops the host with exit code 1 and never commits the event") {
    Broker broker;
    for (auto t : {"in", "out_a", "out_b"}) broker.create_topic(t, 4);
    TempDir dir;
    auto yaml = fan_out_pipeline("crash", "    on_error: {retry: 1, then: crash}\n"
                                          "    supervisor: {max_restarts: 10, backoff: 1ms}\n");
    auto host = start_host(dir.write("p.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");
    produce(broker.bootstrap(), "in", inputs());
    REQUIRE(host->wait(60s) == 1);
    CHECK(host->log().find("agent flaky failed at in[") != std::string::npos);
    CHECK(host->log().find("after 2 attempt(s) and its policy is crash: poisoned event") != std::string::npos);

    TopicReader in(broker.bootstrap(), "in", 4);
    REQUIRE(in.read_until([](auto& r) { return r.size() >= kEvents; }, 30s));
    for (const auto& r : in.records())
        if (r.value == "poison-" + std::to_string(kPoison)) {
            auto committed = committed_offsets(broker.bootstrap(), "crash", "in", 4);
            CHECK(committed[r.partition] <= r.offset);
        }
}
