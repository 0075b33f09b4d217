// Real network faults (tests/support/network_lab.hpp): two hosts, each in a network namespace of its own linked
// to the broker by a veth pair. A host whose link goes down stops processing its partitions once its session
// times out, the other takes them over, and the host rejoins when the link comes back; a host on a lossy, slow
// link keeps at-least-once. The namespaces and links are removed at the end of each test.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "network_lab.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

constexpr int kPartitions = 4;

struct Faults {
    NetworkLab lab{2};
    Broker broker{1, NetworkLab::kBrokerAddress};
    TempDir dir;
    std::filesystem::path yaml;
    std::map<int, std::unique_ptr<HostProcess>> hosts;
    std::map<int, std::string> admin;

    Faults() {
        broker.create_topic("in", kPartitions);
        broker.create_topic("out", kPartitions);
        yaml = dir.write("p.yaml", pipeline_yaml("net", "topics: {in: {partitions: 4}, out: {partitions: 4}}\n"
                                                        "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in, "
                                                        "sinks: [out]}\n"));
    }
    void start(int i) {
        hosts[i] = std::make_unique<HostProcess>(
            lab.in_ns(i, {mephisto_binary().string(), "run", yaml.string(), "--broker",
                          "kafka://" + broker.bootstrap(), "--admin", lab.address(i) + ":0", "--host-id",
                          "host" + std::to_string(i)}),
            dir.path() / ("host" + std::to_string(i) + ".log"));
        admin[i] = admin_address(*hosts[i]);
    }
    // Both hosts in the group, two partitions each.
    void start_both() {
        start(1);
        start(2);
        REQUIRE(await([&] { return held(1) == 2 && held(2) == 2; }, 60s));
    }
    // The partitions host i holds now, from its admin API (reached over its link); -1 when it does not answer.
    int held(int i) const {
        const HttpReply r = http_get(admin.at(i), "/pipelines");
        if (r.status != 200) return -1;
        return static_cast<int>(json::parse(r.body)[0]["partitions"].size());
    }
    // Every "seq-<n>", n < sent, came out at least once.
    int missing(int sent) const {
        TopicReader out(broker.bootstrap(), "out", kPartitions);
        REQUIRE(out.read_to_end(60s));
        const auto counts = out.value_counts();
        int gone = 0;
        for (int n = 0; n < sent; ++n) gone += counts.count("seq-" + std::to_string(n)) ? 0 : 1;
        return gone;
    }
};

}  // namespace

TEST_CASE("a host cut off from the broker stops processing within its session timeout and rejoins when the link is back") {
    REQUIRE_MESSAGE(NetworkLab::unavailable().empty(),
                    NetworkLab::unavailable() << " (run the other tests with ctest -LE netns)");
    Faults f;
    f.start_both();
    SteadyLoad load(f.broker.bootstrap(), "in", 50, 16);
    REQUIRE(await([&] { return load.sent() >= 1'000; }, 30s));

    f.lab.cut(1);
    // Host 1 hears nothing from the group coordinator: past session.timeout.ms (4 s) it stops its partitions at
    // once (without waiting for a broker it cannot reach), and the group gives them to host 2.
    CHECK(f.hosts[1]->await_log("the group's session timed out", 15s));
    CHECK(f.hosts[1]->await_log("revoked", 5s));
    REQUIRE(await([&] { return f.held(2) == kPartitions; }, 30s));
    const int sent_while_cut = load.sent();
    REQUIRE(await([&] { return load.sent() >= sent_while_cut + 1'000; }, 30s));  // host 2 alone keeps up

    f.lab.restore(1);
    REQUIRE(await([&] { return f.held(1) == 2 && f.held(2) == 2; }, 60s));  // back in the group, with its share
    const int sent = load.stop();
    REQUIRE(await_caught_up(f.broker.bootstrap(), "net", "in", kPartitions, 60s));
    CHECK(f.missing(sent) == 0);
    for (auto& [i, host] : f.hosts) CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a host on a lossy, slow link keeps at-least-once") {
    REQUIRE_MESSAGE(NetworkLab::unavailable().empty(),
                    NetworkLab::unavailable() << " (run the other tests with ctest -LE netns)");
    Faults f;
    f.start_both();
    const std::string fault = f.lab.make_lossy(1);
    MESSAGE("host 1's link: " << fault);
    SteadyLoad load(f.broker.bootstrap(), "in", 50, 16);
    REQUIRE(await([&] { return load.sent() >= 5'000; }, 60s));
    const int sent = load.stop();
    REQUIRE(await_caught_up(f.broker.bootstrap(), "net", "in", kPartitions, 120s));
    CHECK(f.missing(sent) == 0);
    const long dropped = f.lab.dropped(1);
    MESSAGE("the link dropped " << dropped << " packet(s)");
    CHECK(dropped > 0);  // the fault was real
    // Host 1 did its share over the bad link.
    CHECK(agent_processed(f.admin.at(1), "fwd") > 0);
    for (auto& [i, host] : f.hosts) CHECK(host->stop(SIGTERM, 30s) == 0);
}
