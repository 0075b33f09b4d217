// Windowed tables (RELIABILITY 29 and 30) against real hosts: tumbling windows with a grace period and expiry,
// out-of-order events, each (key, window) closed exactly once by on_window_close, late events dropped and
// counted, expired windows removed from the changelog, and window state and pending closes kept across restarts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "tables/windowed_table.hpp"

using namespace mephisto::test;

namespace {

constexpr int64_t kT0 = 60'000LL * 16'666'667;  // a minute boundary (2001-09-09T01:47:00Z)

// A click on `url` at kT0 + `seconds`, its time in the JSON field `ts`.
Message click(const std::string& url, int seconds) {
    Message m;
    m.key = url;
    m.value = nlohmann::json{{"url", url}, {"ts", kT0 + seconds * 1000LL}}.dump();
    return m;
}

std::string closed(const std::string& url, int window_second) {
    return url + "@" + std::to_string(kT0 + window_second * 1000LL) + "=";
}

std::string pipeline(const std::filesystem::path& state,
                     const std::string& window = "{tumbling: 60s, grace: 10s, expires: 2m, relative_to: {field: ts}}") {
    return "app: {id: win}\nplugins: {dir: " + test_plugin_dir().string() + "}\nstate_dir: " + state.string() + "\n" +
           kFastGroupYaml +
           "topics: {clicks: {partitions: 1}, closed: {partitions: 1}}\n"
           "tables:\n"
           "  windows: {value: int64, window: " + window + "}\n"
           "agents:\n"
           "  counter: {plugin: test_agents, agent: window_count, from: clicks, sinks: [closed], tables: [windows]}\n";
}

// For failure messages.
std::string show(const std::map<std::string, int>& m) {
    std::string out;
    for (const auto& [k, v] : m) out += k + " x" + std::to_string(v) + "; ";
    return out;
}

// Every "<url>@<start>=<count>" emitted so far, by occurrence.
std::map<std::string, int> closes(const std::string& bootstrap) {
    TopicReader reader(bootstrap, "closed", 1);
    REQUIRE(reader.read_to_end(30s));
    return reader.value_counts();
}

double metric(const std::string& admin, const std::string& name) {
    auto body = http_get(admin, "/metrics").body;
    auto at = body.find("\n" + name + "{");
    if (at == std::string::npos) return -1;
    auto end = body.find('\n', at + 1);
    auto line = body.substr(at + 1, end - at - 1);
    return std::stod(line.substr(line.rfind(' ') + 1));
}

}  // namespace

