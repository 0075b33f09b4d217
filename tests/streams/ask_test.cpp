// Agents talking to agents (Faust's agent.ask and agent.cast): a request goes through Kafka to whichever host
// serves the asked agent's partition; the answer comes back on the asking host's reply topic with the
// request's correlation id, and the asking event stays uncommitted until on_reply has run.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

std::filesystem::path write_pipeline(const TempDir& dir, const std::string& app, const std::string& asker_params,
                                     const std::string& adder_params) {
    return dir.write("p.yaml", pipeline_yaml(app,
                                   "topics: {questions: {partitions: 4}, adds: {partitions: 3}, answers: {partitions: 1},\n"
                                   "         sums: {partitions: 1}}\n"
                                   "agents:\n"
                                   "  asking: {plugin: test_agents, agent: asker, from: questions, sinks: [answers],\n"
                                   "           params: {target: adding" + asker_params + "}}\n"
                                   "  adding: {plugin: test_agents, agent: adder, from: adds, sinks: [sums]" +
                                   adder_params + "}\n"));
}

void create_topics(Broker& broker) {
    broker.create_topic("questions", 4);
    broker.create_topic("adds", 3);  // another count than questions: a key's request often leaves its host
    broker.create_topic("answers", 1);
    broker.create_topic("sums", 1);
}

uint64_t agent_stat(const std::string& admin, const std::string& agent, const std::string& stat) {
    for (const auto& a : nlohmann::json::parse(http_get(admin, "/agents").body))
        if (a["agent"] == agent) return a[stat].get<uint64_t>();
    return 0;
}

}  // namespace

TEST_CASE("ask across two hosts: every question gets its answer, whichever host serves the asked partition") {
    Broker broker;
    create_topics(broker);
    TempDir dir;
    auto yaml = write_pipeline(dir, "rpc", "", "");
    auto first = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    const std::string admin_first = admin_address(*first), admin_second = admin_address(*second);
    // Both hosts hold partitions of both topics before the questions go out.
    REQUIRE(await([&] { return first->count_in_log("partition(s): ") >= 2 && second->count_in_log("partition(s): ") >= 1; },
                  30s));

    std::vector<Message> questions;
    for (int i = 0; i < 200; ++i)
        questions.push_back({"k" + std::to_string(i % 23), std::to_string(i) + " " + std::to_string(1000 + i), {}, -1});
    produce(broker.bootstrap(), "questions", questions);

    TopicReader answers(broker.bootstrap(), "answers", 1);
    REQUIRE(answers.read_until([](const std::vector<Record>& r) { return r.size() >= 200; }, 60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "rpc", "questions", 4, 30s));
    answers.read_for(500ms);
    const auto counts = answers.value_counts();
    CHECK(counts.size() == 200);
    for (int i = 0; i < 200; ++i) {
        const std::string expected = std::to_string(i) + " " + std::to_string(1000 + i) + "=" + std::to_string(1000 + 2 * i);
        CHECK_MESSAGE(counts.count(expected) == 1, expected);
    }
    for (const auto& [value, n] : counts) CHECK_MESSAGE(value.rfind("timeout:", 0) != 0, value);
    // Both hosts asked and both answered: the requests crossed between them.
    const uint64_t asked = agent_stat(admin_first, "asking", "asks") + agent_stat(admin_second, "asking", "asks");
    const uint64_t replies = agent_stat(admin_first, "asking", "replies") + agent_stat(admin_second, "asking", "replies");
    CHECK(asked >= 200);
    CHECK(replies >= 200);
    CHECK(agent_stat(admin_first, "adding", "processed") > 0);
    CHECK(agent_stat(admin_second, "adding", "processed") > 0);
    CHECK(agent_stat(admin_first, "asking", "asks") > 0);
    CHECK(agent_stat(admin_second, "asking", "asks") > 0);
    // An asked agent that is cast to (no reply-to) emits instead of answering: nothing of the asks went there.
    TopicReader sums(broker.bootstrap(), "sums", 1);
    sums.read_for(300ms);
    CHECK(sums.records().empty());
    CHECK(second->stop(SIGTERM, 30s) == 0);
    CHECK(first->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("an ask nobody answers holds its event until it times out, then on_reply hears of the timeout") {
    Broker broker;
    create_topics(broker);
    TempDir dir;
    auto yaml = write_pipeline(dir, "silence", ", timeout_ms: 4000", ", params: {silent: \"true\"}");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    std::vector<Message> questions;
    for (int i = 0; i < 5; ++i) questions.push_back({"k" + std::to_string(i), "1 " + std::to_string(i), {}, -1});
    produce(broker.bootstrap(), "questions", questions);

    // Asked, and the adder saw every request without answering: the questions are not committed yet.
    REQUIRE(await([&] { return agent_stat(admin, "asking", "asks") == 5 && agent_stat(admin, "adding", "processed") == 5; }, 30s));
    const auto end = end_offsets(broker.bootstrap(), "questions", 4);
    const auto committed = committed_offsets(broker.bootstrap(), "silence", "questions", 4);
    int64_t ahead = 0;
    for (const auto& [p, e] : end) ahead += e - std::max<int64_t>(0, committed.at(p));
    CHECK(ahead == 5);

    TopicReader answers(broker.bootstrap(), "answers", 1);
    REQUIRE(answers.read_until([](const std::vector<Record>& r) { return r.size() >= 5; }, 30s));
    for (const auto& r : answers.records()) CHECK(r.value->rfind("timeout:", 0) == 0);
    REQUIRE(await_caught_up(broker.bootstrap(), "silence", "questions", 4, 30s));  // released by the timeout
    CHECK(agent_stat(admin, "asking", "ask_timeouts") == 5);
    CHECK(agent_stat(admin, "asking", "replies") == 0);
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("cast sends to the agent's topic without a reply: the agent emits instead of answering") {
    Broker broker;
    create_topics(broker);
    TempDir dir;
    auto yaml = write_pipeline(dir, "casts", ", mode: cast", "");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    std::vector<Message> questions;
    for (int i = 0; i < 20; ++i) questions.push_back({"k" + std::to_string(i), std::to_string(i) + " 1", {}, -1});
    produce(broker.bootstrap(), "questions", questions);
    TopicReader sums(broker.bootstrap(), "sums", 1);
    REQUIRE(sums.read_until([](const std::vector<Record>& r) { return r.size() >= 20; }, 30s));
    const auto counts = sums.value_counts();
    for (int i = 0; i < 20; ++i) CHECK(counts.count(std::to_string(i) + " 1=" + std::to_string(i + 1)) == 1);
    REQUIRE(await_caught_up(broker.bootstrap(), "casts", "questions", 4, 30s));
    TopicReader answers(broker.bootstrap(), "answers", 1);
    answers.read_for(300ms);
    CHECK(answers.records().empty());
    CHECK(agent_stat(admin, "asking", "asks") == 0);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
