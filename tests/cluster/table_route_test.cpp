// Tables queried from any host (Faust's table_route, Kafka Streams' interactive queries): GET /tables/NAME/KEY on
// a host that does not hold the key is forwarded to the one that does, found through the cluster view, or
// redirected there with ?redirect=1; `mephisto table get --admin` asks a running cluster. While a rebalance moves
// partitions the answer is 503 with Retry-After, never a wrong value (RELIABILITY 37). With standby replicas,
// ?stale=ok reads the asked host's own standby, says so and its lag, and keeps answering while the owner is down.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

constexpr int kPartitions = 4;  // the repartition topic's, as the embedded broker auto-creates it
constexpr int kKeys = 40;
constexpr int kRepeats = 10;  // each key's count

std::string key(int i) { return "k" + std::to_string(i); }

// Counts per word (test_agents' count counts values), each word re-keyed by itself (the by_value key function)
// through the repartition topic by the host's producer (murmur2): the table's partition of a word is the one the
// producer's partitioner gives.
std::string pipeline(int standbys) {
    return pipeline_yaml("routed", "standby_replicas: " + std::to_string(standbys) + "\n"
                                   "topics:\n  words: {partitions: 4}\n"
                                   "tables: {counts: {value: int64}}\n"
                                   "agents:\n  counter:\n    plugin: test_agents\n    agent: count\n    from: words\n"
                                   "    tables: [counts]\n    group_by: {plugin: test_agents, function: by_value}\n");
}

// Each word kRepeats times, on whatever partition librdkafka's default partitioner picks.
std::vector<Message> words() {
    std::vector<Message> out;
    for (int round = 0; round < kRepeats; ++round)
        for (int i = 0; i < kKeys; ++i) {
            Message m;
            m.value = key(i);
            out.push_back(m);
        }
    return out;
}

struct Routed : HostFixture {
    std::map<std::string, std::unique_ptr<HostProcess>> hosts;
    std::map<std::string, std::string> admin;
    std::filesystem::path yaml;

    explicit Routed(int standbys = 0) {
        broker.create_topic("words", kPartitions);
        broker.create_topic("routed-__cluster", 1);
        yaml = dir.write("p.yaml", pipeline(standbys));
    }
    void start(const std::string& id) {
        hosts[id] = start_host(yaml, broker.bootstrap(), dir.path() / (id + ".log"),
                               {"--host-id", id, "--state-dir", (dir.path() / id).string()}, false);
        admin[id] = admin_address(*hosts[id]);
    }
    // alpha and beta count the words. Both joined before anything is counted: a rebalance while counting would
    // count some words again (at least once: the embedded broker refuses the revoke's commit), and the expected
    // counts would not be exact.
    void count_on_two_hosts() {
        start("alpha");
        start("beta");
        REQUIRE(await([&] { return !owners("alpha", 2).empty(); }, 60s));
        produce(broker.bootstrap(), "words", words());
        REQUIRE(await_caught_up(broker.bootstrap(), "routed", "words", kPartitions, 60s));
        REQUIRE(await_caught_up(broker.bootstrap(), "routed", "routed-counter-by_value-repartition", kPartitions, 60s));
    }
    // Who holds each partition of the table, as host `id` sees the cluster; empty when some partition has no
    // single holder, or a holder is recovering.
    std::map<int, std::string> owners(const std::string& id, size_t hosts_expected) {
        const HttpReply r = http_get(admin.at(id), "/cluster");
        if (r.status != 200) return {};
        const json v = json::parse(r.body, nullptr, false);
        if (v["hosts"].size() != hosts_expected) return {};
        std::map<int, std::string> out;
        for (const auto& h : v["hosts"]) {
            for (const auto& a : h["pipelines"][0]["active"])
                if (a["recovering"] == true) return {};
            for (const auto& t : h["pipelines"][0]["tables"]) {
                const int p = t["partition"];
                if (out.count(p)) return {};
                out[p] = h["host"];
            }
        }
        return out.size() == kPartitions ? out : std::map<int, std::string>{};
    }
};

// A header of the reply (names lower-cased), empty when absent.
std::string header(const HttpReply& reply, const std::string& name) {
    auto it = reply.headers.find(name);
    return it == reply.headers.end() ? std::string() : it->second;
}

int partition_of(const std::string& k) {
    return rd_kafka_msg_partitioner_murmur2(nullptr, k.data(), k.size(), kPartitions, nullptr, nullptr);
}

}  // namespace

