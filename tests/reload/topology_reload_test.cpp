// Topology reload (DESIGN.md §5; RELIABILITY 15): a pipeline file edited while the host runs is diffed against
// the running pipeline and only the difference is applied. New agents start, removed ones stop, changed ones
// restart on their new YAML, and the agents the edit does not name never pause: their instances are never
// re-created, the group never rebalances and their output has every input exactly once. An invalid edit changes
// nothing and names file, line and column.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

std::string header(const std::string& app) {
    return pipeline_yaml(app, "");
}

// Saves `text` as `name` in `dir` the way editors do: written beside it, then renamed over it.
void save(const TempDir& dir, const std::string& name, const std::string& text) {
    auto partial = dir.write("." + name + ".partial", text);
    std::filesystem::rename(partial, dir.path() / name);
}

// How many times each value appears among the records.
std::map<std::string, int> tally(const std::vector<Record>& records) {
    std::map<std::string, int> out;
    for (const auto& r : records)
        if (r.value) out[*r.value]++;
    return out;
}

std::vector<Record> read_all(const std::string& bootstrap, const std::string& topic) {
    TopicReader reader(bootstrap, topic, 4);
    REQUIRE(reader.read_to_end(30s));
    return reader.records();
}

size_t reload_count(const std::string& admin) {
    auto reply = http_get(admin, "/reloads");
    return reply.status == 200 ? json::parse(reply.body).size() : 0;
}

json last_reload(const std::string& admin) {
    auto reply = http_get(admin, "/reloads");
    REQUIRE(reply.status == 200);
    auto history = json::parse(reply.body);
    REQUIRE(!history.empty());
    return history.back();
}

}  // namespace

