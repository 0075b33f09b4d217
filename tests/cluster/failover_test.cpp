// Failover of a stateful pipeline: three hosts share a table of 100,000 keys over 8 partitions under steady load,
// and one is killed with SIGKILL. With `standby_replicas: 1` each partition has a standby copy on the host the
// range assignor gives it to when its owner leaves (placed from the cluster view), so the moved partitions resume
// having replayed only what their standbys had not applied (RecoveryRecord: the standby's offset, the changelog's
// end, the records replayed). Without standbys, the same test replays the moved partitions' whole changelogs: the
// reference. Either way the table ends equal to a model the test computes from its input, on every host that
// holds a copy (active or standby), and in the changelog (RELIABILITY 26). And a rebalance in the middle of a
// recovery: it is abandoned and goes on later from what it applied, nothing applied twice (RELIABILITY 18). And a
// scale-out with `warm_up`: the joining host follows the changelogs before it joins, so the partitions it takes
// replay only what their warm replicas lacked, not their whole changelogs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/wall_clock.hpp"
#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

constexpr int kPartitions = 8;
constexpr int kKeys = 100'000;

// Each event's value is put under its key (test_agents' fold): the table holds the latest value of every key, so
// the model is exact even where at-least-once delivers an event twice after the kill.
std::string pipeline(int standbys, const std::string& extra) {
    return pipeline_yaml("fo", extra + "standby_replicas: " + std::to_string(standbys) + "\n"
                               "topics:\n  events: {partitions: 8}\n"
                               "tables: {latest: {}}\n"
                               "agents:\n  keeper:\n    plugin: test_agents\n    agent: fold\n    from: events\n"
                               "    tables: [latest]\n    params: {table: latest, mode: put}\n");
}

// What the cluster view of one host says.
struct View {
    size_t hosts = 0;
    std::map<int, std::string> owner;              // partition -> the host holding it active
    std::map<int, std::set<std::string>> standby;  // partition -> the hosts keeping a standby of it
    std::map<int, int64_t> standby_lag;            // partition -> the largest lag of its standbys (-1: unknown)
    bool recovering = false;
    bool ambiguous = false;  // a partition active on two hosts
};

struct Failover : HostFixture {
    const int standbys;
    std::map<std::string, std::unique_ptr<HostProcess>> hosts;
    std::map<std::string, std::string> admin;
    std::filesystem::path yaml;

    // `extra`: more of the pipeline file.
    explicit Failover(int standbys, const std::string& extra = "") : standbys(standbys) {
        broker.create_topic("events", kPartitions);
        broker.create_topic("fo-latest-changelog", kPartitions);
        broker.create_topic("fo-__cluster", 1);
        yaml = dir.write("p.yaml", pipeline(standbys, extra));
    }
    std::filesystem::path state(const std::string& id) const { return dir.path() / id; }
    void start(const std::string& id) {
        hosts[id] = start_host(yaml, broker.bootstrap(), dir.path() / (id + ".log"),
                               {"--host-id", id, "--state-dir", state(id).string()}, false);
        admin[id] = admin_address(*hosts[id]);
    }
    View view(const std::string& id) const {
        View v;
        const HttpReply r = http_get(admin.at(id), "/cluster");
        if (r.status != 200) return v;
        const json body = json::parse(r.body, nullptr, false);
        if (body.is_discarded()) return v;
        v.hosts = body["hosts"].size();
        for (const auto& h : body["hosts"]) {
            const std::string host = h["host"];
            for (const auto& p : h["pipelines"]) {
                for (const auto& a : p["active"]) {
                    const int partition = a["partition"];
                    if (a["recovering"] == true) v.recovering = true;
                    if (v.owner.count(partition)) v.ambiguous = true;
                    v.owner[partition] = host;
                }
                for (const auto& s : p["standby"]) {
                    const int partition = s["partition"];
                    v.standby[partition].insert(host);
                    const int64_t lag = s["lag"].is_number() ? s["lag"].get<int64_t>() : -1;
                    auto [it, fresh] = v.standby_lag.emplace(partition, lag);
                    if (!fresh) it->second = (lag < 0 || it->second < 0) ? -1 : std::max(it->second, lag);
                }
            }
        }
        return v;
    }
    // Every partition active on one live host, none recovering, and (with standbys) each with a standby on
    // another live host that is `lag_at_most` behind at most.
    bool settled(const std::string& asked, size_t live, int64_t lag_at_most = -1) const {
        const View v = view(asked);
        if (v.hosts != live || v.owner.size() != kPartitions || v.recovering || v.ambiguous) return false;
        for (const auto& [p, host] : v.owner)
            if (!admin.count(host) || !hosts.at(host)) return false;
        if (standbys == 0) return v.standby.empty();
        for (int p = 0; p < kPartitions; ++p) {
            auto it = v.standby.find(p);
            if (it == v.standby.end() || it->second.size() != static_cast<size_t>(standbys) || it->second.count(v.owner.at(p)))
                return false;
            if (lag_at_most >= 0 && (v.standby_lag.at(p) < 0 || v.standby_lag.at(p) > lag_at_most)) return false;
        }
        return true;
    }
    // Every standby on the live hosts applied its changelog partition to the end it has now (a standby's own lag
    // is as of its last fetch).
    bool standbys_at_end() const {
        const auto ends = end_offsets(broker.bootstrap(), "fo-latest-changelog", kPartitions);
        for (const auto& [id, address] : admin) {
            const HttpReply r = http_get(address, "/pipelines");
            if (r.status != 200) return false;
            const json status = json::parse(r.body);  // (a range-for over a temporary's member would dangle)
            for (const auto& s : status[0]["standby"])
                if (s["offset"] != ends.at(s["partition"].get<int>()) - 1) return false;
        }
        return true;
    }
    json pipeline_status(const std::string& id) const {
        const HttpReply r = http_get(admin.at(id), "/pipelines");
        REQUIRE(r.status == 200);
        return json::parse(r.body)[0];
    }
    // The table as a stopped host's store holds it: partition -> key -> value.
    std::map<int, std::map<std::string, std::string>> dump(const std::string& id) const {
        std::string out;
        REQUIRE(run_cli({"table", "dump", yaml.string(), "latest", "--state-dir", state(id).string()}, dir, out) == 0);
        std::map<int, std::map<std::string, std::string>> table;
        std::istringstream lines(out);
        for (std::string line; std::getline(lines, line);) {
            const json entry = json::parse(line, nullptr, false);
            if (entry.is_discarded() || !entry.contains("partition")) continue;  // a log line
            table[entry["partition"].get<int>()][entry["key"].get<std::string>()] = entry["value"].get<std::string>();
        }
        return table;
    }
};

