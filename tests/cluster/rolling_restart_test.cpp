// A rolling restart with static membership (RELIABILITY 17, within what librdkafka 2.0.2's mock can show). With
// `static_membership: true` each host's consumer joins as group.instance.id `<app>-<host id>`, the same after a
// restart with the same --host-id; on a Kafka broker the restarted host then gets its partitions back without a
// rebalance. The 2.0.2 mock reads the field but does not keep it (CLUSTER.md), so there each restart still
// rebalances: what this test holds to is that the hosts come back as the same members, every restart costs a
// bounded number of rebalances (no storm), and nothing is lost.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>
#include <set>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

constexpr int kPartitions = 6;

struct Rolling : HostFixture {
    std::map<std::string, std::unique_ptr<HostProcess>> hosts;
    std::map<std::string, std::string> admin;
    std::filesystem::path yaml;
    int started = 0;

    Rolling() {
        broker.create_topic("in", kPartitions);
        broker.create_topic("out", kPartitions);
        broker.create_topic("rr-__cluster", 1);
        yaml = dir.write("p.yaml", pipeline_yaml("rr", "static_membership: true\n"
                                                       "topics: {in: {partitions: 6}, out: {partitions: 6}}\n"
                                                       "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in, "
                                                       "sinks: [out]}\n"));
    }
    void start(const std::string& id) {
        hosts[id] = start_host(yaml, broker.bootstrap(), dir.path() / (id + "-" + std::to_string(started++) + ".log"),
                               {"--host-id", id, "--state-dir", (dir.path() / id).string()}, false);
        admin[id] = admin_address(*hosts[id]);
    }
    json status(const std::string& id) const {
        const HttpReply r = http_get(admin.at(id), "/pipelines");
        return r.status == 200 ? json::parse(r.body)[0] : json();
    }
    // Who holds each partition, when all three hosts are in the view, each partition on one of them and none
    // recovering; empty otherwise.
    std::map<int, std::string> owners() const {
        const HttpReply r = http_get(admin.at("alpha"), "/cluster");
        if (r.status != 200) return {};
        const json view = json::parse(r.body);
        if (view["hosts"].size() != 3) return {};
        std::map<int, std::string> out;
        for (const auto& h : view["hosts"])
            for (const auto& p : h["pipelines"])
                for (const auto& a : p["active"]) {
                    if (a["recovering"] == true || out.count(a["partition"].get<int>())) return {};
                    out[a["partition"].get<int>()] = h["host"];
                }
        return out.size() == kPartitions ? out : std::map<int, std::string>{};
    }
};

}  // namespace

TEST_CASE("a rolling restart with static membership: the same members come back, no rebalance storm, nothing lost (RELIABILITY 17)") {
    Rolling r;
    const std::vector<std::string> ids = {"alpha", "beta", "gamma"};
    for (const auto& id : ids) r.start(id);
    REQUIRE(await([&] { return !r.owners().empty(); }, 90s));
    for (const auto& id : ids) CHECK(r.status(id)["group_instance_id"] == "rr-" + id);
    const auto home = r.owners();

    SteadyLoad load(r.broker.bootstrap(), "in", 100, 32);
    REQUIRE(await([&] { return load.sent() >= 2'000; }, 60s));
    std::map<std::string, uint64_t> rebalances_seen;  // by each host, over the restarts of the others
    for (const auto& id : ids) {
        std::map<std::string, uint64_t> before;
        for (const auto& other : ids)
            if (other != id) before[other] = r.status(other)["rebalances"].get<uint64_t>();
        REQUIRE(r.hosts.at(id)->stop(SIGTERM, 30s) == 0);
        r.start(id);
        CHECK(r.status(id)["group_instance_id"] == "rr-" + id);  // the same member as before the restart
        REQUIRE(await([&] { return !r.owners().empty(); }, 90s));
        for (const auto& [other, n] : before) rebalances_seen[other] += r.status(other)["rebalances"].get<uint64_t>() - n;
    }
    const int sent = load.stop();
    REQUIRE(await_caught_up(r.broker.bootstrap(), "rr", "in", kPartitions, 60s));

    // Each restart cost the hosts that kept running at most two rebalances (the mock: one when the restarted
    // member joins under a new member id, one when the old one's session expires), each a revoke and an assign.
    for (const auto& [id, n] : rebalances_seen) {
        MESSAGE(id << " went through " << n / 2 << " rebalance(s) while the other two restarted");
        CHECK(n <= 2 * 2 * 2);
    }
    const auto after = r.owners();
    size_t home_again = 0;
    for (const auto& [p, id] : home) home_again += after.at(p) == id ? 1 : 0;
    // The range assignor orders members by group.instance.id when the broker hands those to the group's leader: on
    // Kafka the same hosts come back to the same partitions. The 2.0.2 mock does not always (some runs 6 of 6,
    // others as few as under member ids, new at every start), so this is reported, not asserted.
    MESSAGE(home_again << " of " << kPartitions << " partitions are back on the host that held them before");

    TopicReader out(r.broker.bootstrap(), "out", kPartitions);
    REQUIRE(out.read_to_end(60s));
    const auto counts = out.value_counts();
    int missing = 0;
    for (int i = 0; i < sent; ++i) missing += counts.count("seq-" + std::to_string(i)) ? 0 : 1;
    CHECK(missing == 0);
    for (const auto& id : ids) CHECK(r.hosts.at(id)->stop(SIGTERM, 30s) == 0);
}
