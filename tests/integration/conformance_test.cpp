// Conformance of the test driver (sdk/include/mephisto/testing.hpp) with the host: the word_count example's agents,
// compiled into this test for the driver and loaded as build/plugins/word_count.so by a real host on the
// embedded broker, get the same sentences; the words they emit (key, value, order) and the counts in their
// table must be the same. The driver re-implements the host's semantics for plugin authors; this is where it
// would drift.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "conformance_driver.hpp"
#include "harness.hpp"

using namespace mephisto::test;

namespace {

// Sentences in mixed case, with punctuation, UTF-8, an empty one, a tombstone and keys or none.
std::vector<Message> sentences() {
    const std::vector<std::string> vocabulary = {"The", "quick", "BROWN", "fox", "jumps", "Crème", "brûlée", "lazy",
                                                 "Dog", "faust", "Mephisto", "42", "it's"};
    const std::vector<std::string> separators = {" ", ", ", "! ", " -- ", ".\t", "\n"};
    std::vector<Message> out;
    uint32_t state = 20261203;
    auto next = [&state] { return state = state * 1103515245u + 12345u, (state >> 16) & 0x7fff; };
    for (int i = 0; i < 80; ++i) {
        std::string sentence;
        const int words = 1 + static_cast<int>(next() % 10);
        for (int w = 0; w < words; ++w) {
            if (w > 0) sentence += separators[next() % separators.size()];
            sentence += vocabulary[next() % vocabulary.size()];
        }
        out.push_back({i % 4 == 0 ? std::nullopt : std::optional<std::string>("s" + std::to_string(i)), sentence, {}, 0});
    }
    out.push_back({"empty", "", {}, 0});
    out.push_back({"tombstone", std::nullopt, {}, 0});
    out.push_back({std::nullopt, " ,.!? ", {}, 0});
    return out;
}

}  // namespace

TEST_CASE("conformance: word_count's agents emit the same words and count the same in the test driver and in a host") {
    const std::vector<Message> input = sentences();

    // The driver: split, then count what split emitted, in order (conformance_driver.cpp).
    std::vector<conformance::KeyValue> pairs;
    for (const auto& s : input) pairs.emplace_back(s.key, s.value);
    const conformance::WordCountRun driver = conformance::word_count_in_driver(pairs);
    REQUIRE(driver.errors.empty());
    REQUIRE(driver.words.size() > 100);
    const auto& driver_words = driver.words;
    const auto& driver_counts = driver.counts;

    // The host: the same agents from the example's plugin, one partition each so the order is comparable.
    HostFixture f;
    f.broker.create_topic("sentences", 1);
    f.broker.create_topic("words", 1);
    const std::string yaml = pipeline_yaml("conformance",
                                           "topics:\n"
                                           "  sentences: {partitions: 1}\n"
                                           "  words: {partitions: 1}\n"
                                           "tables:\n"
                                           "  word_counts: {value: int64, default: 0}\n"
                                           "agents:\n"
                                           "  split: {plugin: word_count, agent: split, from: sentences, sinks: [words]}\n"
                                           "  count: {plugin: word_count, agent: count, from: words, tables: [word_counts]}\n",
                                           example_plugin_dir());
    auto host = f.start("conformance.yaml", yaml, {"--state-dir", f.state().string()});
    produce(f.broker.bootstrap(), "sentences", input);
    TopicReader words(f.broker.bootstrap(), "words", 1);
    REQUIRE(words.read_until([&](const auto& records) { return records.size() >= driver_words.size(); }, 60s));
    std::string report;
    REQUIRE_MESSAGE(await_caught_up(f.broker.bootstrap(), "conformance", "words", 1, 60s, &report), report);
    CHECK(host->stop(SIGTERM, 30s) == 0);
    words.read_for(200ms);  // nothing more comes

    std::vector<conformance::KeyValue> host_words;
    for (const auto& r : words.records()) host_words.emplace_back(r.key, r.value);
    CHECK(host_words == driver_words);
    CHECK(int64_table_from_changelog(f.broker.bootstrap(), "conformance-word_counts-changelog", 1) == driver_counts);
}