TEST_CASE("a table key read on any host answers the owner's value, forwarded or redirected there") {
    Routed r;
    r.count_on_two_hosts();
    std::map<int, std::string> owners;
    REQUIRE(await([&] { return !(owners = r.owners("alpha", 2)).empty() && r.owners("beta", 2) == owners; }, 60s));
    REQUIRE(std::set<std::string>{owners[0], owners[1], owners[2], owners[3]} == std::set<std::string>{"alpha", "beta"});

    int forwarded = 0;
    for (const std::string asked : {"alpha", "beta"})
        for (int i = 0; i < kKeys; ++i) {
            const HttpReply reply = http_get(r.admin.at(asked), "/tables/counts/" + key(i));
            REQUIRE_MESSAGE(reply.status == 200, asked << " " << key(i) << ": " << reply.body);
            const json body = json::parse(reply.body);
            CHECK(body["value"] == kRepeats);
            CHECK(body["partition"] == partition_of(key(i)));  // the producer's partitioner, computed here too
            const std::string owner = owners.at(partition_of(key(i)));
            CHECK(header(reply, "mephisto-served-by") == owner);
            if (owner != asked) {
                ++forwarded;
                CHECK(header(reply, "mephisto-forwarded-by") == asked);
            }
        }
    CHECK(forwarded > 0);

    // ?redirect=1: where to ask instead.
    int k = 0;
    while (owners.at(partition_of(key(k))) == "alpha") ++k;
    const HttpReply redirect = http_get(r.admin.at("alpha"), "/tables/counts/" + key(k) + "?redirect=1");
    CHECK(redirect.status == 307);
    CHECK(header(redirect, "location") == "http://" + r.admin.at("beta") + "/tables/counts/" + key(k) + "?forwarded=1");
    // A key nobody has: 404 from its owner, whichever host was asked.
    for (const std::string asked : {"alpha", "beta"}) {
        const HttpReply missing = http_get(r.admin.at(asked), "/tables/counts/never-counted");
        CHECK(missing.status == 404);
        CHECK(header(missing, "mephisto-served-by") == owners.at(partition_of("never-counted")));
    }
    // The command line asks any host of the running cluster.
    std::string out;
    CHECK(run_cli({"table", "get", "--admin", r.admin.at("alpha"), "counts", key(k)}, r.dir, out) == 0);
    CHECK(out == std::to_string(kRepeats) + "\n");
    CHECK(run_cli({"table", "get", "--admin", r.admin.at("beta"), "counts", "never-counted"}, r.dir, out) == 3);
}

