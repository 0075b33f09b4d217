// Leader election for on_leader timers: the host that owns partition 0 of <app>-__leader leads. Across a random
// sequence of hosts joining, leaving cleanly and being killed, at most one host leads at any moment (their
// leadership intervals, from their logs, never overlap), and once the group settles exactly one does.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>
#include <ctime>
#include <random>
#include <regex>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

// Milliseconds of a log line's "YYYY-MM-DD HH:MM:SS.mmm" (local time, as the host writes it).
int64_t log_time(const std::string& stamp) {
    std::tm tm{};
    strptime(stamp.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
    tm.tm_isdst = -1;
    return static_cast<int64_t>(std::mktime(&tm)) * 1000 + std::stoi(stamp.substr(20, 3));
}

// Now, on the same scale as log_time.
int64_t now_ms() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t s = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    localtime_r(&s, &tm);
    tm.tm_isdst = -1;
    return static_cast<int64_t>(std::mktime(&tm)) * 1000 +
           std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
}

struct Member {
    std::unique_ptr<HostProcess> host;
    int64_t killed_at = -1;  // SIGKILL: its leadership ends there, it logs nothing more
    bool alive = true;
};

// Leadership intervals [from, to) of one host, from its log.
std::vector<std::pair<int64_t, int64_t>> intervals(const Member& m) {
    static const std::regex line(R"((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*this host (now leads|no longer leads))");
    std::vector<std::pair<int64_t, int64_t>> out;
    const std::string log = m.host->log();
    int64_t from = -1;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
        const int64_t at = log_time((*it)[1]);
        if ((*it)[2] == "now leads") from = at;
        else if (from >= 0) out.emplace_back(from, at), from = -1;
    }
    if (from >= 0) out.emplace_back(from, m.killed_at >= 0 ? m.killed_at : INT64_MAX);
    return out;
}

bool leads(const Member& m) {
    return m.alive && m.host->count_in_log("this host now leads") > m.host->count_in_log("this host no longer leads");
}

}  // namespace

TEST_CASE("leader uniqueness across a random join/leave sequence") {
    Broker broker;
    broker.create_topic("ticks", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", "app: {id: leaders}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" +
                                        kFastGroupYaml +
                                        "topics: {ticks: {partitions: 1}}\n"
                                        "timers:\n  beat: {plugin: test_agents, agent: tick, every: 100ms, on_leader: true,\n"
                                        "          params: {topic: ticks}}\n");
    std::vector<Member> members;
    auto join = [&] {
        const auto log = dir.path() / ("host" + std::to_string(members.size()) + ".log");
        members.push_back({start_host(yaml, broker.bootstrap(), log, {}, false)});
    };
    auto settled = [&] {
        int leaders = 0;
        for (const auto& m : members) leaders += leads(m);
        return leaders == 1;
    };
    for (int i = 0; i < 3; ++i) join();
    REQUIRE(await(settled, 60s));

    std::mt19937 rng(20261125);
    for (int step = 0; step < 5; ++step) {
        std::vector<size_t> alive;
        for (size_t i = 0; i < members.size(); ++i)
            if (members[i].alive) alive.push_back(i);
        // The first step kills the leader (the case that needs a session timeout); the rest are random.
        const int action = step == 0 ? 1 : alive.size() < 2 ? 0 : static_cast<int>(rng() % 3);
        if (action == 0) {
            join();
            MESSAGE("step " << step << ": a host joins");
        } else {
            // Leaving hits the leader half of the time: that is the interesting case.
            size_t victim = alive[rng() % alive.size()];
            if (step == 0 || rng() % 2)
                for (size_t i : alive)
                    if (leads(members[i])) victim = i;
            Member& m = members[victim];
            if (action == 1) {
                MESSAGE("step " << step << ": host " << victim << std::string(leads(m) ? " (the leader)" : "") << " is killed");
                m.host->stop(SIGKILL, 10s);
                m.killed_at = now_ms();  // dead by now: whatever it led ended before this
            } else {
                MESSAGE("step " << step << ": host " << victim << std::string(leads(m) ? " (the leader)" : "") << " leaves");
                CHECK(m.host->stop(SIGTERM, 30s) == 0);
            }
            m.alive = false;
        }
        REQUIRE(await(settled, 60s));  // a killed leader is replaced after its session times out
    }

    // No two hosts ever led at once.
    std::vector<std::pair<int64_t, int64_t>> all;
    for (const auto& m : members)
        for (const auto& iv : intervals(m)) all.push_back(iv);
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() >= 2);
    for (size_t i = 1; i < all.size(); ++i)
        CHECK_MESSAGE(all[i].first >= all[i - 1].second,
                      "leadership from " << all[i].first << " overlaps one that lasted until " << all[i - 1].second);
    // The leader's timer runs: ticks keep coming.
    TopicReader ticks(broker.bootstrap(), "ticks", 1);
    REQUIRE(ticks.read_until([](const std::vector<Record>& r) { return r.size() >= 10; }, 30s));
    for (auto& m : members)
        if (m.alive) CHECK(m.host->stop(SIGTERM, 30s) == 0);
}
