// The cluster view: hosts of one pipeline publish what they hold on its control topic `<app>-__cluster` and
// follow it, so GET /cluster on any host lists every host (its admin URL, the partitions it holds, its last
// heartbeat). A host that stops writes a tombstone; one killed is dropped once silent past the session timeout.
// Records on the control topic that are not a host's own are skipped, never trusted.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "cluster/range_assignment.hpp"
#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

constexpr int kPartitions = 6;

std::string pipeline(const std::string& app) {
    return pipeline_yaml(app, "topics:\n  in: {partitions: 6}\n  out: {partitions: 6}\n"
                              "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n    from: in\n"
                              "    sinks: [out]\n");
}

struct Cluster : HostFixture {
    std::map<std::string, std::unique_ptr<HostProcess>> hosts;
    std::map<std::string, std::string> admin;  // host id -> its admin API "host:port"

    // `provision`: the control topic is created beforehand, with one partition (as an operator provisions a real
    // cluster's); else the first host has the broker auto-create it (the mock gives it several partitions).
    Cluster(const std::string& app, std::initializer_list<const char*> ids, bool provision = false) {
        broker.create_topic("in", kPartitions);
        broker.create_topic("out", kPartitions);
        if (provision) broker.create_topic(app + "-__cluster", 1);
        const auto yaml = dir.write("p.yaml", pipeline(app));
        for (const char* id : ids) {
            hosts[id] = start_host(yaml, broker.bootstrap(), dir.path() / (std::string(id) + ".log"),
                                   {"--host-id", id}, false);
            admin[id] = admin_address(*hosts[id]);
        }
    }
    // GET /cluster on host `id` (a discarded value when it did not answer 200).
    json view(const std::string& id) {
        const HttpReply r = http_get(admin.at(id), "/cluster");
        return r.status == 200 ? json::parse(r.body, nullptr, false) : json(json::value_t::discarded);
    }
    static std::set<std::string> ids(const json& v) {
        std::set<std::string> out;
        if (!v.is_discarded())
            for (const auto& h : v["hosts"]) out.insert(h["host"].get<std::string>());
        return out;
    }
    // The view of host `id` lists exactly `expected`, and between them they hold every partition of `in` once.
    bool settled(const std::string& id, const std::set<std::string>& expected) {
        const json v = view(id);
        if (ids(v) != expected) return false;
        std::multiset<int> held;
        for (const auto& h : v["hosts"])
            for (const auto& p : h["pipelines"])
                for (const auto& a : p["active"])
                    if (a["topic"] == "in") held.insert(a["partition"].get<int>());
        std::multiset<int> every;
        for (int p = 0; p < kPartitions; ++p) every.insert(p);
        return held == every;
    }
};

}  // namespace

