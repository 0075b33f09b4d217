// The word_split example, a plugin in plain C: `split` emits one event per lowercased word.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <optional>
#include <string>
#include <vector>

using mephisto::testing::AgentDriver;

TEST_CASE("word_split: a sentence with punctuation becomes its lowercase words, keyed by the word") {
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}, .from = "sentences"});

    CHECK(split.send("  Hello, World!\tIt's a dog-eat-dog world...  (Really?) 42 times.\n") == MPH_OK);

    const std::vector<std::string> expected = {"hello", "world", "it",    "s",      "a",  "dog",
                                               "eat",   "dog",   "world", "really", "42", "times"};
    CHECK(split.values("words") == expected);
    REQUIRE(split.outputs().size() == expected.size());
    for (const auto& output : split.outputs()) {
        CHECK(output.topic == "words");
        CHECK(output.key == output.value);
        CHECK(output.partition == MPH_PARTITION_ANY);
        CHECK(output.headers.empty());
    }
}

TEST_CASE("word_split: UTF-8 letters stay inside words") {
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}});
    CHECK(split.send("Crème brûlée!") == MPH_OK);
    CHECK(split.values("words") == std::vector<std::string>{"crème", "brûlée"});
}

TEST_CASE("word_split: an empty value, a tombstone and pure punctuation emit nothing") {
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}});
    CHECK(split.send("") == MPH_OK);
    CHECK(split.send(std::nullopt, "key") == MPH_OK);
    CHECK(split.send(" ,.;!? ") == MPH_OK);
    CHECK(split.outputs().empty());
    CHECK(split.last_error().empty());
}

TEST_CASE("word_split: every word goes to every sink") {
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words", "audit"}});
    CHECK(split.send("one two") == MPH_OK);
    CHECK(split.values("words") == std::vector<std::string>{"one", "two"});
    CHECK(split.values("audit") == std::vector<std::string>{"one", "two"});
}

TEST_CASE("word_split: without sinks the verdict is FATAL and the error says how to fix the YAML") {
    AgentDriver split(mephisto_plugin_entry, "split");
    CHECK(split.send("hello") == MPH_FATAL);
    CHECK(split.last_error() == "split: the agent has no sinks; add `sinks: [words]` to its YAML");
}

TEST_CASE("word_split: a full output queue is transient: RETRY") {
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}});
    split.fail_next_outputs(MPH_ERR_FULL);
    CHECK(split.send("hello world") == MPH_RETRY);
    CHECK(split.last_error() == "split: the output queue stayed full");
    CHECK(split.outputs().empty()); // the first emit failed, so the agent stopped before the second

    CHECK(split.send("hello world") == MPH_OK); // the retry of the same event succeeds
    CHECK(split.values("words") == std::vector<std::string>{"hello", "world"});
}

TEST_CASE("word_split: a stateless C agent without create/destroy runs with a NULL instance") {
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}});
    CHECK((split.agent().create == nullptr));
    CHECK((split.agent().destroy == nullptr));
    CHECK(split.running());
    CHECK(std::string(split.plugin().name) == "word_split");
}
