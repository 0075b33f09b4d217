// filter (Faust's stream.filter): a plugin's predicate decides, before the agent sees an event, whether it does.
// Rejected events are acknowledged without reaching the agent and counted; an event the predicate cannot decide
// follows the agent's error policy.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;

TEST_CASE("filter: rejected events are acknowledged without reaching the agent, undecidable ones follow the policy") {
    Broker broker;
    for (const char* t : {"in", "out"}) broker.create_topic(t, 2);
    TempDir dir;
    auto yaml = dir.write(
        "p.yaml", "app: {id: filters}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" + kFastGroupYaml +
                      "topics: {in: {partitions: 2}, out: {partitions: 2}}\n"
                      "agents:\n"
                      "  clean: {plugin: test_agents, agent: forward, from: in, sinks: [out],\n"
                      "          filter: {plugin: test_agents, predicate: no_spam},\n"
                      "          on_error: {retry: 0, then: dead_letter}}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    std::vector<Message> messages;
    for (int i = 0; i < 40; ++i) {
        std::string v = i % 4 == 1 ? "spam-" : i == 10 ? "undecidable-" : "ham-";
        messages.push_back({"k" + std::to_string(i % 7), v + std::to_string(i), {}, -1});
    }
    produce(broker.bootstrap(), "in", messages);
    REQUIRE(await_caught_up(broker.bootstrap(), "filters", "in", 2, 30s));  // every event acknowledged

    TopicReader out(broker.bootstrap(), "out", 2);
    REQUIRE(out.read_to_end(30s));
    const auto forwarded = out.value_counts();
    CHECK(forwarded.size() == 29);  // 40 - 10 spam - 1 undecidable
    for (const auto& [value, n] : forwarded) {
        CHECK(value.rfind("ham-", 0) == 0);
        CHECK(n == 1);
    }
    TopicReader dead(broker.bootstrap(), "filters-clean-dead-letter", 2);
    REQUIRE(dead.read_until([](const std::vector<Record>& r) { return !r.empty(); }, 30s));
    CHECK(*dead.records().front().value == "undecidable-10");
    auto agents = nlohmann::json::parse(http_get(admin, "/agents").body);
    REQUIRE(agents.size() == 1);
    CHECK(agents[0]["filtered"] == 10);
    CHECK(agents[0]["processed"] == 29);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
