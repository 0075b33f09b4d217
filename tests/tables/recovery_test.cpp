// Word count on a host-owned table: exact after a clean run, never lower after kill -9, rebuilt from the
// changelog when the local store is deleted, and the refusals (copartitioning, a store ahead of its
// changelog). The changelog is the ledger: the last record per key is the table's value.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "harness.hpp"
#include "tables/codec.hpp"

using namespace mephisto::test;

namespace {

constexpr int kWords = 40;  // distinct words; word i occurs i+1 times per round

std::string pipeline(const std::string& app, const std::filesystem::path& state, const std::string& store = "rocksdb") {
    return pipeline_yaml(app, "state_dir: " + state.string() + "\n"
           "topics:\n  words: {partitions: 4}\n"
           "tables:\n  counts: {store: " + store + ", value: int64}\n"
           "agents:\n  counter:\n    plugin: test_agents\n    agent: count\n    from: words\n    tables: [counts]\n");
}

// One round of the corpus: word i, i+1 times, keyed by the word so each word lives on one partition.
std::vector<Message> corpus_round() {
    std::vector<Message> m;
    for (int i = 0; i < kWords; ++i)
        for (int n = 0; n <= i; ++n) m.push_back({"w" + std::to_string(i), "w" + std::to_string(i), {}, -1});
    return m;
}

int64_t expected(int word, int rounds) { return static_cast<int64_t>(word + 1) * rounds; }

std::map<std::string, int64_t> changelog_counts(const std::string& bootstrap, const std::string& app) {
    return int64_table_from_changelog(bootstrap, app + "-counts-changelog", 4);
}

}  // namespace