TEST_CASE("while a rebalance moves a table's partitions, a read answers 503 with Retry-After or the right value, never another") {
    Routed r;
    r.count_on_two_hosts();

    r.start("gamma");  // the group rebalances; gamma restores what it is given from the changelog
    int answered = 0, refused = 0;
    auto sweep = [&] {  // every key from every host; true when every answer was the value
        bool all = true;
        for (const auto& [asked, address] : r.admin)
            for (int i = 0; i < kKeys; ++i) {
                const HttpReply reply = http_get(address, "/tables/counts/" + key(i));
                if (reply.status == 503) {
                    CHECK(header(reply, "retry-after") == "1");
                    ++refused;
                    all = false;
                    continue;
                }
                REQUIRE_MESSAGE(reply.status == 200, asked << " " << key(i) << ": " << reply.status << " " << reply.body);
                CHECK(json::parse(reply.body)["value"] == kRepeats);
                ++answered;
            }
        return all;
    };
    REQUIRE(await([&] { return !r.owners("gamma", 3).empty() && sweep(); }, 90s));
    MESSAGE(answered << " reads answered with the value, " << refused << " refused with 503 during the rebalance");
    CHECK(answered >= 3 * kKeys);
    for (auto& [id, host] : r.hosts) CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("?stale=ok answers from the asked host's standby, with its lag, and keeps answering while the owner is down") {
    Routed r(1);
    r.count_on_two_hosts();
    const std::map<int, std::string> owners = r.owners("alpha", 2);
    REQUIRE(owners.size() == kPartitions);
    // Each host keeps a standby of every partition the other owns, caught up once it applied its changelog to the
    // end (its own lag is as of its last fetch: it may not have seen the last records yet).
    const auto ends = end_offsets(r.broker.bootstrap(), "routed-counts-changelog", kPartitions);
    auto standbys_current = [&](const std::string& id) {
        const json status = json::parse(http_get(r.admin.at(id), "/pipelines").body)[0];
        size_t current = 0;
        for (const auto& s : status["standby"]) {
            const int p = s["partition"];
            if (owners.at(p) == id) return false;  // never a standby of its own partition
            current += s["offset"] == ends.at(p) - 1 && s["lag"] == 0 ? 1 : 0;
        }
        size_t others = 0;
        for (const auto& [p, owner] : owners) others += owner != id ? 1 : 0;
        return current == others && status["standby"].size() == others;
    };
    REQUIRE(await([&] { return standbys_current("alpha") && standbys_current("beta"); }, 60s));

    for (const std::string asked : {"alpha", "beta"})
        for (int i = 0; i < kKeys; ++i) {
            const HttpReply reply = http_get(r.admin.at(asked), "/tables/counts/" + key(i) + "?stale=ok");
            REQUIRE_MESSAGE(reply.status == 200, asked << " " << key(i) << ": " << reply.body);
            CHECK(json::parse(reply.body)["value"] == kRepeats);
            // Served here, from the active copy or the standby, never forwarded.
            CHECK(header(reply, "mephisto-served-by") == asked);
            CHECK(header(reply, "mephisto-forwarded-by").empty());
            const bool owned = owners.at(partition_of(key(i))) == asked;
            CHECK(header(reply, "mephisto-replica") == (owned ? "active" : "standby"));
            CHECK(header(reply, "mephisto-lag-records") == "0");
        }
    // A key nobody counted: 404 from the standby too, which says it looked there.
    int k = 0;
    while (owners.at(partition_of(key(k))) == "alpha") ++k;
    CHECK(http_get(r.admin.at("alpha"), "/tables/counts/never-counted-" + std::to_string(k) + "?stale=ok").status == 404);
    // The command line too: the value, and on stderr that a standby gave it.
    std::string out;
    CHECK(run_cli({"table", "get", "--admin", r.admin.at("alpha"), "--stale", "counts", key(k)}, r.dir, out) == 0);
    CHECK(out.find("(from a standby replica, 0 record(s) behind)") != std::string::npos);
    CHECK(out.find(std::to_string(kRepeats) + "\n") != std::string::npos);

    // The owner of some keys dies. Until the group gives its partitions to alpha, a plain read of them cannot be
    // answered (503: a standby is never served as the active copy, RELIABILITY 26), a stale-ok one is, by alpha's
    // standby.
    REQUIRE(r.hosts.at("beta")->stop(SIGKILL, 10s) == 128 + SIGKILL);
    const HttpReply plain = http_get(r.admin.at("alpha"), "/tables/counts/" + key(k));
    const HttpReply stale = http_get(r.admin.at("alpha"), "/tables/counts/" + key(k) + "?stale=ok");
    CHECK(stale.status == 200);
    CHECK(json::parse(stale.body)["value"] == kRepeats);
    if (plain.status == 503) CHECK(header(stale, "mephisto-replica") == "standby");
    else CHECK(plain.status == 200);  // the group was already quicker: alpha owns it now
    CHECK(r.hosts.at("alpha")->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("under a steady load every key read from every host is the owner's value of that moment, and ?stale=ok says its lag") {
    Routed r(1);
    r.count_on_two_hosts();
    const std::map<int, std::string> owners = r.owners("alpha", 2);
    REQUIRE(owners.size() == kPartitions);
    // Each host keeps a standby of every partition the other owns.
    REQUIRE(await([&] {
        for (const std::string id : {"alpha", "beta"}) {
            const json status = json::parse(http_get(r.admin.at(id), "/pipelines").body)[0];
            std::set<int> kept;
            for (const auto& s : status["standby"]) kept.insert(s["partition"].get<int>());
            for (const auto& [p, owner] : owners)
                if ((owner != id) != (kept.count(p) == 1)) return false;
        }
        return true;
    }, 60s));
    // The counts keep growing while the keys are read: a background producer sends the words again and again.
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0};
    std::thread load([&] {
        while (!stop) {
            produce(r.broker.bootstrap(), "words", words());
            ++rounds;
        }
    });
    REQUIRE(await([&] { return rounds >= 2; }, 60s));
    auto count = [&](const std::string& asked, const std::string& path, HttpReply* reply = nullptr) {
        const HttpReply got = http_get(r.admin.at(asked), path);
        if (reply) *reply = got;
        REQUIRE_MESSAGE((got.status == 200 || got.status == 404), asked << " " << path << ": " << got.status << " " << got.body);
        return got.status == 404 ? int64_t{0} : json::parse(got.body)["value"].get<int64_t>();
    };
    int routed = 0, stale_behind = 0;
    for (const std::string asked : {"alpha", "beta"})
        for (int i = 0; i < kKeys; ++i) {
            const std::string owner = owners.at(partition_of(key(i)));
            if (owner == asked) continue;
            const std::string path = "/tables/counts/" + key(i);
            // Read at the owner just before and just after: the routed answer lies between the two.
            const int64_t before = count(owner, path);
            HttpReply reply;
            const int64_t through = count(asked, path, &reply);
            const int64_t after = count(owner, path);
            CHECK(header(reply, "mephisto-served-by") == owner);
            CHECK(before <= through);
            CHECK(through <= after);
            // The asked host's standby: never ahead of the owner, and it says how far behind it was.
            HttpReply stale;
            const int64_t standby = count(asked, path + "?stale=ok", &stale);
            const int64_t latest = count(owner, path);
            CHECK(header(stale, "mephisto-served-by") == asked);
            CHECK(header(stale, "mephisto-replica") == "standby");
            const std::string lag = header(stale, "mephisto-lag-records");
            CHECK((lag == "unknown" || std::all_of(lag.begin(), lag.end(), ::isdigit)));
            CHECK(standby <= latest);
            stale_behind += standby < latest ? 1 : 0;
            ++routed;
        }
    stop = true;
    load.join();
    MESSAGE(routed << " keys read through a host that does not own them during the load; the standby was behind the "
                   "owner for " << stale_behind);
    CHECK(routed >= kKeys);  // every key from the host that does not own it
    CHECK(rounds >= 3);      // the counts moved while they were read
    for (auto& [id, host] : r.hosts) CHECK(host->stop(SIGTERM, 30s) == 0);
}
