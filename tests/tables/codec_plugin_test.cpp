// Table and codec plugins (ABI 1.2): a topic and a table name a plugin's codec, which checks every value and
// renders it for the table commands; a table names a plugin's aggregator, which table_merge folds values with;
// group_by names a plugin's key function. The shipped plugins codec_msgpack and aggregate_stats and the test
// plugin serve here, against real hosts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "tables/codec.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

std::string pipeline(const std::filesystem::path& plugins, const std::filesystem::path& state,
                     const std::string& latest_codec = "msgpack") {
    return "app: {id: codecs}\nplugins: {dir: " + plugins.string() + "}\nstate_dir: " + state.string() + "\n" +
           kFastGroupYaml +
           "topics:\n"
           "  readings: {partitions: 2, value: {plugin: codec_msgpack, codec: msgpack}}\n"
           "  levels: {partitions: 2}\n"
           "  levels-text: {partitions: 2}\n"
           "tables:\n"
           "  latest: {value: {plugin: codec_msgpack, codec: " + latest_codec + "}}\n"
           "  peaks: {value: int64, aggregate: {plugin: aggregate_stats, name: max}}\n"
           "  stats: {value: json, aggregate: {plugin: aggregate_stats, name: summary}}\n"
           "agents:\n"
           "  keep: {plugin: test_agents, agent: fold, from: readings, tables: [latest], params: {table: latest},\n"
           "         on_error: {retry: 0, then: dead_letter}}\n"
           "  peak: {plugin: test_agents, agent: fold, from: levels, tables: [peaks], params: {table: peaks, mode: merge},\n"
           "         on_error: {retry: 0, then: dead_letter}}\n"
           "  summarize: {plugin: test_agents, agent: fold, from: levels-text, tables: [stats],\n"
           "              params: {table: stats, mode: merge}, on_error: {retry: 0, then: dead_letter}}\n";
}

// The plugins of the tests and the shipped ones live in two folders; a host has one plugin folder.
std::filesystem::path plugin_folder(const TempDir& dir) {
    const auto folder = dir.path() / "plugins";
    std::filesystem::create_directories(folder);
    for (const auto& p : {test_plugin_dir() / "test_agents.so", example_plugin_dir() / "codec_msgpack.so",
                          example_plugin_dir() / "aggregate_stats.so"})
        std::filesystem::copy_file(p, folder / p.filename(), std::filesystem::copy_options::overwrite_existing);
    return folder;
}

std::string msgpack(const json& value) {
    const auto bytes = json::to_msgpack(value);
    return std::string(bytes.begin(), bytes.end());
}

std::string int64(int64_t v) { return mephisto::encode_int64(v); }

}  // namespace

