// The admin HTTP API (issue 4, RELIABILITY 37 and 40): health, readiness, Prometheus metrics that promtool
// accepts, agents, plugins, pipelines and local table reads, on a real host; the bearer token; and requests
// that are malformed or too large are refused while the host carries on.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include <mephisto/mephisto.h>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

std::string pipeline(const std::string& app, const std::filesystem::path& state) {
    return pipeline_yaml(app, "state_dir: " + state.string() + "\n"
           "topics: {words: {partitions: 4}}\n"
           "tables: {counts: {value: int64}}\n"
           "agents:\n  counter: {plugin: test_agents, agent: count, from: words, tables: [counts]}\n");
}

json get_json(const std::string& address, const std::string& path) {
    auto reply = http_get(address, path);
    REQUIRE(reply.status == 200);
    CHECK(reply.headers["content-type"] == "application/json");
    return json::parse(reply.body);
}

}  // namespace

TEST_CASE("the admin API reports health, readiness, agents, plugins, pipelines, tables and metrics of a running host") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline("adm", dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    CHECK(admin.rfind("127.0.0.1:", 0) == 0);  // loopback, as by default (127.0.0.1:6066)

    CHECK(http_get(admin, "/health").status == 200);
    CHECK(await([&] { return http_get(admin, "/ready").status == 200; }, 30s));

    std::vector<Message> words;
    for (int i = 0; i < 50; ++i) words.push_back({"w" + std::to_string(i % 5), "w" + std::to_string(i % 5), {}, -1});
    produce(broker.bootstrap(), "words", words);
    REQUIRE(await_caught_up(broker.bootstrap(), "adm", "words", 4, 60s));

    const json agents = get_json(admin, "/agents");
    REQUIRE(agents.size() == 1);
    CHECK(agents[0]["agent"] == "counter");
    CHECK(agents[0]["processed"] == 50);
    CHECK(agents[0]["quarantined"] == false);

    const json plugins = get_json(admin, "/plugins");
    REQUIRE(plugins.size() == 1);
    CHECK(plugins[0]["name"] == "test_agents");
    // test_agents is built against this tree's header
    CHECK(plugins[0]["abi"] == std::to_string(MPH_ABI_VERSION_MAJOR) + "." + std::to_string(MPH_ABI_VERSION_MINOR));
    CHECK(plugins[0]["agents"].size() == 10);
    std::string sha1;
    REQUIRE(shell("sha1sum " + (test_plugin_dir() / "test_agents.so").string(), sha1) == 0);
    CHECK(sha1.substr(0, 40) == plugins[0]["sha1"].get<std::string>());

    const json pipelines = get_json(admin, "/pipelines");
    REQUIRE(pipelines.size() == 1);
    CHECK(pipelines[0]["app"] == "adm");
    CHECK(pipelines[0]["state"] == "running");
    CHECK(pipelines[0]["partitions"].size() == 4);
    CHECK(await([&] {
        const json now = get_json(admin, "/pipelines");  // (a range over a temporary's member would dangle)
        for (const auto& p : now[0]["partitions"])
            if (!p.contains("lag") || p["lag"] != 0) return false;
        return true;
    }, 20s));

    // A table read is local: counts of keys this host serves, 404 for the rest.
    const json count = get_json(admin, "/tables/counts/w3");
    CHECK(count["value"] == 10);
    CHECK(count["table"] == "counts");
    const auto never = http_get(admin, "/tables/counts/never");
    CHECK(never.status == 404);  // this host serves every partition: the key is nowhere (issue 11, finding 8)
    CHECK(never.body.find("no such key 'never' in table counts") != std::string::npos);
    CHECK(http_get(admin, "/tables/nope/w3").status == 404);
    CHECK(http_get(admin, "/tables/counts").status == 400);

    // /metrics: the figures, in a format promtool accepts.
    auto metrics = http_get(admin, "/metrics");
    REQUIRE(metrics.status == 200);
    CHECK(metrics.headers["content-type"].rfind("text/plain; version=0.0.4", 0) == 0);
    CHECK(metrics.body.find("mephisto_agent_events_processed_total{pipeline=\"adm\",agent=\"counter\"} 50") !=
          std::string::npos);
    CHECK(metrics.body.find("mephisto_agent_processing_seconds_count{pipeline=\"adm\",agent=\"counter\"} 50") !=
          std::string::npos);
    CHECK(metrics.body.find("mephisto_consumer_lag{pipeline=\"adm\",topic=\"words\",partition=\"0\"} 0") !=
          std::string::npos);
    CHECK(metrics.body.find("mephisto_table_keys{pipeline=\"adm\",table=\"counts\"") != std::string::npos);
    const auto file = dir.write("metrics.txt", metrics.body);
    std::string promtool;
    CHECK_MESSAGE(shell("promtool check metrics < " + file.string(), promtool) == 0, promtool);

    // The command line sees the same through the API.
    std::string out;
    CHECK(run_cli({"status", "--admin", admin}, dir, out) == 0);
    CHECK(out.find("host     " + admin + ": ok, ready") != std::string::npos);
    CHECK(out.find("pipeline adm (" + yaml.string() + "): running, 4 partition(s), lag 0") != std::string::npos);
    CHECK(run_cli({"agents", "--admin", admin}, dir, out) == 0);
    CHECK(out.find("adm/counter") != std::string::npos);
    CHECK(out.find(" 50 ") != std::string::npos);

    // The history the status page plots: a sample a second, events/s and lag of the pipeline.
    REQUIRE(await([&] {
        const auto h = http_get(admin, "/history");
        if (h.status != 200) return false;
        const json body = json::parse(h.body, nullptr, false);
        return !body.is_discarded() && body.size() == 1 && body[0]["pipeline"] == "adm" && body[0]["samples"].size() >= 2;
    }, 30s));
    {
        const json history = json::parse(http_get(admin, "/history").body);
        CHECK(history[0]["every_ms"] == 1000);
        int64_t last = 0;
        for (const auto& sample : history[0]["samples"]) {
            CHECK(sample[0].get<int64_t>() > last);  // oldest first
            last = sample[0].get<int64_t>();
            CHECK(sample[1].get<double>() >= 0);
            CHECK((sample[2].is_null() || sample[2].get<int64_t>() >= 0));
        }
    }
    CHECK(http_get(admin, "/").status == 200);
    CHECK(http_get(admin, "/nowhere").status == 404);
    CHECK(http_raw(admin, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").status == 405);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("malformed, oversized and unauthenticated requests are refused and the host carries on (RELIABILITY 40)") {
    Broker broker;
    broker.create_topic("words", 4);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline("guard", dir.path() / "state"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log", {"--admin-token", "s3cret"});
    const std::string admin = admin_address(*host);
    CHECK(host->log().find("a bearer token is required") != std::string::npos);

    auto none = http_get(admin, "/health");
    CHECK(none.status == 401);
    CHECK(none.headers["www-authenticate"] == "Bearer");
    CHECK(http_get(admin, "/health", "wrong").status == 401);
    CHECK(http_get(admin, "/health", "s3cre").status == 401);
    CHECK(http_get(admin, "/health", "s3cret").status == 200);
    // The status page's files hold no data: they load without the token, and the page asks for it; what they read
    // (history included) does not.
    const auto page = http_get(admin, "/");
    CHECK(page.status == 200);
    CHECK(page.headers.at("content-type") == "text/html; charset=utf-8");
    CHECK(page.body.find("<title>Mephisto</title>") != std::string::npos);
    CHECK(page.headers.at("content-security-policy").find("default-src 'self'") != std::string::npos);
    CHECK(http_get(admin, "/ui/status.js").status == 200);
    CHECK(http_get(admin, "/ui/dygraph.min.js").body.size() > 100'000);
    CHECK(http_get(admin, "/ui/nothing.js").status == 401);
    CHECK(http_get(admin, "/history").status == 401);
    CHECK(http_raw(admin, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").status == 401);
    std::string out;
    CHECK(run_cli({"status", "--admin", admin}, dir, out) == 1);
    CHECK(out.find("HTTP 401") != std::string::npos);
    REQUIRE(await([&] { return http_get(admin, "/ready", "s3cret").status == 200; }, 30s));
    CHECK(run_cli({"status", "--admin", admin, "--admin-token", "s3cret"}, dir, out) == 0);

    CHECK(http_raw(admin, "GARBAGE\r\n\r\n").status == 400);
    CHECK(http_raw(admin, "GET / HTTP/1.1\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n").status == 431);
    CHECK(http_raw(admin, "POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" +
                              std::string(200000, 'b')).status == 413);
    CHECK(http_raw(admin, "").status == 0);  // connect and close: nothing to answer

    // Nothing of that reached the pipeline: it still counts, and the API still answers.
    produce(broker.bootstrap(), "words", {{"a", "a", {}, -1}});
    REQUIRE(await_caught_up(broker.bootstrap(), "guard", "words", 4, 60s));
    CHECK(http_get(admin, "/health", "s3cret").status == 200);
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(run_cli({"status", "--admin", admin}, dir, out) == 1);  // the host is gone
    CHECK(out.find("cannot reach the host's admin API at " + admin) != std::string::npos);
}

TEST_CASE("the admin API answers while a table recovers, with readiness and recovery progress (RELIABILITY 37)") {
    TempDir dir;
    const auto state = dir.path() / "state";
    {
        Broker first;
        first.create_topic("words", 4);
        auto yaml = dir.write("p.yaml", pipeline("busy", state));
        auto host = start_host(yaml, first.bootstrap(), dir.path() / "first.log");
        produce(first.bootstrap(), "words", {{"a", "a", {}, -1}});
        REQUIRE(await_caught_up(first.bootstrap(), "busy", "words", 4, 60s));
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
    // A store ahead of its (new, empty) changelog: the partition holding "a" never becomes ready.
    Broker broker;
    broker.create_topic("words", 4);
    auto yaml = dir.write("p.yaml", pipeline("busy", state));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    const std::string admin = admin_address(*host);
    REQUIRE(host->await_log("will not serve until it is reset", 30s));
    CHECK(http_get(admin, "/health").status == 200);
    auto ready = http_get(admin, "/ready");
    CHECK(ready.status == 503);
    CHECK(json::parse(ready.body)["reason"].get<std::string>().find("its tables refuse to serve") != std::string::npos);
    CHECK(http_get(admin, "/tables/counts/a").status == 503);
    json pipelines;
    CHECK(await([&] {
        pipelines = get_json(admin, "/pipelines");
        for (const auto& p : pipelines[0]["partitions"])
            if (p["refused"] == true) return true;
        return false;
    }, 20s));
    INFO(pipelines.dump());
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
