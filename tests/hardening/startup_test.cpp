// Issue 11, finding 5: a host that is starting obeys SIGTERM. Between steps it stops at once; a step that does
// not return (a plugin's init of 30 s) gets two seconds, then the process exits; a second signal exits at once.
// Many declared topics on the embedded broker take seconds, not minutes. And (finding 8) a plugin whose init
// hangs is refused after plugins.load_timeout, naming the plugin, by `run` and by `validate`.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include "harness.hpp"

using namespace mephisto::test;
namespace fs = std::filesystem;

namespace {

const fs::path kHostile = test_plugin_dir() / "hostile";  // slow_init.so: init sleeps 30 s

std::string slow_pipeline(const std::string& app, const std::string& extra = "") {
    return "app: {id: " + app + "}\nbroker: {embedded: {port: 0}}\nplugins: {dir: " + kHostile.string() + extra +
           "}\ntopics: {in: {partitions: 1}}\nagents:\n  a: {plugin: slow_init, agent: crash, from: in}\n";
}

// App `many` on a broker of its own, declaring `n` topics of one partition; its agent reads the first.
fs::path many_topics(const TempDir& dir, int n) {
    std::string topics = "topics:\n";
    for (int i = 0; i < n; ++i) topics += "  t" + std::to_string(i) + ": {partitions: 1}\n";
    return dir.write("p.yaml", "app: {id: many}\nbroker: {embedded: {port: 0}}\nplugins: {dir: " +
                                   test_plugin_dir().string() + "}\n" + kFastGroupYaml + topics +
                                   "agents:\n  a: {plugin: test_agents, agent: forward, from: t0}\n");
}

std::unique_ptr<HostProcess> run(const fs::path& yaml, const TempDir& dir) {
    return std::make_unique<HostProcess>(std::vector<std::string>{mephisto_binary().string(), "--log-level", "debug", "run",
                                                                  yaml.string(), "--admin", "off"},
                                         dir.path() / "host.log");
}

}  // namespace

TEST_CASE("SIGTERM while a plugin's init takes 30 s: the host exits within about two seconds, saying what hung") {
    TempDir dir;
    auto host = run(dir.write("p.yaml", slow_pipeline("slow", ", load_timeout: 60s")), dir);
    REQUIRE(host->await_log("loading plugin slow_init of pipeline slow", 30s));
    const auto asked = std::chrono::steady_clock::now();
    CHECK(host->stop(SIGTERM, 15s) == 2);
    const auto took = std::chrono::steady_clock::now() - asked;
    MESSAGE("exit " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after SIGTERM");
    CHECK(took < 5s);  // the plugin's init alone would take 30 s
    CHECK(host->log().find("startup did not stop within 2 s of Terminated: loading plugin slow_init of pipeline slow "
                           "(its constructors and init) has not returned; exiting now") != std::string::npos);
}

TEST_CASE("a second SIGTERM while starting exits at once") {
    TempDir dir;
    auto host = run(dir.write("p.yaml", slow_pipeline("twice", ", load_timeout: 60s")), dir);
    REQUIRE(host->await_log("loading plugin slow_init", 30s));
    ::kill(host->pid(), SIGTERM);
    REQUIRE(host->await_log("while starting", 10s));
    CHECK(host->stop(SIGTERM, 10s) == 2);
    CHECK(host->log().find("second Terminated received; exiting now") != std::string::npos);
}

TEST_CASE("SIGTERM while 8000 declared topics are created on the embedded broker stops the host cleanly at once") {
    TempDir dir;
    auto host = run(many_topics(dir, 8000), dir);
    REQUIRE(host->await_log("creating the 8000 topic(s) of pipeline many", 60s));
    CHECK(host->stop(SIGTERM, 10s) == 0);
    CHECK(host->log().find("received Terminated while starting (creating the 8000 topic(s)") != std::string::npos);
    CHECK(host->log().find("stopped while starting") != std::string::npos);
}

TEST_CASE("8000 declared topics on the embedded broker are created in seconds, and the host starts") {
    TempDir dir;
    auto host = run(many_topics(dir, 8000), dir);
    // Two minutes before the fix; the bound is loose on purpose (bench/bench_topic_creation has the figure).
    CHECK(host->await_log("pipeline many started", 60s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a plugin whose init hangs is refused after plugins.load_timeout, by run and by validate") {
    TempDir dir;
    auto yaml = dir.write("p.yaml", slow_pipeline("hangs", ", load_timeout: 1s"));
    auto host = run(yaml, dir);
    CHECK(host->wait(20s) == 1);
    CHECK(host->log().find(( kHostile / "slow_init.so").string() + ": refused: init did not return within 1s "
                           "(plugins.load_timeout); loading must not block") != std::string::npos);
    std::string out;
    const auto asked = std::chrono::steady_clock::now();
    CHECK(run_cli({"validate", yaml.string()}, dir, out) == 1);
    CHECK(std::chrono::steady_clock::now() - asked < 10s);  // not the 30 s of the init
    CHECK(out.find("slow_init.so: refused: init did not return within 1s") != std::string::npos);
}

TEST_CASE("a plugin swapped in whose init hangs is refused after plugins.load_timeout, and the running one stays") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    const fs::path plugins = dir.path() / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(test_plugin_dir() / "crasher.so", plugins / "probe.so");
    auto yaml = dir.write("p.yaml", "app: {id: swaphang}\nplugins: {dir: " + plugins.string() + ", load_timeout: 1s}\n" +
                                        kFastGroupYaml + "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                                        "agents:\n  a: {plugin: probe, agent: crash, from: in, sinks: [out]}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    fs::copy_file(kHostile / "slow_init.so", plugins / ".probe.partial");
    fs::rename(plugins / ".probe.partial", plugins / "probe.so");
    REQUIRE(host->await_log("reload of " + (plugins / "probe.so").string() + " refused", 30s));
    CHECK(host->log().find("refused: init did not return within 1s (plugins.load_timeout)") != std::string::npos);
    produce(broker.bootstrap(), "in", {{"k", std::string("still here"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](auto& r) { return !r.empty(); }, 30s));  // the running build still works
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