TEST_CASE("a plugin's codec checks topic values and table writes, and an aggregator folds values with table_merge") {
    Broker broker;
    broker.create_topic("readings", 2);
    broker.create_topic("levels", 2);
    broker.create_topic("levels-text", 2);
    TempDir dir;
    const auto plugins = plugin_folder(dir);
    auto yaml = dir.write("p.yaml", pipeline(plugins, dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");

    produce(broker.bootstrap(), "readings",
            {{"s1", msgpack({{"t", 20.5}, {"unit", "C"}}), {}, -1},
             {"s2", msgpack(json::array({1, 2, 3})), {}, -1},
             {"s3", std::string("\xc1", 1), {}, -1},  // 0xc1 is never used in MessagePack
             // 100,000 nested one-element arrays: a recursive decoder would overflow the host's stack.
             {"s4", std::string(100'000, '\x91') + "\xc0", {}, -1}});
    produce(broker.bootstrap(), "levels",
            {{"s1", int64(5), {}, -1}, {"s1", int64(9), {}, -1}, {"s1", int64(3), {}, -1}, {"s2", int64(-4), {}, -1},
             {"s2", "abc", {}, -1}});  // not an int64: the aggregator refuses it
    produce(broker.bootstrap(), "levels-text",
            {{"s1", "1.5", {}, -1}, {"s1", "2.5", {}, -1}, {"s1", "5", {}, -1}, {"s1", "warm", {}, -1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "codecs", "readings", 2, 60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "codecs", "levels", 2, 60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "codecs", "levels-text", 2, 60s));

    // Refusals follow each agent's error policy, with the codec's or the aggregator's reason.
    TopicReader keep_dlq(broker.bootstrap(), "codecs-keep-dead-letter", 2);
    REQUIRE(keep_dlq.read_until([](const auto& r) { return r.size() >= 2; }, 20s));
    std::map<std::string, std::string> refusals;  // key -> the codec's reason
    for (const auto& r : keep_dlq.records()) refusals[r.key.value_or("")] = r.header("mephisto.error");
    CHECK(refusals["s3"].find("not valid msgpack") != std::string::npos);
    CHECK(refusals["s4"].find("nested deeper than 512 levels") != std::string::npos);
    TopicReader peak_dlq(broker.bootstrap(), "codecs-peak-dead-letter", 2);
    REQUIRE(peak_dlq.read_until([](const auto& r) { return r.size() >= 1; }, 20s));
    CHECK(peak_dlq.records().front().headers.at("mephisto.error").find("max takes an int64") != std::string::npos);
    TopicReader stats_dlq(broker.bootstrap(), "codecs-summarize-dead-letter", 2);
    REQUIRE(stats_dlq.read_until([](const auto& r) { return r.size() >= 1; }, 20s));
    CHECK(stats_dlq.records().front().headers.at("mephisto.error").find("summary takes a JSON number") !=
          std::string::npos);
    CHECK(host->stop(SIGTERM, 30s) == 0);

    // The table commands render values through the table's codec.
    std::string out;
    CHECK(run_cli({"table", "get", yaml.string(), "latest", "s1"}, dir, out) == 0);
    CHECK(json::parse(out) == json({{"t", 20.5}, {"unit", "C"}}));
    CHECK(run_cli({"table", "get", yaml.string(), "latest", "s3"}, dir, out) == 3);
    CHECK(run_cli({"table", "get", yaml.string(), "peaks", "s1"}, dir, out) == 0);
    CHECK(out == "9\n");
    CHECK(run_cli({"table", "get", yaml.string(), "peaks", "s2"}, dir, out) == 0);
    CHECK(out == "-4\n");
    CHECK(run_cli({"table", "get", yaml.string(), "stats", "s1"}, dir, out) == 0);
    const json summary = json::parse(out);
    CHECK(summary["count"] == 3);
    CHECK(summary["max"] == 5.0);
    CHECK(summary["mean"] == 3.0);
    CHECK(run_cli({"table", "dump", yaml.string(), "latest"}, dir, out) == 0);
    CHECK(out.find(R"("key":"s2","partition":)") != std::string::npos);
    CHECK(out.find(R"("value":[1,2,3])") != std::string::npos);
    CHECK(run_cli({"tables", yaml.string()}, dir, out) == 0);
    CHECK(out.find("latest  rocksdb, codec_msgpack.msgpack values") != std::string::npos);

    // The changelog carries the encoded values: one record per key per commit, the last one the maximum.
    TopicReader changelog(broker.bootstrap(), "codecs-peaks-changelog", 2);
    REQUIRE(changelog.read_to_end(20s));
    std::map<std::string, int64_t> last;
    for (const auto& r : changelog.records()) last[*r.key] = mephisto::decode_int64(*r.value);
    CHECK(last == std::map<std::string, int64_t>{{"s1", 9}, {"s2", -4}});
}

TEST_CASE("codec and aggregator references are checked against the plugin, with file, line and column") {
    TempDir dir;
    const auto plugins = plugin_folder(dir);
    std::string out;
    auto yaml = dir.write("p.yaml", pipeline(plugins, dir.path() / "state", "yaml"));
    CHECK(run_cli({"validate", yaml.string()}, dir, out) == 1);
    CHECK(out.find("p.yaml:11:19: plugin codec_msgpack has no codec 'yaml' (it provides: msgpack, cbor)") !=
          std::string::npos);

    CHECK(run_cli({"plugin", "inspect", (plugins / "aggregate_stats.so").string()}, dir, out) == 0);
    CHECK(out.find("aggregators 3") != std::string::npos);
    CHECK(out.find("  max — the largest int64 seen  (aggregate: {plugin: aggregate_stats, name: max})") !=
          std::string::npos);
    CHECK(run_cli({"plugin", "inspect", (plugins / "codec_msgpack.so").string()}, dir, out) == 0);
    CHECK(out.find("agents  0") != std::string::npos);
    CHECK(out.find("  cbor — CBOR (RFC 8949), shown as JSON") != std::string::npos);
}

TEST_CASE("group_by a plugin's key function routes each key to its table shard") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", "app: {id: keyfn}\nplugins: {dir: " + test_plugin_dir().string() + "}\nstate_dir: " +
                                        (dir.path() / "state").string() + "\n" + kFastGroupYaml +
                                        "topics: {words: {partitions: 4}}\n"
                                        "tables: {counts: {value: int64}}\n"
                                        "agents:\n  counter:\n    plugin: test_agents\n    agent: count\n"
                                        "    from: words\n    tables: [counts]\n"
                                        "    group_by: {plugin: test_agents, function: by_value}\n"
                                        "    on_error: {retry: 0, then: dead_letter}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    // Keyless words land on any partition; the key function brings each word to one shard, so counts are exact.
    std::vector<Message> words;
    for (int round = 0; round < 5; ++round)
        for (const char* w : {"alpha", "beta", "gamma", "delta", "alpha"}) words.push_back({std::nullopt, w, {}, round % 4});
    words.push_back({std::nullopt, "", {}, 0});  // refused by the key function: dead-lettered
    produce(broker.bootstrap(), "words", words);
    REQUIRE(await_caught_up(broker.bootstrap(), "keyfn", "words", 4, 60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "keyfn", "keyfn-counter-by_value-repartition", 4, 60s));
    TopicReader dlq(broker.bootstrap(), "keyfn-counter-dead-letter", 4);
    REQUIRE(dlq.read_until([](const auto& r) { return !r.empty(); }, 20s));
    CHECK(dlq.records().front().headers.at("mephisto.error").find("an empty value has no key") != std::string::npos);
    CHECK(host->stop(SIGTERM, 30s) == 0);

    TopicReader changelog(broker.bootstrap(), "keyfn-counts-changelog", 4);
    REQUIRE(changelog.read_to_end(20s));
    std::map<std::string, std::set<int32_t>> partitions;
    std::map<std::string, int64_t> last;
    for (const auto& r : changelog.records()) {
        partitions[*r.key].insert(r.partition);
        last[*r.key] = std::max(last[*r.key], mephisto::decode_int64(*r.value));
    }
    CHECK(last == std::map<std::string, int64_t>{{"alpha", 10}, {"beta", 5}, {"delta", 5}, {"gamma", 5}});
    for (const auto& [word, where] : partitions) CHECK_MESSAGE(where.size() == 1, word);  // one shard per word
}