// The latest value of every key, as the test produced them: the fill ("seq-<i>" under "k<i>"), then the steady
// load's `sent` values ("seq-<j>" under "k<j % kKeys>", in order).
std::map<std::string, std::string> model(int sent) {
    std::map<std::string, std::string> m;
    for (int i = 0; i < kKeys; ++i) m["k" + std::to_string(i)] = "seq-" + std::to_string(i);
    for (int j = 0; j < sent; ++j) m["k" + std::to_string(j % kKeys)] = "seq-" + std::to_string(j);
    return m;
}

// What the moved partitions replayed on the hosts they moved to.
struct Replay {
    int64_t records = 0;         // over the moved partitions
    int64_t changelog = 0;       // their changelogs' length when they were recovered
    int with_standby = 0;        // recoveries a standby took over
    int recoveries = 0;          // moved partitions recovered
};

void run_failover(int standbys) {
    Failover f(standbys);
    const std::vector<std::string> ids = {"alpha", "beta", "gamma"};
    for (const auto& id : ids) f.start(id);
    // The group settled before anything is produced (a rebalance while the table fills would only slow it).
    REQUIRE(await([&] { return f.settled("alpha", 3); }, 90s));

    produce_sequence(f.broker.bootstrap(), "events", 0, kKeys, kKeys);
    REQUIRE(await_caught_up(f.broker.bootstrap(), "fo", "events", kPartitions, 120s));
    if (standbys > 0)  // the standbys follow the changelogs as the owners write them
        REQUIRE(await([&] { return f.settled("alpha", 3, 0) && f.standbys_at_end(); }, 60s));

    SteadyLoad load(f.broker.bootstrap(), "events", 200, kKeys);
    REQUIRE(await([&] { return load.sent() >= 4'000; }, 60s));
    const View before = f.view("alpha");
    const std::string victim = before.owner.at(0);
    std::set<int> moved;
    for (const auto& [p, host] : before.owner)
        if (host == victim) moved.insert(p);
    std::vector<std::string> survivors;
    for (const auto& id : ids)
        if (id != victim) survivors.push_back(id);
    const int64_t killed_ms = mephisto::wall_ms();
    REQUIRE(f.hosts.at(victim)->stop(SIGKILL, 10s) == 128 + SIGKILL);
    f.hosts[victim].reset();
    f.admin.erase(victim);
    MESSAGE("killed " << victim << ", which held partitions " << moved.size() << " of " << kPartitions);

    // The survivors take every partition over (after the session timeout), and keep counting.
    REQUIRE(await([&] { return f.settled(survivors[0], 2); }, 90s));
    const int sent_at_takeover = load.sent();
    REQUIRE(await([&] { return load.sent() >= sent_at_takeover + 4'000; }, 60s));
    const int sent = load.stop();
    REQUIRE(await_caught_up(f.broker.bootstrap(), "fo", "events", kPartitions, 120s));

    // What the moved partitions replayed where they went. A partition can be recovered more than once since the
    // kill: the embedded broker rebalances again when the dead member's session expires after a first rebalance,
    // and a partition that stays put then recovers again from its own store (nothing to replay). The first
    // recovery of each is where it moved; every one counts in what was replayed.
    Replay replay;
    std::map<int, std::vector<json>> recoveries;  // partition -> its recoveries since the kill
    for (const auto& id : survivors) {
        const json status = f.pipeline_status(id);
        for (const auto& r : status["recoveries"]) {
            if (r["started_ms"].get<int64_t>() < killed_ms || !moved.count(r["partition"].get<int>())) continue;
            const int64_t replayed = r["replayed"], from = r["from"], end = r["end"];
            const bool took_standby = r["standby_offset"].is_number();
            MESSAGE(id << " recovered latest[" << r["partition"] << "]: replayed " << replayed << " of a changelog of "
                       << end << " record(s) from offset " << from << " in " << r["duration_ms"] << " ms"
                       << (took_standby ? ", from its standby at offset " + std::to_string(r["standby_offset"].get<int64_t>())
                                        : std::string(", with no standby")));
            // Nothing was applied twice: exactly the records after what the store held (a recovery a rebalance
            // abandoned, as one can be when the host is slow, read less).
            if (r["completed"] == true) CHECK(replayed == end - from);
            else CHECK(replayed <= end - from);
            if (took_standby) CHECK(from == r["standby_offset"].get<int64_t>() + 1);
            replay.records += replayed;
            recoveries[r["partition"].get<int>()].push_back(r);
        }
    }
    for (auto& [p, list] : recoveries) {
        std::sort(list.begin(), list.end(),
                  [](const json& a, const json& b) { return a["started_ms"].get<int64_t>() < b["started_ms"].get<int64_t>(); });
        replay.changelog += list.front()["end"].get<int64_t>();
        replay.with_standby += list.front()["standby_offset"].is_number() ? 1 : 0;
        ++replay.recoveries;
    }
    MESSAGE("moved partitions replayed " << replay.records << " changelog record(s) of " << replay.changelog
                                         << " (standby_replicas: " << standbys << ")");
    CHECK(replay.recoveries == static_cast<int>(moved.size()));
    CHECK(replay.changelog >= kKeys * static_cast<int64_t>(moved.size()) / kPartitions / 2);
    if (standbys > 0) {
        // Every moved partition went where its standby was, and replayed at most what that standby lacked: with
        // no one writing the partition between the kill and the take-over, next to nothing.
        CHECK(replay.with_standby == replay.recoveries);
        CHECK(replay.records * 100 <= replay.changelog);
    } else {
        // The reference: no local state where they went, so their whole changelogs (again, if moved twice).
        CHECK(replay.with_standby == 0);
        CHECK(replay.records >= replay.changelog);
    }

    // The table equals the model: in the changelog, on every host's store for what it holds active, and (with
    // standbys, once they caught up again on the survivors) for what it keeps as a standby.
    const auto expected = model(sent);
    CHECK(int64_t(expected.size()) == kKeys);
    {
        TopicReader changelog(f.broker.bootstrap(), "fo-latest-changelog", kPartitions);
        REQUIRE(changelog.read_to_end(60s));
        std::map<std::string, std::string> latest;
        for (const auto& rec : changelog.records())
            if (rec.key) latest[*rec.key] = rec.value.value_or("");
        CHECK(latest == expected);
    }
    if (standbys > 0) REQUIRE(await([&] { return f.settled(survivors[0], 2, 0) && f.standbys_at_end(); }, 60s));
    const View last = f.view(survivors[0]);
    for (const auto& id : survivors) REQUIRE(f.hosts.at(id)->stop(SIGTERM, 30s) == 0);
    size_t active_keys = 0, standby_keys = 0;
    for (const auto& id : survivors) {
        const auto table = f.dump(id);
        for (int p = 0; p < kPartitions; ++p) {
            const bool active = last.owner.at(p) == id;
            const bool standby = last.standby.count(p) && last.standby.at(p).count(id);
            if (!active && !standby) continue;
            auto it = table.find(p);
            REQUIRE_MESSAGE(it != table.end(), id << " has nothing of partition " << p);
            size_t wrong = 0;
            for (const auto& [key, value] : it->second) {
                auto e = expected.find(key);
                if (e == expected.end() || e->second != value) ++wrong;
            }
            CHECK_MESSAGE(wrong == 0, id << " partition " << p << (active ? " (active)" : " (standby)"));
            (active ? active_keys : standby_keys) += it->second.size();
        }
    }
    CHECK(active_keys == static_cast<size_t>(kKeys));  // every key once among the active partitions
    if (standbys > 0) CHECK(standby_keys == static_cast<size_t>(kKeys));
}

}  // namespace

TEST_CASE("kill -9 of one of three hosts: the moved partitions resume from their standbys, replaying only their lag") {
    run_failover(1);
}

TEST_CASE("kill -9 of one of three hosts without standbys replays the moved partitions' whole changelogs (reference)") {
    run_failover(0);
}

TEST_CASE("a rebalance during a recovery abandons it, and the next goes on from what it applied: nothing twice (RELIABILITY 18)") {
    // Small changelog batches, small fetches and a slow broker make the recovery take seconds: long enough for a
    // host to join in the middle.
    Failover f(0, "broker: {bootstrap: \"kafka://127.0.0.1:9\", properties: {max.partition.fetch.bytes: 1024}}\n"
                  "producer: {batch.num.messages: 500}\n");  // (--broker replaces the bootstrap)
    f.start("alpha");
    REQUIRE(await([&] { return f.settled("alpha", 1); }, 60s));
    produce_sequence(f.broker.bootstrap(), "events", 0, kKeys, kKeys);
    REQUIRE(await_caught_up(f.broker.bootstrap(), "fo", "events", kPartitions, 120s));
    REQUIRE(f.hosts.at("alpha")->stop(SIGTERM, 30s) == 0);
    f.hosts["alpha"].reset();
    f.admin.erase("alpha");

    // beta has no state: it recovers every partition from the changelog; gamma joins while it does.
    f.broker.set_rtt(1, 150ms);
    f.start("beta");
    REQUIRE(await([&] { return !f.pipeline_status("beta")["recovery"].empty(); }, 60s));
    f.start("gamma");
    REQUIRE(await([&] { return f.pipeline_status("beta")["recovery"].empty(); }, 60s));
    f.broker.set_rtt(1, 0ms);
    REQUIRE(await([&] { return f.settled("beta", 2); }, 120s));

    // Each partition's recoveries on each host, in order: every one starts where the one before on that host
    // stopped (nothing read twice, nothing skipped), and on the partition's owner the last one read its changelog
    // to the end.
    const View last = f.view("beta");
    REQUIRE(last.owner.size() == kPartitions);
    int abandoned = 0;
    for (const std::string id : {"beta", "gamma"}) {
        std::map<int, std::vector<json>> attempts;
        const json status = f.pipeline_status(id);
        for (const auto& r : status["recoveries"]) attempts[r["partition"].get<int>()].push_back(r);
        for (int p = 0; p < kPartitions; ++p) {
            const auto& list = attempts[p];
            int64_t next = 0;
            for (const auto& r : list) {
                MESSAGE(id << " latest[" << p << "]: " << (r["completed"] == true ? "recovered" : "abandoned") << " after "
                           << r["replayed"] << " record(s) from offset " << r["from"] << " (end " << r["end"] << ")");
                CHECK(r["from"] == next);
                next = r["from"].get<int64_t>() + r["replayed"].get<int64_t>();
                abandoned += r["completed"] == true ? 0 : 1;
            }
            if (last.owner.at(p) != id) continue;
            REQUIRE(!list.empty());
            CHECK(list.back()["completed"] == true);
            CHECK(next == list.back()["end"]);
        }
    }
    REQUIRE_MESSAGE(abandoned > 0, "the join did not come during the recovery: nothing tested");

    // The tables the two hold are the model.
    const auto expected = model(0);
    for (const std::string id : {"beta", "gamma"}) REQUIRE(f.hosts.at(id)->stop(SIGTERM, 30s) == 0);
    size_t keys = 0;
    for (const std::string id : {"beta", "gamma"}) {
        const auto table = f.dump(id);
        for (const auto& [p, owner] : last.owner) {
            if (owner != id) continue;
            REQUIRE(table.count(p));
            for (const auto& [key, value] : table.at(p)) CHECK(expected.at(key) == value);
            keys += table.at(p).size();
        }
    }
    CHECK(keys == static_cast<size_t>(kKeys));
}

namespace {

// A scale-out with warm_up: a third host joins two. With static membership the group may be seen ordering members by
// group.instance.id, and then the joining host warms only its share; else every partition.
void run_warm_up(bool static_membership) {
    constexpr int64_t kAcceptableLag = 1'000;
    Failover f(0, "warm_up: {acceptable_lag: " + std::to_string(kAcceptableLag) + "}\n" +
                      (static_membership ? "static_membership: true\n" : ""));
    f.start("alpha");
    f.start("beta");
    REQUIRE(await([&] { return f.settled("alpha", 2); }, 90s));
    // Both started alone in an empty view or beside one another: neither had anything to warm.
    for (const std::string id : {"alpha", "beta"}) CHECK(f.pipeline_status(id)["warm_up"]["state"] != "warming");
    produce_sequence(f.broker.bootstrap(), "events", 0, kKeys, kKeys);
    REQUIRE(await_caught_up(f.broker.bootstrap(), "fo", "events", kPartitions, 120s));
    SteadyLoad load(f.broker.bootstrap(), "events", 200, kKeys);
    REQUIRE(await([&] { return load.sent() >= 2'000; }, 60s));

    // gamma starts while alpha and beta hold every partition: it warms up, then joins and takes its share.
    const int64_t joined_ms = mephisto::wall_ms();
    f.start("gamma");
    auto gamma_holds = [&] {
        const View v = f.view("alpha");
        return std::any_of(v.owner.begin(), v.owner.end(), [](const auto& o) { return o.second == "gamma"; });
    };
    REQUIRE(await([&] { return gamma_holds() && f.settled("alpha", 3); }, 120s));
    const json gamma = f.pipeline_status("gamma");
    const json& warm = gamma["warm_up"];
    MESSAGE("gamma's warm-up: " << warm.dump());
    CHECK(warm["state"] == "caught up");
    const View after = f.view("alpha");
    std::set<int> taken;
    for (const auto& [p, host] : after.owner)
        if (host == "gamma") taken.insert(p);
    REQUIRE(!taken.empty());
    CHECK(warm["partitions"].get<size_t>() >= taken.size());  // at least its share (its share or every partition)
    if (!static_membership) CHECK(warm["partitions"] == kPartitions);  // its member id unknown before it joined

    // Every partition gamma took was recovered from what it warmed: at most the acceptable lag replayed.
    std::map<int, int64_t> replayed, changelog;
    for (const auto& r : gamma["recoveries"]) {
        const int p = r["partition"];
        CHECK(r["started_ms"].get<int64_t>() >= joined_ms);
        if (r["completed"] == true)  // nothing applied twice
            CHECK(r["replayed"] == r["end"].get<int64_t>() - r["from"].get<int64_t>());
        replayed[p] += r["replayed"].get<int64_t>();
        changelog[p] = r["end"];
    }
    for (int p : taken) {
        REQUIRE(changelog.count(p));
        MESSAGE("gamma took latest[" << p << "]: replayed " << replayed[p] << " of a changelog of " << changelog[p]);
        CHECK(replayed[p] <= kAcceptableLag);
        CHECK(changelog[p] >= kKeys / kPartitions / 2);  // a whole changelog would have been thousands
    }

    // The table equals the model, in the changelog and in what gamma holds.
    const int sent = load.stop();
    REQUIRE(await_caught_up(f.broker.bootstrap(), "fo", "events", kPartitions, 120s));
    const auto expected = model(sent);
    {
        TopicReader log(f.broker.bootstrap(), "fo-latest-changelog", kPartitions);
        REQUIRE(log.read_to_end(60s));
        std::map<std::string, std::string> latest;
        for (const auto& rec : log.records())
            if (rec.key) latest[*rec.key] = rec.value.value_or("");
        CHECK(latest == expected);
    }
    for (const std::string id : {"alpha", "beta", "gamma"}) REQUIRE(f.hosts.at(id)->stop(SIGTERM, 30s) == 0);
    const auto table = f.dump("gamma");
    size_t keys = 0;
    for (int p : taken) {
        REQUIRE(table.count(p));
        for (const auto& [key, value] : table.at(p)) CHECK(expected.at(key) == value);
        keys += table.at(p).size();
    }
    CHECK(keys >= taken.size() * (kKeys / kPartitions) * 9 / 10);
}

}  // namespace

TEST_CASE("a host joining with warm_up takes its partitions from replicas it warmed before joining: no full recovery") {
    run_warm_up(false);
}

TEST_CASE("warm_up with static membership: the joining host warms what it will take, and takes it warm") {
    run_warm_up(true);
}
