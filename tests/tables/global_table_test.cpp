// Global tables (Faust's GlobalTable, RELIABILITY 27): two hosts of one app each own one partition of the
// commands topic; each holds the whole table, sees the other's writes within a small bound, may not write a
// key the other partition holds, and persists every partition locally.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

std::string pipeline(const std::string& who, const std::filesystem::path& state) {
    return "app: {id: glob}\nplugins: {dir: " + test_plugin_dir().string() + "}\nstate_dir: " + state.string() + "\n" +
           kFastGroupYaml +
           "topics: {commands: {partitions: 2}, answers: {partitions: 1}}\n"
           "tables:\n  entries: {global: true}\n"
           "agents:\n  registry:\n    plugin: test_agents\n    agent: registry\n    from: commands\n"
           "    sinks: [answers]\n    tables: [entries]\n    params: {who: " + who + "}\n";
}

// Sends "get:KEY" to both partitions until every answer wanted has arrived.
bool await_answers(const std::string& bootstrap, TopicReader& answers, const std::string& key,
                   const std::vector<std::string>& wanted, std::chrono::milliseconds timeout) {
    return await([&] {
        produce(bootstrap, "commands", {{key, "get:" + key, {}, 0}, {key, "get:" + key, {}, 1}});
        answers.read_for(100ms);
        auto seen = answers.value_counts();
        for (const auto& w : wanted)
            if (!seen.count(w)) return false;
        return true;
    }, timeout);
}

}  // namespace

TEST_CASE("a global table write is visible on the other host, which may read but not write it (RELIABILITY 27)") {
    Broker broker;
    broker.create_topic("commands", 2);
    broker.create_topic("answers", 1);
    TempDir dir;
    auto a_yaml = dir.write("a.yaml", pipeline("A", dir.path() / "a"));
    auto b_yaml = dir.write("b.yaml", pipeline("B", dir.path() / "b"));
    auto a = start_host(a_yaml, broker.bootstrap(), dir.path() / "a.log");
    auto b = start_host(b_yaml, broker.bootstrap(), dir.path() / "b.log");
    // The group settles with one partition each, and each host's own partition is current.
    REQUIRE(await([&] { return a->count_in_log("assigned 1 partition(s)") && b->count_in_log("assigned 1 partition(s)"); },
                  30s));
    REQUIRE(await([&] {
        return a->count_in_log("up to date with the global table") >= 3 &&
               b->count_in_log("up to date with the global table") >= 1;
    }, 30s));

    // Each partition's owner writes one key; both hosts read both keys.
    const auto written = std::chrono::steady_clock::now();
    produce(broker.bootstrap(), "commands", {{"color", "set:color=blue", {}, 0}, {"shape", "set:shape=round", {}, 1}});
    TopicReader answers(broker.bootstrap(), "answers", 1);
    CHECK(await_answers(broker.bootstrap(), answers, "color", {"A color=blue", "B color=blue"}, 20s));
    MESSAGE("a write reached the other host within "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - written).count()
            << " ms (including the polling of this test)");
    CHECK(await_answers(broker.bootstrap(), answers, "shape", {"A shape=round", "B shape=round"}, 20s));

    // Read-only where not owned: the owner of partition 1 may not write color, which partition 0 holds.
    produce(broker.bootstrap(), "commands", {{"color", "set:color=red", {}, 1}});
    CHECK(answers.read_until([](const std::vector<Record>& r) {
        return std::any_of(r.begin(), r.end(), [](const Record& x) { return x.value->ends_with(" refused color"); });
    }, 20s));
    // The owner's next write replaces the value everywhere.
    produce(broker.bootstrap(), "commands", {{"color", "set:color=green", {}, 0}});
    CHECK(await_answers(broker.bootstrap(), answers, "color", {"A color=green", "B color=green"}, 20s));
    for (const auto& r : answers.records()) CHECK(r.value->find("color=red") == std::string::npos);

    CHECK(a->stop(SIGTERM, 30s) == 0);
    CHECK(b->stop(SIGTERM, 30s) == 0);
    // Each host's store holds both partitions, owned or followed.
    for (const auto& yaml : {a_yaml, b_yaml}) {
        std::string out;
        CHECK(run_cli({"table", "get", yaml.string(), "entries", "color"}, dir, out) == 0);
        CHECK(out == "green\n");
        CHECK(run_cli({"table", "get", yaml.string(), "entries", "shape"}, dir, out) == 0);
        CHECK(out == "round\n");
    }
}

TEST_CASE("a restarted host follows the global table from its persisted offsets, catching up on what it missed") {
    Broker broker;
    broker.create_topic("commands", 2);
    broker.create_topic("answers", 1);
    TempDir dir;
    auto a_yaml = dir.write("a.yaml", pipeline("A", dir.path() / "a"));
    auto b_yaml = dir.write("b.yaml", pipeline("B", dir.path() / "b"));
    auto a = start_host(a_yaml, broker.bootstrap(), dir.path() / "a1.log");
    produce(broker.bootstrap(), "commands", {{"k1", "set:k1=one", {}, 0}, {"k2", "set:k2=two", {}, 1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "glob", "commands", 2, 30s));
    CHECK(a->stop(SIGTERM, 30s) == 0);

    // While A is away, B writes more; A comes back on its kept store and reads only what it missed.
    auto b = start_host(b_yaml, broker.bootstrap(), dir.path() / "b.log");
    produce(broker.bootstrap(), "commands", {{"k1", "set:k1=uno", {}, 0}, {"k3", "set:k3=three", {}, 1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "glob", "commands", 2, 30s));
    CHECK(b->stop(SIGTERM, 30s) == 0);

    a = start_host(a_yaml, broker.bootstrap(), dir.path() / "a2.log");
    REQUIRE(a->await_log("global table entries: caught up", 30s));
    CHECK(a->log().find("global table entries: following 2 partition(s) of glob-entries-changelog, 2 record(s) behind") !=
          std::string::npos);
    TopicReader answers(broker.bootstrap(), "answers", 1);
    CHECK(await_answers(broker.bootstrap(), answers, "k1", {"A k1=uno"}, 20s));
    CHECK(await_answers(broker.bootstrap(), answers, "k3", {"A k3=three"}, 20s));
    CHECK(a->stop(SIGTERM, 30s) == 0);
}
