// Delivery through a real host: order per partition, every acknowledgement path, undecodable values.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

std::string forward_pipeline(const std::string& app, const std::string& agent_extra, const std::string& topic_extra = "") {
    return pipeline_yaml(app, "topics:\n"
           "  in: {partitions: 4" + topic_extra + "}\n"
           "  out: {partitions: 4}\n"
           "agents:\n"
           "  fwd:\n"
           "    plugin: test_agents\n"
           "    agent: forward\n"
           "    from: in\n"
           "    sinks: [out]\n" + agent_extra);
}

int seq_of(const std::string& value) { return std::stoi(value.substr(value.rfind('-') + 1)); }

void await_lag_zero(Broker& broker, const std::string& group, const std::string& topic) {
    std::string report;
    bool caught_up = await_caught_up(broker.bootstrap(), group, topic, 4, 20s, &report);
    INFO(report);
    CHECK(caught_up);
}

}  // namespace

TEST_CASE("events of a partition keep their order and each arrives exactly once without failures") {
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 4);
    TempDir dir;
    auto host = start_host(dir.write("order.yaml", forward_pipeline("order", "")), broker.bootstrap(), dir.path() / "host.log");

    constexpr int kEvents = 4000;
    produce_sequence(broker.bootstrap(), "in", 0, kEvents, 16);
    TopicReader out(broker.bootstrap(), "out", 4);
    REQUIRE(out.read_until([](auto& r) { return r.size() >= kEvents; }, 60s));
    out.read_for(300ms);

    std::map<std::string, std::vector<int>> by_key;  // in the order they sit in their output partition
    std::vector<const Record*> sorted;
    for (const auto& r : out.records()) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(),
              [](auto* a, auto* b) { return std::tie(a->partition, a->offset) < std::tie(b->partition, b->offset); });
    for (auto* r : sorted) by_key[*r->key].push_back(seq_of(*r->value));
    CHECK(out.records().size() == kEvents);
    CHECK(by_key.size() == 16);
    for (const auto& [key, seqs] : by_key) {
        INFO("key " << key);
        CHECK(std::is_sorted(seqs.begin(), seqs.end()));
        CHECK(std::set<int>(seqs.begin(), seqs.end()).size() == seqs.size());
    }
    await_lag_zero(broker, "order", "in");
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("every path acknowledges: forwarded, filtered, skipped after failures, tombstones, empty values") {
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 4);
    TempDir dir;
    auto yaml = forward_pipeline("paths",
                              "    params: {fail_on: poison, drop_on: drop, retry_on: later}\n"
                              "    on_error: {retry: 1, then: skip, backoff: 10ms}\n"
                              "    supervisor: {max_restarts: 100, within: 60s, backoff: 10ms, max_backoff: 50ms}\n");
    auto host = start_host(dir.write("paths.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");

    std::vector<Message> in;
    std::set<std::string> expected;
    for (int i = 0; i < 200; ++i) {
        std::string v = "seq-" + std::to_string(i);
        if (i % 10 == 3) v = "drop-" + std::to_string(i);
        if (i % 10 == 5) v = "poison-" + std::to_string(i);
        if (i % 10 == 7) v = "later-" + std::to_string(i);
        if (i % 10 == 0 || i % 10 == 1) expected.insert(v);
        if (i % 10 == 0 || i % 10 == 1) in.push_back(Message{"k" + std::to_string(i), v, {}, -1});
        else if (i % 10 == 9) in.push_back(Message{std::nullopt, v, {{"trace", "x"}}, -1});  // no key
        else in.push_back(Message{"k" + std::to_string(i), v, {}, -1});
        if (i % 10 == 2 || i % 10 == 4 || i % 10 == 6 || i % 10 == 8 || i % 10 == 9) expected.insert(v);
    }
    in.push_back(Message{"tomb", std::nullopt, {}, -1});  // tombstone: forwarded as a tombstone
    in.push_back(Message{"empty", std::string(), {}, -1});  // empty value: forwarded as empty
    produce(broker.bootstrap(), "in", in);

    TopicReader out(broker.bootstrap(), "out", 4);
    const size_t want = expected.size() + 2;
    REQUIRE(out.read_until([&](auto& r) { return r.size() >= want; }, 60s));
    await_lag_zero(broker, "paths", "in");
    out.read_for(300ms);
    CHECK(out.records().size() == want);
    std::set<std::string> got;
    int tombstones = 0, empties = 0;
    for (const auto& r : out.records()) {
        if (!r.value) ++tombstones;
        else if (r.value->empty()) ++empties;
        else got.insert(*r.value);
    }
    CHECK(got == expected);
    CHECK(tombstones == 1);
    CHECK(empties == 1);
    // 20 poisoned + 20 retried events, each skipped after 2 attempts.
    CHECK(host->count_in_log("skipping in[") == 40);
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(host->log().find("40 skipped") != std::string::npos);
}

