// Backpressure across the agents of one pipeline (RELIABILITY 33 with isolation): slow lanes fill the pipeline's
// dispatch budget (engine/dispatch_budget.hpp) without any of their partitions reaching its own pause mark, and the
// consumer must still get another agent's events through: the partition holding the most is paused once the
// budget stayed full, until the slow ones no longer hold it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include "harness.hpp"
#include "pipeline_builder.hpp"

using namespace mephisto::test;

TEST_CASE("slow lanes holding the whole dispatch budget do not starve another agent of the pipeline") {
    Broker broker;
    for (const char* t : {"slow_in", "slow_out"}) broker.create_topic(t, 3);
    for (const char* t : {"fast_in", "fast_out"}) broker.create_topic(t, 1);
    // 19,000 slow events in each of 3 partitions: under a partition's own mark (20,000), over the budget (40,000)
    // together, and 17,000 of them wait in librdkafka's queue ahead of the fast events. The slow agent takes 50 ms an
    // event: it works off about 60 a second, so without the budget's relief the fast events would wait minutes.
    std::vector<Message> slow;
    for (int p = 0; p < 3; ++p)
        for (int i = 0; i < 19'000; ++i) {
            Message m;
            m.value = "slow-" + std::to_string(p) + "-" + std::to_string(i);
            m.partition = p;
            slow.push_back(std::move(m));
        }
    produce(broker.bootstrap(), "slow_in", slow);
    TempDir dir;
    const auto yaml = dir.write("p.yaml", PipelineBuilder("budget")
                                              .line("workers: 4")  // three for the slow lanes, one free
                                              .topic("slow_in", 3)
                                              .topic("slow_out", 3)
                                              .topic("fast_in", 1)
                                              .topic("fast_out", 1)
                                              .agent("slow", "{plugin: test_agents, agent: forward, from: slow_in, "
                                                             "sinks: [slow_out], params: {delay_ms: '50'}}")
                                              .agent("fast", "{plugin: test_agents, agent: forward, from: fast_in, "
                                                             "sinks: [fast_out]}")
                                              .str());
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    REQUIRE(await([&] { return agent_processed(admin, "slow") > 0; }, 60s));
    produce_sequence(broker.bootstrap(), "fast_in", 0, 2'000, 16);
    CHECK(await([&] { return agent_processed(admin, "fast") == 2'000; }, 60s));
    // Not vacuous: the slow agent is far from done, so its events still hold the budget (or wait paused).
    CHECK(agent_processed(admin, "slow") < 20'000);
    CHECK(host->stop(SIGTERM, 60s) == 0);
}
