// Hot reload of plugins (DESIGN.md §5; RELIABILITY 13 and 14): a new build copied into the plugin directory
// replaces the running one agent by agent, under load, with nothing lost, nothing repeated and no rebalance;
// a replacement the loader refuses changes nothing and is reported with its path and reason.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

const std::filesystem::path kBuilds = MEPHISTO_RELOAD_PLUGIN_DIR;   // stamp_v1.so, stamp_v2.so
const std::filesystem::path kFixtures = MEPHISTO_ABI_FIXTURE_DIR;  // broken plugins

// Puts `source` in place as <dir>/stamp.so the way a deployment should: copy beside it, then rename.
void install(const std::filesystem::path& source, const std::filesystem::path& dir) {
    std::filesystem::copy_file(source, dir / ".stamp.so.partial", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(dir / ".stamp.so.partial", std::filesystem::perms(0755));
    std::filesystem::rename(dir / ".stamp.so.partial", dir / "stamp.so");
}

std::string pipeline(const std::string& app, const std::filesystem::path& plugins) {
    return pipeline_yaml(app, "topics: {in: {partitions: 4}, out: {partitions: 4}}\n"
           "agents:\n  stamp: {plugin: stamp, from: in, sinks: [out]}\n",
                         plugins);
}

// The outputs by input value: "v2:seq-17" -> seq-17 seen once, by version 2.
struct Ledger {
    std::map<std::string, std::vector<int>> versions;  // input value -> the versions that processed it
    explicit Ledger(const std::vector<Record>& records) {
        for (const auto& r : records) {
            const std::string& v = *r.value;
            versions[v.substr(3)].push_back(v[1] - '0');
        }
    }
};

std::vector<double> pauses_ms(const std::string& log) {
    static const std::regex line(R"(pauses: stamp ([0-9.]+) ms)");
    std::vector<double> out;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it)
        out.push_back(std::stod((*it)[1]));
    return out;
}

}  // namespace

