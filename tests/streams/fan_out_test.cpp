// Fan-out (RELIABILITY 4): two agents read one topic; an input offset is committed only once both finished it.
// The fast agent is done at once, the slow one takes 200 ms an event: the committed offset must follow the slow one.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>
#include <thread>

#include "harness.hpp"

using namespace mephisto::test;

TEST_CASE("fan-out: the offset commits only after both agents finished (RELIABILITY 4)") {
    Broker broker;
    for (const char* t : {"in", "fast_out", "slow_out"}) broker.create_topic(t, 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", "app: {id: fan}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" +
                                        kFastGroupYaml +
                                        "topics: {in: {partitions: 1}, fast_out: {partitions: 1}, slow_out: {partitions: 1}}\n"
                                        "agents:\n"
                                        "  fast: {plugin: test_agents, agent: forward, from: in, sinks: [fast_out]}\n"
                                        "  slow: {plugin: test_agents, agent: forward, from: in, sinks: [slow_out],\n"
                                        "         params: {delay_ms: '200'}}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    produce_sequence(broker.bootstrap(), "in", 0, 15, 1);
    REQUIRE(await([&] { return agent_processed(admin, "fast") == 15; }, 30s));
    // Read the commit first, then the slow agent's count: the commit can never be ahead of what it finished.
    int checks = 0;
    bool caught_up = false;
    while (!caught_up) {
        const auto committed = committed_offsets(broker.bootstrap(), "fan", "in", 1);
        const int64_t slow = agent_processed(admin, "slow");
        const int64_t next = committed.count(0) ? committed.at(0) : 0;
        CHECK_MESSAGE(next <= slow, "committed up to " << next << " while the slow agent finished " << slow);
        caught_up = next == 15;
        ++checks;
        REQUIRE(checks < 2000);
        std::this_thread::sleep_for(20ms);  // polling interval of the observation, not a synchronisation
    }
    CHECK(checks > 10);  // the slow agent held the commit back for a while
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
