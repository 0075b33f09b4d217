// echo (Faust's stream.echo): every event an agent reads is also copied, as it is, to the echo topics, once,
// whether the agent then forwards it, drops it, or retries it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include "harness.hpp"

using namespace mephisto::test;

TEST_CASE("echo copies every event once, also the ones the agent drops or retries") {
    Broker broker;
    for (const char* t : {"in", "out", "audit"}) broker.create_topic(t, 2);
    TempDir dir;
    auto yaml = dir.write("p.yaml", "app: {id: echoes}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" +
                                        kFastGroupYaml +
                                        "topics: {in: {partitions: 2}, out: {partitions: 2}, audit: {partitions: 2}}\n"
                                        "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in, sinks: [out],\n"
                                        "         echo: audit, params: {drop_on: drop, retry_on: again},\n"
                                        "         on_error: {retry: 2, backoff: 10ms, then: skip}}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    std::vector<Message> messages;
    for (int i = 0; i < 30; ++i) {
        const std::string v = i % 10 == 3 ? "drop-" + std::to_string(i) : i % 10 == 7 ? "again-" + std::to_string(i) : "v-" + std::to_string(i);
        messages.push_back({"k" + std::to_string(i % 5), v, {{"origin", "test"}}, -1});
    }
    produce(broker.bootstrap(), "in", messages);
    REQUIRE(await_caught_up(broker.bootstrap(), "echoes", "in", 2, 30s));

    TopicReader audit(broker.bootstrap(), "audit", 2);
    REQUIRE(audit.read_to_end(30s));
    const auto copies = audit.value_counts();
    CHECK(copies.size() == messages.size());
    for (const auto& m : messages) {
        const auto it = copies.find(*m.value);
        CHECK_MESSAGE((it != copies.end() && it->second == 1), *m.value);
    }
    for (const auto& r : audit.records()) CHECK(r.headers.count("origin") == 1);  // copied as it is
    TopicReader out(broker.bootstrap(), "out", 2);
    REQUIRE(out.read_to_end(30s));
    const auto forwarded = out.value_counts();
    CHECK(forwarded.size() == 24);  // not the 3 dropped, nor the 3 skipped after their retries
    for (const auto& [value, n] : forwarded) CHECK(value.rfind("v-", 0) == 0);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