TEST_CASE("a plugin swapped under a steady load loses nothing, repeats nothing and needs no rebalance (RELIABILITY 13)") {
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 4);
    TempDir dir;
    const auto plugins = dir.path() / "plugins";
    std::filesystem::create_directories(plugins);
    install(kBuilds / "stamp_v1.so", plugins);
    auto yaml = dir.write("p.yaml", pipeline("swap", plugins));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");

    // A steady load in the background, for as long as the plugin is swapped (six times).
    constexpr int kChunk = 100;
    SteadyLoad load(broker.bootstrap(), "in", kChunk);
    constexpr int kSwaps = 6;
    for (int swap = 1; swap <= kSwaps; ++swap) {
        const int before = load.sent();
        REQUIRE(await([&] { return load.sent() >= before + 5 * kChunk; }, 30s));  // load between swaps
        install(kBuilds / (swap % 2 ? "stamp_v2.so" : "stamp_v1.so"), plugins);
        REQUIRE(await([&] { return host->count_in_log("plugin stamp swapped") == static_cast<size_t>(swap); }, 30s));
    }
    const int total = load.stop();
    MESSAGE(total << " events sent during " << kSwaps << " swaps");
    // The last swap installed v1 (an even count): the new code is the one running now.
    produce_sequence(broker.bootstrap(), "in", total, 100, 16, "after-");
    REQUIRE(await_caught_up(broker.bootstrap(), "swap", "in", 4, 60s));

    TopicReader out(broker.bootstrap(), "out", 4);
    REQUIRE(out.read_to_end(30s));
    const Ledger ledger(out.records());
    int lost = 0, repeated = 0;
    std::set<int> versions_seen;
    for (int i = 0; i < total; ++i) {
        auto it = ledger.versions.find("seq-" + std::to_string(i));
        if (it == ledger.versions.end()) ++lost;
        else {
            repeated += static_cast<int>(it->second.size()) - 1;
            versions_seen.insert(it->second.begin(), it->second.end());
        }
    }
    CHECK(lost == 0);
    CHECK(repeated == 0);
    CHECK(versions_seen == std::set<int>{1, 2});  // both builds processed part of the load
    for (int i = 0; i < 100; ++i) {
        auto it = ledger.versions.find("after-" + std::to_string(total + i));
        REQUIRE(it != ledger.versions.end());
        CHECK(it->second == std::vector<int>{1});
    }
    // No rebalance: one assignment, no revocation while running.
    CHECK(host->count_in_log("assigned ") == 1);
    CHECK(host->count_in_log("revoked") == 0);
    CHECK(host->count_in_log("old image unloaded") == static_cast<size_t>(kSwaps));
    const auto pauses = pauses_ms(host->log());
    REQUIRE(pauses.size() == static_cast<size_t>(kSwaps));
    MESSAGE("swap pauses (ms): " << [&] {
        std::string s;
        for (double p : pauses) s += std::to_string(p) + " ";
        return s;
    }());
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a replacement the loader refuses changes nothing and is reported with its path and reason (RELIABILITY 14)") {
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 4);
    TempDir dir;
    const auto plugins = dir.path() / "plugins";
    std::filesystem::create_directories(plugins);
    install(kBuilds / "stamp_v1.so", plugins);
    auto yaml = dir.write("p.yaml", pipeline("refuse", plugins));
    // No watcher: reloads come from POST /reload and SIGHUP only, so each refusal can be asked for.
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log", {"--no-watch"});
    const std::string admin = admin_address(*host);
    const std::string stamp = (plugins / "stamp.so").string();

    auto reload = [&] {
        return http_raw(admin, "POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    const std::vector<std::pair<std::filesystem::path, std::string>> refusals = {
        {kFixtures / "not_elf.so", "not an ELF shared object"},
        {kFixtures / "wrong_major.so", "a different major version is incompatible"},
        {kFixtures / "newer_minor.so", "newer than this host's ABI"},
        {kFixtures / "failing_init.so", "init failed: database unreachable"},
        {test_plugin_dir() / "test_agents.so", "has no agent 'stamp'"},
    };
    int sequence = 0;
    for (const auto& [file, reason] : refusals) {
        CAPTURE(file);
        install(file, plugins);
        auto reply = reload();
        REQUIRE(reply.status == 422);
        const json body = json::parse(reply.body);
        REQUIRE(body["changes"].size() == 1);
        CHECK(body["changes"][0]["result"] == "refused");
        CHECK(body["changes"][0]["file"] == stamp);
        CHECK(body["changes"][0]["reason"].get<std::string>().find(reason) != std::string::npos);
        // The old build keeps working.
        produce(broker.bootstrap(), "in", {{"k", "probe-" + std::to_string(sequence), {}, -1}});
        TopicReader out(broker.bootstrap(), "out", 4);
        CHECK(out.read_until([&](const auto& r) {
            for (const auto& x : r)
                if (*x.value == "v1:probe-" + std::to_string(sequence)) return true;
            return false;
        }, 20s));
        ++sequence;
    }
    CHECK(host->log().find("reload of " + stamp + " refused, the running version stays") != std::string::npos);

    // A good build then goes in, by SIGHUP this time; the history keeps every reload.
    install(kBuilds / "stamp_v2.so", plugins);
    ::kill(host->pid(), SIGHUP);
    REQUIRE(host->await_log("plugin stamp swapped", 30s));
    produce(broker.bootstrap(), "in", {{"k", "after", {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 4);
    CHECK(out.read_until([](const auto& r) {
        return std::any_of(r.begin(), r.end(), [](const Record& x) { return *x.value == "v2:after"; });
    }, 20s));
    auto history = http_get(admin, "/reloads");
    REQUIRE(history.status == 200);
    const json reloads = json::parse(history.body);
    REQUIRE(reloads.size() == refusals.size() + 1);
    CHECK(reloads.back()["trigger"] == "SIGHUP");
    CHECK(reloads.back()["changes"][0]["result"] == "swapped");
    CHECK(reloads.back()["changes"][0]["old_image_unloaded"] == true);
    CHECK(reloads.back()["changes"][0]["agents"][0]["agent"] == "stamp");
    CHECK(reload().status == 200);  // nothing changed since: nothing to do
    std::string cli;
    install(kFixtures / "not_elf.so", plugins);
    CHECK(run_cli({"reload", "--admin", admin}, dir, cli) == 2);
    CHECK(cli.find(stamp + ": refused: " + stamp + ": not an ELF shared object") != std::string::npos);
    install(kBuilds / "stamp_v1.so", plugins);
    CHECK(run_cli({"reload", "--admin", admin}, dir, cli) == 0);
    CHECK(cli.find(stamp + ": swapped\n  stamp paused ") != std::string::npos);
    const auto metrics = http_get(admin, "/metrics").body;
    CHECK(metrics.find("mephisto_plugin_reloads_total{result=\"refused\"} 6") != std::string::npos);
    CHECK(metrics.find("mephisto_plugin_reloads_total{result=\"swapped\"} 2") != std::string::npos);
    CHECK(metrics.find("mephisto_plugin_swap_pause_seconds_count 2") != std::string::npos);
    CHECK(host->count_in_log("revoked") == 0);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