TEST_CASE("an edit that adds, removes and changes agents leaves the unchanged agent running (RELIABILITY 15)") {
    Broker broker;
    for (const char* t : {"in", "out_steady", "out_doomed", "out_changing", "out_fresh", "other"})
        broker.create_topic(t, 4);
    TempDir dir;
    const std::string before =
        header("topo") +
        "topics: {in: {partitions: 4}, out_steady: {partitions: 4}, out_doomed: {partitions: 4},\n"
        "         out_changing: {partitions: 4}}\n"
        "agents:\n"
        "  steady: {plugin: test_agents, agent: forward, from: in, sinks: [out_steady]}\n"
        "  doomed: {plugin: test_agents, agent: forward, from: in, sinks: [out_doomed]}\n"
        "  changing: {plugin: test_agents, agent: forward, from: in, sinks: [out_changing],\n"
        "             params: {drop_on: nothing-matches-this}}\n";
    // A comment above moves every line: positions are not changes. `doomed` goes, `changing` now drops the
    // values marked "after-", `fresh` is new and writes to a topic declared by this edit, and so does the
    // new timer `beat` (the first timer of this pipeline).
    const std::string after =
        header("topo") +
        "# edited while running\n"
        "topics: {in: {partitions: 4}, out_steady: {partitions: 4}, out_doomed: {partitions: 4},\n"
        "         out_changing: {partitions: 4}, out_fresh: {partitions: 4}}\n"
        "agents:\n"
        "  steady: {plugin: test_agents, agent: forward, from: in, sinks: [out_steady]}\n"
        "  changing: {plugin: test_agents, agent: forward, from: in, sinks: [out_changing],\n"
        "             params: {drop_on: after-}}\n"
        "  fresh: {plugin: test_agents, agent: forward, from: in, sinks: [out_fresh]}\n";
    const std::string timers = "timers:\n  beat: {plugin: test_agents, agent: tick, every: 100ms, params: {topic: out_fresh}}\n";
    save(dir, "p.yaml", before);
    auto host = start_host(dir.path() / "p.yaml", broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);

    // A steady load across the edit.
    constexpr int kChunk = 100;
    SteadyLoad load(broker.bootstrap(), "in", kChunk);
    // Instances are created at their lane's first event.
    REQUIRE(await([&] { return host->count_in_log("[steady] instance created") == 4; }, 30s));
    REQUIRE(await([&] { return load.sent() >= 10 * kChunk; }, 30s));
    save(dir, "p.yaml", after + timers);
    REQUIRE(await([&] { return host->count_in_log("applied in place") == 1; }, 30s));
    REQUIRE(await([&] { return reload_count(admin) == 1; }, 30s));
    const int at_edit = load.sent();
    REQUIRE(await([&] { return load.sent() >= at_edit + 10 * kChunk; }, 30s));
    const int total = load.stop();
    MESSAGE(total << " events sent across the edit");
    produce_sequence(broker.bootstrap(), "in", total, 200, 16, "after-");
    // Every offset commits: the events the removed agent had not taken were released by it.
    REQUIRE(await_caught_up(broker.bootstrap(), "topo", "in", 4, 60s));

    // The unchanged agent: every input exactly once, instances never re-created, no rebalance.
    const auto steady = tally(read_all(broker.bootstrap(), "out_steady"));
    int lost = 0, repeated = 0;
    for (int i = 0; i < total + 200; ++i) {
        const std::string v = (i < total ? "seq-" : "after-") + std::to_string(i);
        auto it = steady.find(v);
        if (it == steady.end()) ++lost;
        else repeated += it->second - 1;
    }
    CHECK(lost == 0);
    CHECK(repeated == 0);
    CHECK(host->count_in_log("[steady] instance created") == 4);
    CHECK(host->count_in_log("assigned 4 partition(s)") == 1);
    CHECK(host->count_in_log("revoked") == 0);

    // The changed agent restarted on its new params: nothing lost or repeated across its restart, and the
    // values its new YAML drops are dropped.
    const auto changing = tally(read_all(broker.bootstrap(), "out_changing"));
    lost = repeated = 0;
    for (int i = 0; i < total; ++i) {
        auto it = changing.find("seq-" + std::to_string(i));
        if (it == changing.end()) ++lost;
        else repeated += it->second - 1;
    }
    CHECK(lost == 0);
    CHECK(repeated == 0);
    for (const auto& [value, n] : changing) CHECK_MESSAGE(value.rfind("after-", 0) != 0, value);
    CHECK(host->count_in_log("[changing] instance created") == 8);

    // The new agent processed everything sent after the edit was applied; the removed one nothing of it.
    const auto fresh = tally(read_all(broker.bootstrap(), "out_fresh"));
    for (int i = total; i < total + 200; ++i) CHECK(fresh.count("after-" + std::to_string(i)) == 1);
    for (const auto& [value, n] : fresh)
        if (value.rfind("tick ", 0) != 0) CHECK(n == 1);
    CHECK(fresh.count("tick 1") == 1);  // the timer started with the edit
    const auto doomed = tally(read_all(broker.bootstrap(), "out_doomed"));
    for (const auto& [value, n] : doomed) CHECK_MESSAGE(value.rfind("after-", 0) != 0, value);
    CHECK(!doomed.empty());  // it did run before the edit

    // The report: what changed, and the pause of the restarted agent only.
    json record = last_reload(admin);
    CHECK(record["trigger"] == "pipeline file");
    REQUIRE(record["topology"].size() == 1);
    const json& change = record["topology"][0];
    CHECK(change["result"] == "applied");
    CHECK(change["changed"] == "agents +fresh -doomed ~changing; timers +beat; topics +out_fresh");
    std::set<std::string> paused;
    for (const auto& a : change["agents"])
        if (a["pause_ms"].get<double>() > 0) paused.insert(a["agent"].get<std::string>());
    CHECK(paused == std::set<std::string>{"changing"});
    auto agents = json::parse(http_get(admin, "/agents").body);
    std::set<std::string> names;
    for (const auto& a : agents) names.insert(a["agent"].get<std::string>());
    CHECK(names == std::set<std::string>{"steady", "changing", "fresh"});

    // An invalid edit changes nothing and names file, line and column.
    save(dir, "p.yaml", after + "  broken: {plugin: test_agents, agent: forward, from: in, sinks: [nowhere]}\n" + timers);
    REQUIRE(await([&] { return host->count_in_log("keeps running as it was") == 1; }, 30s));
    record = last_reload(admin);
    REQUIRE(record["topology"].size() == 1);
    CHECK(record["topology"][0]["result"] == "refused");
    const std::string reason = record["topology"][0]["reason"].get<std::string>();
    CHECK_MESSAGE(reason.find("p.yaml:13:") != std::string::npos, reason);
    produce_sequence(broker.bootstrap(), "in", 0, 50, 16, "late-");
    REQUIRE(await_caught_up(broker.bootstrap(), "topo", "in", 4, 60s));
    CHECK(tally(read_all(broker.bootstrap(), "out_fresh")).count("late-49") == 1);
    CHECK(host->count_in_log("[steady] instance created") == 4);

    // An edit the running pipeline cannot take in place (another source topic) restarts that pipeline, and
    // says why.
    std::string with_other = after;
    with_other.replace(with_other.find("out_fresh: {partitions: 4}}"), 27, "out_fresh: {partitions: 4}, other: {partitions: 4}}");
    save(dir, "p.yaml", with_other + "  reader: {plugin: test_agents, agent: forward, from: other, sinks: [out_fresh]}\n" + timers);
    REQUIRE(await([&] { return reload_count(admin) == 3; }, 60s));  // recorded once the pipeline runs again
    CHECK(host->count_in_log("restarting this pipeline") == 1);
    record = last_reload(admin);
    REQUIRE(record["topology"].size() == 1);
    CHECK_MESSAGE(record["topology"][0]["result"] == "restarted", record.dump());
    CHECK(record["topology"][0]["reason"].get<std::string>().find("the topics the pipeline reads changed (+other)") !=
          std::string::npos);
    Message from_other;
    from_other.key = "k";
    from_other.value = "from-other";
    produce(broker.bootstrap(), "other", {from_other});
    REQUIRE(await([&] { return tally(read_all(broker.bootstrap(), "out_fresh")).count("from-other") == 1; }, 60s));
}
