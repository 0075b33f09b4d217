// The status page (GET / on the admin port) in a real browser: headless Debian chromium driven by playwright-core
// (status_page.mjs), against a host with the admin token on, under a steady load. Live: the token asked for and
// kept, no console error, the plot has points, a plugin swap in the reload history within 2 s. Then, the load
// stopped and consumed: the page's figures equal /agents and /pipelines, and its form reads a table key.
// Screenshots go to build/ui-screenshots/.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

const std::filesystem::path kScript = MEPHISTO_UI_TEST_DIR "/status_page.mjs";
const std::filesystem::path kReloadBuilds = MEPHISTO_RELOAD_PLUGIN_DIR;  // stamp_v1.so, stamp_v2.so
const std::filesystem::path kScreenshots = MEPHISTO_UI_SCREENSHOT_DIR;
constexpr int kKeys = 1000;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Runs one phase of the browser script; its output goes to the test's log.
void browse(const std::string& phase, const std::string& admin, const std::vector<std::string>& more) {
    std::string command = "cd " + quoted(MEPHISTO_UI_TEST_DIR) + " && node " + quoted(kScript.string()) + " --phase " +
                          phase + " --url http://" + admin + " --token s3cret --out " + quoted(kScreenshots.string());
    for (const auto& m : more) command += " " + quoted(m);
    std::string out;
    const int status = shell(command + " 2>&1", out);
    MESSAGE("status_page.mjs --phase " << phase << ":\n" << out);
    REQUIRE_MESSAGE(status == 0, "the browser test's " << phase << " phase failed");
}

}  // namespace

TEST_CASE("the status page in headless chromium: live figures, plots, a swap in the reload history, the token") {
    REQUIRE_MESSAGE(std::filesystem::exists(std::string(MEPHISTO_UI_TEST_DIR) + "/node_modules/playwright-core"),
                    "playwright-core is not installed in tests/ui (scripts/install-deps.sh installs it)");
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 4);
    broker.create_topic("ui-latest-changelog", 4);
    TempDir dir;
    const auto plugins = dir.path() / "plugins";
    std::filesystem::create_directories(plugins);
    std::filesystem::copy_file(kReloadBuilds / "stamp_v1.so", plugins / "stamp.so");
    std::filesystem::copy_file(test_plugin_dir() / "test_agents.so", plugins / "test_agents.so");
    const auto yaml = dir.write("ui.yaml", pipeline_yaml("ui",
        "topics: {in: {partitions: 4}, out: {partitions: 4}}\n"
        "tables: {latest: {}}\n"
        "agents:\n"
        "  stamp: {plugin: stamp, from: in, sinks: [out]}\n"
        "  keeper: {plugin: test_agents, agent: fold, from: in, tables: [latest], params: {table: latest, mode: put}}\n",
        plugins));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log", {"--admin-token", "s3cret"});
    const std::string admin = admin_address(*host);
    REQUIRE(await([&] { return http_get(admin, "/ready", "s3cret").status == 200; }, 60s));

    {
        SteadyLoad load(broker.bootstrap(), "in", 50, kKeys);
        REQUIRE(await([&] { return load.sent() >= 500; }, 60s));
        browse("live", admin, {"--swap-from", (kReloadBuilds / "stamp_v2.so").string(), "--swap-to",
                               (plugins / "stamp.so").string()});
        const int sent = load.stop();
        REQUIRE(await_caught_up(broker.bootstrap(), "ui", "in", 4, 60s));
        // The last value put under k0: "seq-<the largest multiple of kKeys below sent>".
        const std::string expect = "seq-" + std::to_string((sent - 1) / kKeys * kKeys);
        REQUIRE(await([&] {
            const auto r = http_get(admin, "/agents", "s3cret");
            const json agents = json::parse(r.body, nullptr, false);
            if (r.status != 200 || agents.is_discarded()) return false;
            for (const auto& a : agents)
                if (a["agent"] == "keeper") return a["processed"].get<int64_t>() >= sent;
            return false;
        }, 30s));
        browse("figures", admin, {"--table", "latest", "--key", "k0", "--expect", expect});
    }
    CHECK(host->count_in_log("plugin stamp swapped") == 1);
    CHECK(std::filesystem::file_size(kScreenshots / "status-live.png") > 10'000);
    CHECK(std::filesystem::file_size(kScreenshots / "status-figures.png") > 10'000);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
