// Recovery at its edges (RELIABILITY 22, 23, 28): a kept store replays only the changelog's tail; empty,
// one-record, offset-0 and tombstone-tailed changelogs all finish recovery; a changelog that does not exist
// yet at assignment counts as empty; and work without tables never waits for a table's recovery.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <regex>

#include "harness.hpp"
#include "tables/codec.hpp"

using namespace mephisto::test;

namespace {

std::string pipeline(const std::string& app, const std::filesystem::path& state, const std::string& store,
                     const std::string& extra_agents = "") {
    return pipeline_yaml(app, "state_dir: " + state.string() + "\n"
           "topics:\n  words: {partitions: 4}\n  plain: {partitions: 2}\n  out: {partitions: 1}\n"
           "tables:\n  counts: {store: " + store + ", value: int64}\n"
           "agents:\n  counter:\n    plugin: test_agents\n    agent: count\n    from: words\n    tables: [counts]\n" +
           extra_agents);
}

// Each word keyed by itself ("delete:w" by w), so a word and its deletion meet on one partition.
std::vector<Message> words(const std::vector<std::string>& list) {
    std::vector<Message> out;
    for (const auto& w : list) out.push_back({w.starts_with("delete:") ? w.substr(7) : w, w, {}, -1});
    return out;
}

std::map<std::string, int64_t> changelog_model(const std::string& bootstrap, const std::string& app) {
    return int64_table_from_changelog(bootstrap, app + "-counts-changelog", 4);
}

struct Replay {
    int64_t records;
    int64_t from;
};

// "table counts[P]: recovering N changelog record(s) from offset F" lines of a host's log, by partition.
std::map<int, Replay> replays(const std::string& log) {
    static const std::regex line(R"(table counts\[(\d+)\]: recovering (\d+) changelog record\(s\) from offset (\d+))");
    std::map<int, Replay> out;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it)
        out[std::stoi((*it)[1])] = Replay{std::stoll((*it)[2]), std::stoll((*it)[3])};
    return out;
}

// Every partition of the counts table reported the end of its recovery.
bool all_recovered(const HostProcess& host) {
    return host.count_in_log("recovered ") + host.count_in_log("up to date") >= 4;
}

}  // namespace