TEST_CASE("every host lists every host of the pipeline, with its admin URL and the partitions it holds") {
    Cluster c("viewed", {"alpha", "beta", "gamma"});
    const std::set<std::string> all = {"alpha", "beta", "gamma"};
    for (const auto& [id, host] : c.hosts)
        REQUIRE_MESSAGE(await([&] { return c.settled(id, all); }, 60s), id << "'s view: " << c.view(id).dump());

    for (const auto& [id, host] : c.hosts) {
        // It read the control topic to the end it had when it joined (its record says it knows the whole cluster).
        CHECK_MESSAGE(await([&] { return c.view(id)["pipelines"][0]["caught_up"] == true; }, 10s), c.view(id).dump());
        const json v = c.view(id);
        CHECK(v["host"] == id);
        REQUIRE(v["pipelines"].size() == 1);
        CHECK(v["pipelines"][0]["pipeline"] == "viewed");
        CHECK(v["pipelines"][0]["control_topic"] == "viewed-__cluster");
        for (const auto& h : v["hosts"]) {
            const std::string other = h["host"];
            CHECK(h["admin"] == "http://" + c.admin.at(other));  // where to reach it, as it advertises itself
            CHECK(h["self"] == (other == id));
            CHECK(h["age_ms"].get<int64_t>() < 10'000);  // heartbeats every second
            CHECK_FALSE(h["pipelines"][0]["member"].get<std::string>().empty());  // joined the group
        }
    }
    // The three agree on who holds what (each host's own entry is what it published).
    auto holdings = [](const json& v) {
        std::map<std::string, std::set<int>> out;
        for (const auto& h : v["hosts"])
            for (const auto& a : h["pipelines"][0]["active"])
                if (a["topic"] == "in") out[h["host"]].insert(a["partition"].get<int>());
        return out;
    };
    CHECK(await([&] { return holdings(c.view("alpha")) == holdings(c.view("beta")) &&
                             holdings(c.view("beta")) == holdings(c.view("gamma")); }, 10s));

    // Who holds what is the range assignment of the members' ids, so any host can compute it (and place a
    // partition's standby where the partition goes when its owner leaves).
    const json v = c.view("alpha");
    std::vector<std::string> members;
    std::map<std::string, std::string> host_of;  // member id -> host id
    for (const auto& h : v["hosts"]) {
        members.push_back(h["pipelines"][0]["member"]);
        host_of[members.back()] = h["host"];
    }
    int checked = 0;
    for (const auto& [host, partitions] : holdings(v))
        for (int p : partitions) {
            CHECK(host_of[mephisto::range_owner(members, p, kPartitions)] == host);
            ++checked;
        }
    CHECK(checked == kPartitions);

    std::string out;
    REQUIRE(run_cli({"status", "--cluster", "--admin", c.admin.at("beta")}, c.dir, out) == 0);
    for (const char* id : {"alpha", "beta *", "gamma"}) CHECK_MESSAGE(out.find(id) != std::string::npos, out);
    CHECK(out.find("pipeline viewed: 3 host(s) on viewed-__cluster") != std::string::npos);
    CHECK(out.find("viewed: in[") != std::string::npos);
}

TEST_CASE("a host that stops says so on the control topic, and one killed is dropped once silent past the session timeout") {
    Cluster c("leaving", {"alpha", "beta", "gamma"}, true);
    const std::set<std::string> all = {"alpha", "beta", "gamma"};
    REQUIRE(await([&] { return c.settled("alpha", all); }, 60s));

    REQUIRE(c.hosts["gamma"]->stop(SIGTERM, 30s) == 0);
    // Its last word is a tombstone under its id: the others need not wait for it to go stale.
    TopicReader control(c.broker.bootstrap(), "leaving-__cluster", 1);
    REQUIRE(control.read_until([](const std::vector<Record>& records) {
        for (const auto& r : records)
            if (r.key == "gamma" && !r.value) return true;
        return false;
    }, 30s));
    CHECK(await([&] { return c.ids(c.view("alpha")) == std::set<std::string>{"alpha", "beta"}; }, 30s));

    CHECK(c.hosts["beta"]->stop(SIGKILL, 10s) == 128 + SIGKILL);
    // No tombstone this time: alpha drops beta once its last record is older than the session timeout (4 s) and
    // two heartbeats; by then the group gave alpha every partition.
    REQUIRE(await([&] { return c.settled("alpha", {"alpha"}); }, 60s));
    control.read_for(500ms);
    for (const auto& r : control.records()) CHECK_FALSE((r.key == "beta" && !r.value));
    CHECK(c.hosts["alpha"]->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("records on the control topic that are not a host's own are skipped, and the view is unchanged") {
    Cluster c("forged", {"alpha"}, true);
    REQUIRE(await([&] { return c.settled("alpha", {"alpha"}); }, 60s));
    // An impostor's record claiming to be alpha, garbage, a record without a key, and a well-formed record of a
    // host that last spoke in 1970 (long gone).
    const std::string stale = R"({"host":"zed","pipeline":"forged","admin":"http://127.0.0.1:1","member":"m",)"
                              R"("active":[{"topic":"in","partition":0}],"standby":[],"tables":[],"started_ms":0,"heartbeat_ms":1})";
    auto record = [](std::optional<std::string> key, std::string value) {
        Message m;
        m.key = std::move(key);
        m.value = std::move(value);
        return m;
    };
    produce(c.broker.bootstrap(), "forged-__cluster",
            {record("eve", R"({"host":"alpha","pipeline":"forged","admin":"http://evil","member":"",)"
                           R"("active":[],"standby":[],"tables":[],"started_ms":0,"heartbeat_ms":1})"),
             record("mallory", "not json"), record(std::nullopt, "no key"), record("zed", stale)});
    REQUIRE(c.hosts["alpha"]->await_log("the record of host mallory at offset", 30s));
    CHECK(c.hosts["alpha"]->await_log("names host 'alpha' under the key 'eve'", 30s));
    CHECK(c.hosts["alpha"]->await_log("has no usable key", 30s));
    // zed's record parses but is far past stale: absent. alpha's own entry is still alpha's.
    const json v = c.view("alpha");
    CHECK(c.ids(v) == std::set<std::string>{"alpha"});
    CHECK(v["hosts"][0]["admin"] == "http://" + c.admin.at("alpha"));
    CHECK(http_get(c.admin.at("alpha"), "/health").status == 200);
    CHECK(c.hosts["alpha"]->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("copartitioned topics keep their partitions together across a random sequence of joins and leaves (RELIABILITY 19)") {
    HostFixture f;
    f.broker.create_topic("left", kPartitions);
    f.broker.create_topic("right", kPartitions);
    f.broker.create_topic("joined-__cluster", 1);
    const auto yaml = f.dir.write("p.yaml", pipeline_yaml("joined", "topics:\n  left: {partitions: 6}\n  right: {partitions: 6}\n"
                                                                    "agents:\n  pair:\n    plugin: test_agents\n    agent: forward\n"
                                                                    "    from: [left, right]\n"));
    std::map<std::string, std::unique_ptr<HostProcess>> running;
    std::map<std::string, std::string> admin;
    int started = 0;
    auto start = [&] {
        const std::string id = "h" + std::to_string(started++);
        running[id] = start_host(yaml, f.broker.bootstrap(), f.dir.path() / (id + ".log"), {"--host-id", id}, false);
        admin[id] = admin_address(*running[id]);
    };
    // The view of a running host lists exactly the running ones, which hold every partition of both topics once;
    // returns who holds what of each topic.
    using Holdings = std::map<std::string, std::map<std::string, std::set<int>>>;  // host -> topic -> partitions
    auto settled = [&](Holdings& out) {
        const HttpReply r = http_get(admin.at(running.begin()->first), "/cluster");
        if (r.status != 200) return false;
        const json v = json::parse(r.body, nullptr, false);
        out.clear();
        std::map<std::string, std::multiset<int>> held;
        for (const auto& h : v["hosts"]) {
            if (!running.count(h["host"].get<std::string>())) return false;
            for (const auto& a : h["pipelines"][0]["active"]) {
                out[h["host"]][a["topic"]].insert(a["partition"].get<int>());
                held[a["topic"]].insert(a["partition"].get<int>());
            }
        }
        if (v["hosts"].size() != running.size()) return false;
        for (const char* topic : {"left", "right"})
            if (held[topic].size() != kPartitions || std::set<int>(held[topic].begin(), held[topic].end()).size() != kPartitions)
                return false;
        return true;
    };

    start();
    std::mt19937 random(19);  // fixed: a failure replays the same sequence
    std::string steps;
    for (int step = 0; step < 6; ++step) {
        const bool join = running.size() < 2 || (running.size() < 4 && random() % 2 == 0);
        if (join) {
            start();
            steps += " join";
        } else {
            auto victim = std::next(running.begin(), static_cast<long>(random() % running.size()));
            const bool kill = random() % 2 == 0;
            CHECK(victim->second->stop(kill ? SIGKILL : SIGTERM, 30s) == (kill ? 128 + SIGKILL : 0));
            steps += std::string(kill ? " kill " : " stop ") + victim->first;
            running.erase(victim);
        }
        Holdings holdings;
        REQUIRE_MESSAGE(await([&] { return settled(holdings); }, 60s), "after" << steps);
        for (const auto& [host, topics] : holdings) {
            const auto left = topics.count("left") ? topics.at("left") : std::set<int>{};
            const auto right = topics.count("right") ? topics.at("right") : std::set<int>{};
            CHECK_MESSAGE(left == right, host << " after" << steps);
        }
    }
    for (auto& [id, host] : running) CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a host behind another address advertises the admin URL it is given") {
    HostFixture f;
    f.broker.create_topic("in", kPartitions);
    f.broker.create_topic("out", kPartitions);
    const auto yaml = f.dir.write("p.yaml", pipeline("advertised"));
    auto host = start_host(yaml, f.broker.bootstrap(), f.dir.path() / "host.log",
                           {"--host-id", "nat", "--advertise-admin", "http://192.0.2.7:6066"}, false);
    const std::string admin = admin_address(*host);  // where it really listens
    REQUIRE(await([&] {
        const HttpReply r = http_get(admin, "/cluster");
        const json v = json::parse(r.body, nullptr, false);
        return r.status == 200 && v["hosts"].size() == 1 && v["hosts"][0]["admin"] == "http://192.0.2.7:6066";
    }, 30s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