TEST_CASE("word count is exact after a clean run, and a restart recovers it incrementally") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline("wc", dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    produce(broker.bootstrap(), "words", corpus_round());
    REQUIRE(await_caught_up(broker.bootstrap(), "wc", "words", 4, 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
    auto counts = changelog_counts(broker.bootstrap(), "wc");
    REQUIRE(counts.size() == kWords);
    for (int i = 0; i < kWords; ++i) CHECK(counts["w" + std::to_string(i)] == expected(i, 1));

    // Restart on the same store: nothing to replay, and counting goes on from the stored values.
    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    CHECK(second->await_log("up to date", 30s));
    CHECK(second->count_in_log("recovering") == 0);
    produce(broker.bootstrap(), "words", corpus_round());
    REQUIRE(await_caught_up(broker.bootstrap(), "wc", "words", 4, 60s));
    CHECK(second->stop(SIGTERM, 30s) == 0);
    counts = changelog_counts(broker.bootstrap(), "wc");
    for (int i = 0; i < kWords; ++i) CHECK(counts["w" + std::to_string(i)] == expected(i, 2));
}

TEST_CASE("after kill -9 and restart no count is lower than expected, and deleting the store rebuilds it from the changelog") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline("wc9", dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    for (int r = 0; r < 5; ++r) produce(broker.bootstrap(), "words", corpus_round());
    REQUIRE(await([&] { return !changelog_counts(broker.bootstrap(), "wc9").empty(); }, 30s));
    CHECK(host->stop(SIGKILL, 10s) == 128 + SIGKILL);

    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    REQUIRE(await_caught_up(broker.bootstrap(), "wc9", "words", 4, 60s));
    CHECK(second->stop(SIGTERM, 30s) == 0);
    auto after_kill = changelog_counts(broker.bootstrap(), "wc9");
    for (int i = 0; i < kWords; ++i) CHECK(after_kill["w" + std::to_string(i)] >= expected(i, 5));

    // Delete the local store: the table comes back from the changelog alone, equal to the changelog's model,
    // and counting continues from it.
    std::filesystem::remove_all(dir.path() / "state");
    auto third = start_host(yaml, broker.bootstrap(), dir.path() / "third.log");
    CHECK(third->await_log("recovered ", 30s));
    produce(broker.bootstrap(), "words", corpus_round());
    REQUIRE(await_caught_up(broker.bootstrap(), "wc9", "words", 4, 60s));
    CHECK(third->stop(SIGTERM, 30s) == 0);
    auto rebuilt = changelog_counts(broker.bootstrap(), "wc9");
    for (int i = 0; i < kWords; ++i) {
        const std::string w = "w" + std::to_string(i);
        CHECK(rebuilt[w] == after_kill[w] + expected(i, 1));
    }
}

TEST_CASE("deleted keys stay deleted after recovery (RELIABILITY 24)") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline("deletes", dir.path() / "state", "memory"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    produce(broker.bootstrap(), "words", {{"a", "a", {}, -1}, {"a", "a", {}, -1}, {"b", "b", {}, -1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "deletes", "words", 4, 60s));
    produce(broker.bootstrap(), "words", {{"a", "delete:a", {}, -1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "deletes", "words", 4, 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(changelog_counts(broker.bootstrap(), "deletes") == std::map<std::string, int64_t>{{"b", 1}});

    // A memory store starts empty: everything comes from the changelog, tombstone included. Counting "a"
    // again starts from absent (0), not from the deleted 2.
    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    produce(broker.bootstrap(), "words", {{"a", "a", {}, -1}, {"b", "b", {}, -1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "deletes", "words", 4, 60s));
    CHECK(second->stop(SIGTERM, 30s) == 0);
    CHECK(changelog_counts(broker.bootstrap(), "deletes") == std::map<std::string, int64_t>{{"a", 1}, {"b", 2}});
}

TEST_CASE("a table shared by topics of different partition counts is refused before joining (RELIABILITY 20)") {
    Broker broker;
    broker.create_topic("words", 4);
    broker.create_topic("more", 8);
    TempDir dir;
    auto yaml = dir.write("p.yaml", "app: {id: copart}\nplugins: {dir: " + test_plugin_dir().string() +
                                        "}\nstate_dir: " + (dir.path() / "state").string() +
                                        "\ntopics: {words: {}, more: {}}\ntables:\n  counts: {value: int64}\n"
                                        "agents:\n  counter: {plugin: test_agents, agent: count, from: [words, more], "
                                        "tables: [counts]}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log", {}, false);
    REQUIRE(host->wait(30s) == 1);
    INFO(host->log());
    CHECK(host->log().find("table counts is shared by topics with different partition counts: more (8), words (4)") !=
          std::string::npos);
    CHECK(host->log().find("assigned") == std::string::npos);
}

TEST_CASE("a store ahead of its changelog refuses to serve with a clear message (RELIABILITY 25)") {
    TempDir dir;
    auto state = dir.path() / "state";
    {
        Broker broker;
        broker.create_topic("words", 4);
        auto yaml = dir.write("p.yaml", pipeline("ahead", state));
        auto host = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
        produce(broker.bootstrap(), "words", corpus_round());
        REQUIRE(await_caught_up(broker.bootstrap(), "ahead", "words", 4, 60s));
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
    // A new broker: the changelog is empty, the store says it holds offsets beyond that.
    Broker fresh;
    fresh.create_topic("words", 4);
    auto yaml = dir.write("p.yaml", pipeline("ahead", state));
    auto host = start_host(yaml, fresh.bootstrap(), dir.path() / "second.log");
    REQUIRE(host->await_log("but the changelog ends at 0", 30s));
    CHECK(host->log().find("will not serve until it is reset") != std::string::npos);
    // Its partitions do not process: nothing is counted, nothing committed.
    produce(fresh.bootstrap(), "words", {{"w1", "w1", {}, -1}});
    TopicReader changelog(fresh.bootstrap(), "ahead-counts-changelog", 4);
    changelog.read_for(1500ms);
    CHECK(changelog.records().empty());
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
}


TEST_CASE("tables, table get, table dump read a stopped host's store, and reset wipes it on purpose") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline("cli", dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    produce(broker.bootstrap(), "words", corpus_round());
    REQUIRE(await_caught_up(broker.bootstrap(), "cli", "words", 4, 60s));

    std::string out;
    // While the host runs, its store is locked: reset refuses rather than wiping live state.
    CHECK(run_cli({"reset", "--table", "counts", yaml.string()}, dir, out) == 1);
    CHECK(out.find("is a host running on this state?") != std::string::npos);
    CHECK(host->stop(SIGTERM, 30s) == 0);

    CHECK(run_cli({"table", "get", yaml.string(), "counts", "w7"}, dir, out) == 0);
    CHECK(out == "8\n");
    CHECK(run_cli({"table", "get", yaml.string(), "counts", "nope"}, dir, out) == 3);
    CHECK(run_cli({"table", "dump", yaml.string(), "counts"}, dir, out) == 0);
    CHECK(std::count(out.begin(), out.end(), '\n') == kWords);
    CHECK(out.find(R"("key":"w39","partition":)") != std::string::npos);
    CHECK(out.find(R"("value":40)") != std::string::npos);
    CHECK(run_cli({"tables", yaml.string()}, dir, out) == 0);
    CHECK(out.find("counts  rocksdb, int64 values, changelog cli-counts-changelog") != std::string::npos);
    CHECK(out.find(" key(s), changelog offset ") != std::string::npos);

    CHECK(run_cli({"reset", "--table", "counts", yaml.string()}, dir, out) == 0);
    CHECK(out.find("table counts: removed local state at") != std::string::npos);
    CHECK(!std::filesystem::exists(dir.path() / "state" / "counts"));
    CHECK(run_cli({"table", "get", yaml.string(), "counts", "w7"}, dir, out) == 1);

    // The next start rebuilds it from the changelog.
    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    // Every partition reports once, "recovered" or (nothing in its changelog) "up to date"; a stop before
    // that would cancel the rest of the recovery.
    CHECK(await([&] { return second->count_in_log("recovered ") + second->count_in_log("up to date") >= 4; }, 30s));
    CHECK(second->stop(SIGTERM, 30s) == 0);
    CHECK(run_cli({"table", "get", yaml.string(), "counts", "w7"}, dir, out) == 0);
    CHECK(out == "8\n");
}