TEST_CASE("a kept store replays only the changelog tail after its persisted offset (RELIABILITY 22)") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    const auto mine = dir.write("mine.yaml", pipeline("tail", dir.path() / "mine", "rocksdb"));
    const auto other = dir.write("other.yaml", pipeline("tail", dir.path() / "other", "rocksdb"));

    // One word: its partition's store persists changelog offset 0, the edge of "nothing yet".
    auto host = start_host(mine, broker.bootstrap(), dir.path() / "first.log");
    produce(broker.bootstrap(), "words", words({"solo"}));
    REQUIRE(await_caught_up(broker.bootstrap(), "tail", "words", 4, 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
    const auto persisted_ends = end_offsets(broker.bootstrap(), "tail-counts-changelog", 4);

    // Another host of the app, on its own store, extends the changelog while this one is away.
    auto away = start_host(other, broker.bootstrap(), dir.path() / "other.log");
    produce(broker.bootstrap(), "words", words({"solo", "solo", "a", "b", "c", "d", "e", "f", "a"}));
    REQUIRE(await_caught_up(broker.bootstrap(), "tail", "words", 4, 60s));
    CHECK(away->stop(SIGTERM, 30s) == 0);
    const auto ends = end_offsets(broker.bootstrap(), "tail-counts-changelog", 4);

    auto back = start_host(mine, broker.bootstrap(), dir.path() / "back.log");
    REQUIRE(await([&] { return all_recovered(*back); }, 30s));
    const auto replayed = replays(back->log());
    INFO(back->log());
    for (int p = 0; p < 4; ++p) {
        const int64_t tail = ends.at(p) - persisted_ends.at(p);
        if (tail == 0) {
            CHECK(replayed.count(p) == 0);  // "up to date": nothing read
            continue;
        }
        REQUIRE(replayed.count(p) == 1);
        CHECK(replayed.at(p).from == persisted_ends.at(p));  // the first offset after the persisted one
        CHECK(replayed.at(p).records == tail);               // and only the tail
    }
    // The store plus its tail is the table: counting goes on from the values the other host left.
    produce(broker.bootstrap(), "words", words({"solo", "a"}));
    REQUIRE(await_caught_up(broker.bootstrap(), "tail", "words", 4, 60s));
    CHECK(back->stop(SIGTERM, 30s) == 0);
    const auto model = changelog_model(broker.bootstrap(), "tail");
    CHECK(model.at("solo") == 4);
    CHECK(model.at("a") == 3);
    CHECK(model.at("f") == 1);
}

TEST_CASE("edge changelogs finish recovery: none yet, one record, a tail of tombstones (RELIABILITY 23)") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    // A memory store starts empty on every start: each restart recovers the whole changelog.
    const auto yaml = dir.write("p.yaml", pipeline("edges", dir.path() / "state", "memory"));

    // No changelog at all: on this broker it is created by its first write, so at assignment its end is
    // unknown. That is an empty changelog, and every partition is up to date at once.
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "none.log");
    REQUIRE(await([&] { return host->count_in_log("up to date") >= 4; }, 30s));
    CHECK(host->count_in_log("recovering") == 0);
    produce(broker.bootstrap(), "words", words({"solo"}));
    REQUIRE(await_caught_up(broker.bootstrap(), "edges", "words", 4, 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(changelog_model(broker.bootstrap(), "edges") == std::map<std::string, int64_t>{{"solo", 1}});

    // One record: recovered, and counting continues from it.
    host = start_host(yaml, broker.bootstrap(), dir.path() / "one.log");
    REQUIRE(await([&] { return all_recovered(*host); }, 30s));
    CHECK(host->count_in_log("recovered 1 record(s)") == 1);
    CHECK(host->count_in_log("up to date") == 3);
    produce(broker.bootstrap(), "words", words({"solo", "delete:solo", "other"}));
    REQUIRE(await_caught_up(broker.bootstrap(), "edges", "words", 4, 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
    // A tombstone may share the commit of the count before it (one record per key per flush), so the tail
    // of solo's partition is a tombstone either way.
    CHECK(changelog_model(broker.bootstrap(), "edges") == std::map<std::string, int64_t>{{"other", 1}});

    // A changelog ending in a tombstone: recovery finishes, the key is absent, and counts from zero.
    host = start_host(yaml, broker.bootstrap(), dir.path() / "tombstones.log");
    REQUIRE(await([&] { return all_recovered(*host); }, 30s));
    produce(broker.bootstrap(), "words", words({"solo", "other"}));
    REQUIRE(await_caught_up(broker.bootstrap(), "edges", "words", 4, 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(changelog_model(broker.bootstrap(), "edges") == std::map<std::string, int64_t>{{"other", 2}, {"solo", 1}});
}

TEST_CASE("work without tables never waits for a table's recovery (RELIABILITY 28)") {
    TempDir dir;
    const auto state = dir.path() / "state";
    const std::string plain_agent =
        "  relay: {plugin: test_agents, agent: forward, from: plain, sinks: [out]}\n";
    {
        Broker first;
        first.create_topic("words", 4);
        auto yaml = dir.write("p.yaml", pipeline("untabled", state, "rocksdb"));
        auto host = start_host(yaml, first.bootstrap(), dir.path() / "first.log");
        produce(first.bootstrap(), "words", words({"a", "b", "c", "d", "e", "f"}));
        REQUIRE(await_caught_up(first.bootstrap(), "untabled", "words", 4, 60s));
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
    // On a new broker the store is ahead of its (empty) changelog: the table's partitions never recover.
    // The agent without tables, in the same host, processes from the start regardless.
    Broker broker;
    broker.create_topic("words", 4);
    broker.create_topic("plain", 2);
    broker.create_topic("out", 1);
    auto yaml = dir.write("p.yaml", pipeline("untabled", state, "rocksdb", plain_agent));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    produce_sequence(broker.bootstrap(), "plain", 0, 200);
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](const std::vector<Record>& r) { return r.size() >= 200; }, 30s));
    CHECK(out.value_counts().size() == 200);
    REQUIRE(await_caught_up(broker.bootstrap(), "untabled", "plain", 2, 30s));
    CHECK(host->log().find("will not serve until it is reset") != std::string::npos);
    CHECK(host->stop(SIGTERM, 30s) == 0);

    // A pipeline without any table has no recovery phase at all.
    auto bare_yaml = dir.write("bare.yaml", "app: {id: bare}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" +
                                                kFastGroupYaml + "topics: {plain: {}, out: {}}\nagents:\n" + plain_agent);
    auto bare = start_host(bare_yaml, broker.bootstrap(), dir.path() / "bare.log");
    produce_sequence(broker.bootstrap(), "plain", 200, 10);
    REQUIRE(await_caught_up(broker.bootstrap(), "bare", "plain", 2, 30s));
    CHECK(bare->stop(SIGTERM, 30s) == 0);
    CHECK(bare->count_in_log("recover") == 0);
    CHECK(bare->count_in_log("] table ") == 0);  // no table line of the pipeline
}
