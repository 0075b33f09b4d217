// Issue 11, finding 6 (RELIABILITY 5): a callback stuck in a loop is visible. Past hung_callback_after it is
// logged with agent, partition and offset (and again as often), counted in /metrics, listed in /agents and
// /pipelines, shown by `mephisto status`, and /ready says why it is not ready. A stop with a stuck callback
// takes shutdown_timeout, not more: the other partitions commit, the stuck event stays uncommitted.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

TEST_CASE("a callback stuck past hung_callback_after is logged, counted, listed and makes /ready say why") {
    Broker broker;
    broker.create_topic("in", 2);
    broker.create_topic("out", 2);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("stuck", "hung_callback_after: 1s\nshutdown_timeout: 4s\n"
                                                           "topics: {in: {partitions: 2}, out: {partitions: 2}}\n"
                                                           "agents:\n  spin: {plugin: crasher, agent: crash, from: in, sinks: [out]}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    // Partition 0 gets the hang; partition 1 keeps flowing.
    produce(broker.bootstrap(), "in", {{"a", std::string("before"), {}, 0}, {"a", std::string("hang"), {}, 0},
                                       {"b", std::string("other-1"), {}, 1}, {"b", std::string("other-2"), {}, 1}});
    REQUIRE(host->await_log("agent spin has been in on_event of in[0]@1 for", 20s));
    CHECK(host->log().find("(hung_callback_after 1s); the commit of its partition waits for it") != std::string::npos);

    const auto ready = http_get(admin, "/ready");
    CHECK(ready.status == 503);
    CHECK(ready.body.find("agent spin has been in on_event of in[0]@1 for") != std::string::npos);
    const auto agents = json::parse(http_get(admin, "/agents").body);
    REQUIRE(agents.size() == 1);
    CHECK(agents[0]["hung"] == 1);
    REQUIRE(agents[0]["hung_now"].size() == 1);
    CHECK(agents[0]["hung_now"][0]["partition"] == 0);
    CHECK(agents[0]["hung_now"][0]["offset"] == 1);
    CHECK(agents[0]["hung_now"][0]["callback"] == "on_event");
    const auto metrics = http_get(admin, "/metrics").body;
    CHECK(metrics.find("mephisto_agent_hung_callbacks_total{pipeline=\"stuck\",agent=\"spin\"} 1") != std::string::npos);
    CHECK(metrics.find("mephisto_agent_hung_callbacks{pipeline=\"stuck\",agent=\"spin\"} 1") != std::string::npos);
    std::string status;
    CHECK(run_cli({"status", "--admin", admin}, dir, status) == 2);  // not ready
    CHECK(status.find("HUNG: agent spin has been in on_event of in[0]@1") != std::string::npos);
    // Reported again while it lasts, as often as the threshold.
    CHECK(host->await_log("agent spin has been in on_event of in[0]@1 for 2 s", 20s));

    // The stop keeps to shutdown_timeout (4 s): partition 1 commits, the stuck event does not.
    TopicReader out(broker.bootstrap(), "out", 2);
    REQUIRE(out.read_until([](auto& r) { return r.size() >= 3; }, 30s));
    const auto asked = std::chrono::steady_clock::now();
    CHECK(host->stop(SIGTERM, 20s) == 2);
    const auto took = std::chrono::steady_clock::now() - asked;
    MESSAGE("stop took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(took < 7s);  // 4 s of budget and the process's own end, where it took 4 s + 10 s
    CHECK(host->log().find("did not return within shutdown_timeout (4s)") != std::string::npos);
    CHECK(host->log().find("stopped without a clean stop") != std::string::npos);
    const auto committed = committed_offsets(broker.bootstrap(), "stuck", "in", 2);
    CHECK(committed.at(0) == 1);  // up to the stuck event: it is processed again after a restart
    CHECK(committed.at(1) == 2);
}

TEST_CASE("a hung timer callback is reported as well, and the stop keeps to its budget") {
    Broker broker;
    broker.create_topic("in", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("stucktimer", "hung_callback_after: 1s\nshutdown_timeout: 3s\n"
                                                                "topics: {in: {partitions: 1}}\n"
                                                                "agents:\n  fwd: {plugin: crasher, agent: crash, from: in}\n"
                                                                "timers:\n  nap: {plugin: crasher, agent: nap, every: 100ms}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    REQUIRE(host->await_log("timer nap has been in on_timer for", 20s));
    const auto ready = http_get(admin_address(*host), "/ready");
    CHECK(ready.status == 503);
    CHECK(ready.body.find("timer nap has been in on_timer") != std::string::npos);
    const auto asked = std::chrono::steady_clock::now();
    CHECK(host->stop(SIGTERM, 20s) == 2);
    CHECK(std::chrono::steady_clock::now() - asked < 5s);
    CHECK(host->log().find("timer nap (in its callback) did not return within shutdown_timeout") != std::string::npos);
}
