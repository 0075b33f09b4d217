// concurrency: N instances of an agent per partition. Events of one key always reach the same instance, so
// each key's events are processed, and their outputs produced, in order, while different keys run side by side.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include "harness.hpp"

using namespace mephisto::test;

TEST_CASE("per-key lane order under concurrency 8") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", "app: {id: lanes}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" +
                                        kFastGroupYaml +
                                        "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                                        "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in, sinks: [out],\n"
                                        "         concurrency: 8, params: {delay_ms: '1'}}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    constexpr int kKeys = 40, kPerKey = 40;
    std::vector<Message> messages;
    for (int seq = 0; seq < kPerKey; ++seq)
        for (int k = 0; k < kKeys; ++k)
            messages.push_back({"k" + std::to_string(k), "k" + std::to_string(k) + ":" + std::to_string(seq), {}, -1});
    produce(broker.bootstrap(), "in", messages);
    REQUIRE(await_caught_up(broker.bootstrap(), "lanes", "in", 1, 60s));

    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_to_end(30s));
    std::map<std::string, std::vector<int>> by_key;  // in output order
    for (const auto& r : out.records()) {
        const std::string& v = *r.value;
        by_key[v.substr(0, v.find(':'))].push_back(std::stoi(v.substr(v.find(':') + 1)));
    }
    REQUIRE(by_key.size() == static_cast<size_t>(kKeys));
    for (const auto& [key, seqs] : by_key) {
        CAPTURE(key);
        REQUIRE(seqs.size() == static_cast<size_t>(kPerKey));
        for (int i = 0; i < kPerKey; ++i) CHECK(seqs[static_cast<size_t>(i)] == i);
    }
    // Eight instances on the one partition, and the output is not simply the input order: they ran side by side.
    CHECK(host->count_in_log("[fwd] instance created on partition 0") == 8);
    std::vector<std::string> in_order, out_order;
    for (const auto& m : messages) in_order.push_back(*m.value);
    for (const auto& r : out.records()) out_order.push_back(*r.value);
    CHECK(in_order != out_order);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