TEST_CASE("out-of-order events in tumbling windows: each window closes once, late ones are dropped (RELIABILITY 29)") {
    Broker broker;
    broker.create_topic("clicks", 1);
    broker.create_topic("closed", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline(dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);

    // Minute 0: a a a b; then minute 1 starts (stream time 65 s) while minute 0 still takes b@50 s (grace 10 s).
    produce(broker.bootstrap(), "clicks", {click("a", 0), click("b", 10), click("a", 30), click("a", 59),
                                           click("a", 65), click("b", 50)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    CHECK(closes(broker.bootstrap()).empty());  // nothing has closed: stream time 65 s < 60 s + grace
    // Stream time 75 s closes minute 0; b@55 s then comes too late and is dropped.
    produce(broker.bootstrap(), "clicks", {click("a", 75), click("b", 55)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    auto seen = closes(broker.bootstrap());
    CHECK(seen == std::map<std::string, int>{{closed("a", 0) + "3", 1}, {closed("b", 0) + "2", 1}});
    CHECK(metric(admin, "mephisto_window_late_events_total") == 1);

    // Stream time 200 s closes minutes 1 and 2, and removes minute 0 (its end + 2 min expiry passed).
    produce(broker.bootstrap(), "clicks", {click("a", 130), click("c", 200)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    seen = closes(broker.bootstrap());
    CHECK(seen == std::map<std::string, int>{{closed("a", 0) + "3", 1},
                                             {closed("b", 0) + "2", 1},
                                             {closed("a", 60) + "2", 1},
                                             {closed("a", 120) + "1", 1}});
    CHECK(metric(admin, "mephisto_windows_closed_total") == 4);
    CHECK(metric(admin, "mephisto_windows_expired_total") == 2);  // minute 0's a and b

    // The changelog ends minute 0's keys with tombstones; minute 1 is still there.
    TopicReader changelog(broker.bootstrap(), "win-windows-changelog", 1);
    REQUIRE(changelog.read_until([&](const std::vector<Record>& records) {
        std::map<std::string, std::optional<std::string>> last;
        for (const auto& r : records) last[*r.key] = r.value;
        auto a0 = last.find(mephisto::window_key(kT0, "a"));
        auto b0 = last.find(mephisto::window_key(kT0, "b"));
        auto a1 = last.find(mephisto::window_key(kT0 + 60'000, "a"));
        return a0 != last.end() && !a0->second && b0 != last.end() && !b0->second && a1 != last.end() && a1->second;
    }, 30s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("window state and pending closes survive restarts, and no window closes twice (RELIABILITY 30)") {
    Broker broker;
    broker.create_topic("clicks", 1);
    broker.create_topic("closed", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline(dir.path() / "state"));
    {
        auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host1.log");
        produce(broker.bootstrap(), "clicks", {click("a", 0), click("a", 20), click("b", 40), click("a", 65)});
        REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
        CHECK(host->stop(SIGTERM, 30s) == 0);  // minute 0 is pending: stream time 65 s < 70 s
    }
    CHECK(closes(broker.bootstrap()).empty());
    {
        // The restarted host knows minute 0's counts and the stream time: one more event closes it.
        auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host2.log");
        produce(broker.bootstrap(), "clicks", {click("b", 5), click("a", 71)});
        REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
        CHECK(closes(broker.bootstrap()) ==
              std::map<std::string, int>{{closed("a", 0) + "2", 1}, {closed("b", 0) + "2", 1}});
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
    {
        // Again, with the store deleted: the changelog brings back the close mark too; minute 0 stays closed.
        std::filesystem::remove_all(dir.path() / "state");
        auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host3.log");
        produce(broker.bootstrap(), "clicks", {click("a", 59), click("a", 140)});
        REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
        CHECK(closes(broker.bootstrap()) == std::map<std::string, int>{{closed("a", 0) + "2", 1},
                                                                       {closed("b", 0) + "2", 1},
                                                                       {closed("a", 60) + "2", 1}});
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
}

TEST_CASE("a hopping window event is counted in every window it falls in") {
    Broker broker;
    broker.create_topic("clicks", 1);
    broker.create_topic("closed", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline(dir.path() / "state", "{hopping: {size: 60s, step: 20s}, relative_to: {field: ts}}"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    // Relative to kT0 (a multiple of 20 s): 10 s is in [-40, 20), [-20, 40) and [0, 60); 65 s and 70 s are in
    // [20, 80), [40, 100) and [60, 120).
    produce(broker.bootstrap(), "clicks", {click("a", 10), click("a", 65), click("a", 70), click("b", 300)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    const auto hopped = closes(broker.bootstrap());
    const std::map<std::string, int> expected = {{closed("a", -40) + "1", 1}, {closed("a", -20) + "1", 1},
                                                 {closed("a", 0) + "1", 1},   {closed("a", 20) + "2", 1},
                                                 {closed("a", 40) + "2", 1},  {closed("a", 60) + "2", 1}};
    CHECK_MESSAGE(hopped == expected, show(hopped));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a sliding window is the span around each event") {
    Broker broker;
    broker.create_topic("clicks", 1);
    broker.create_topic("closed", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline(dir.path() / "state", "{sliding: {before: 5s, after: 5s}, relative_to: {field: ts}}"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    // Each event counts in its own window [t - 5 s, t + 5 s]; two events at one time share theirs.
    produce(broker.bootstrap(), "clicks", {click("a", 100), click("a", 103), click("a", 103), click("b", 200)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    CHECK(closes(broker.bootstrap()) == std::map<std::string, int>{{closed("a", 95) + "1", 1}, {closed("a", 98) + "2", 1}});
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("session windows merge events within the gap and close once the gap and grace have passed") {
    Broker broker;
    broker.create_topic("clicks", 1);
    broker.create_topic("closed", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline(dir.path() / "state", "{session: 10s, grace: 20s, relative_to: {field: ts}}"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    // a: [0, 5] is one session; 30 and then 18 (out of order, within the 20 s grace) start two more; 24 is
    // within the gap of both, merging them into [18, 30] with 3 events. b at 100 s moves stream time past both
    // sessions' end + gap + grace.
    produce(broker.bootstrap(), "clicks", {click("a", 0), click("a", 5), click("a", 30), click("a", 18), click("a", 24)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    CHECK(closes(broker.bootstrap()).empty());
    // Stream time 60 closes both (their end + gap + grace). a@35 is within the gap of the closed [18, 30] and
    // a@3 within [0, 5]: both late, neither starts a session of its own beside a closed one.
    produce(broker.bootstrap(), "clicks", {click("b", 60), click("a", 35), click("a", 3)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    produce(broker.bootstrap(), "clicks", {click("b", 200)});
    REQUIRE(await_caught_up(broker.bootstrap(), "win", "clicks", 1, 30s));
    const auto sessions = closes(broker.bootstrap());
    const std::map<std::string, int> expected = {{closed("a", 0) + "2", 1}, {closed("a", 18) + "3", 1},
                                                 {closed("b", 60) + "1", 1}};
    CHECK_MESSAGE(sessions == expected, show(sessions));
    CHECK(metric(admin, "mephisto_window_late_events_total") == 2);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("windowed tables refuse what would break their clock: concurrency, and agents without on_event") {
    TempDir dir;
    auto refused = [&](const std::string& agent_yaml) {
        auto yaml = dir.write("p.yaml", "app: {id: win}\nplugins: {dir: " + test_plugin_dir().string() + "}\n" +
                                            "topics: {clicks: {partitions: 1}, closed: {partitions: 1}}\n"
                                            "tables: {windows: {value: int64, window: {tumbling: 60s}}}\n"
                                            "agents:\n  counter: " + agent_yaml + "\n");
        std::string out;
        CHECK(run_cli({"validate", yaml.string()}, dir, out) != 0);
        return out;
    };
    CHECK(refused("{plugin: test_agents, agent: window_count, from: clicks, tables: [windows], concurrency: 2}")
              .find("windowed table windows keeps one stream time per partition") != std::string::npos);
}