TEST_CASE("undecodable values never reach the agent: they are dead-lettered with the reason, nothing else is lost") {
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 4);
    TempDir dir;
    auto yaml = forward_pipeline("decode", "    on_error: {retry: 3, then: dead_letter, topic: in-dlq}\n", ", value: json");
    auto host = start_host(dir.write("decode.yaml", yaml), broker.bootstrap(), dir.path() / "host.log");
    std::vector<Message> in = {
        {"a", R"({"n": 1})", {}, -1},
        {"b", "{not json", {}, -1},
        {std::nullopt, R"([1, 2, 3])", {}, -1},                 // no key
        {"c", std::string(), {}, -1},                           // empty: not JSON
        {"d", std::nullopt, {}, -1},                            // tombstone: no value to decode
        {"e", R"("text")", {{"h1", "v1"}, {"h2", ""}}, -1},     // headers
        {"f", std::string("\xff\xfe", 2), {}, -1},              // binary garbage
    };
    produce(broker.bootstrap(), "in", in);
    TopicReader out(broker.bootstrap(), "out", 4);
    TopicReader dlq(broker.bootstrap(), "in-dlq", 4);
    REQUIRE(out.read_until([](auto& r) { return r.size() >= 4; }, 30s));
    REQUIRE(dlq.read_until([](auto& r) { return r.size() >= 3; }, 30s));
    await_lag_zero(broker, "decode", "in");
    out.read_for(200ms);
    dlq.read_for(200ms);
    CHECK(out.records().size() == 4);
    REQUIRE(dlq.records().size() == 3);
    std::set<std::string> dead;
    for (const auto& r : dlq.records()) {
        dead.insert(*r.key);
        CHECK(r.headers.at("mephisto.error") == "the value is not valid JSON");
        CHECK(r.headers.at("mephisto.agent") == "fwd");
        CHECK(r.headers.at("mephisto.source").rfind("in[", 0) == 0);
    }
    CHECK(dead == std::set<std::string>{"b", "c", "f"});
    for (const auto& r : out.records())
        if (r.key == "e") CHECK(r.headers == std::map<std::string, std::string>{{"h1", "v1"}, {"h2", ""}});
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(host->log().find("3 undecodable") != std::string::npos);
}

TEST_CASE("a pipeline whose only work is a timer runs it on its interval") {
    Broker broker;
    broker.create_topic("ticks", 1);
    TempDir dir;
    auto yaml = "app: {id: ticker}\nplugins: {dir: " + test_plugin_dir().string() +
                "}\ntimers:\n  beat: {plugin: test_agents, agent: tick, every: 100ms, params: {topic: ticks}}\n";
    auto host = start_host(dir.write("ticker.yaml", yaml), broker.bootstrap(), dir.path() / "host.log", {}, false);
    TopicReader ticks(broker.bootstrap(), "ticks", 1);
    REQUIRE(ticks.read_until([](auto& r) { return r.size() >= 5; }, 20s));
    std::vector<std::string> values;
    for (const auto& r : ticks.records()) values.push_back(*r.value);
    CHECK(values[0] == "tick 1");
    CHECK(values[4] == "tick 5");
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
