// The supervisor's admin API answers for every worker (issue 12): agents, pipelines, plugins, tables and
// metrics of two pipelines running in worker processes of their own, merged from the workers' admin APIs on
// their Unix sockets; every metric series has a `pipeline` label and promtool accepts the whole; `mephisto
// status` lists each worker's PID, restarts and last exit, also after a worker was killed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A pipeline counting the values of `topic` in its table `counts`.
std::string counting_pipeline(const std::string& app, const std::string& topic, const fs::path& state) {
    return PipelineBuilder(app)
        .state_dir(state)
        .topic(topic, 2)
        .table("counts", "{value: int64}")
        .agent("counter", "{plugin: test_agents, agent: count, from: " + topic + ", tables: [counts]}");
}

json get_json(const std::string& admin, const std::string& path) {
    const auto reply = http_get(admin, path);
    INFO(path << ": " << reply.status << " " << reply.body);
    REQUIRE(reply.status == 200);
    return json::parse(reply.body);
}

const json* find(const json& list, const std::string& key, const std::string& value) {
    for (const auto& entry : list)
        if (entry.value(key, std::string()) == value) return &entry;
    return nullptr;
}

}  // namespace

TEST_CASE("the supervisor's admin API merges every worker's agents, pipelines, tables and metrics") {
    Broker broker;
    broker.create_topic("left_words", 2);
    broker.create_topic("right_words", 2);
    TempDir dir;
    const fs::path pipelines = dir.path() / "pipelines", state = dir.path() / "state";
    fs::create_directories(pipelines);
    // Each pipeline its state directory: both have a table `counts`.
    dir.write("pipelines/left.yaml", counting_pipeline("left", "left_words", state / "left"));
    dir.write("pipelines/right.yaml", counting_pipeline("right", "right_words", state / "right"));
    auto host = start_host(pipelines, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    const bool ready = await([&] { return http_get(admin, "/ready").status == 200; }, 60s);
    INFO(http_get(admin, "/ready").body);
    REQUIRE(ready);

    std::vector<Message> left, right;
    for (int i = 0; i < 30; ++i) left.push_back({"l" + std::to_string(i % 3), "l" + std::to_string(i % 3), {}, -1});
    for (int i = 0; i < 20; ++i) right.push_back({"r" + std::to_string(i % 4), "r" + std::to_string(i % 4), {}, -1});
    produce(broker.bootstrap(), "left_words", left);
    produce(broker.bootstrap(), "right_words", right);
    REQUIRE(await_caught_up(broker.bootstrap(), "left", "left_words", 2, 60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "right", "right_words", 2, 60s));

    // Each worker serves its API on a socket only its owner may use, in its state directory.
    const json workers = get_json(admin, "/workers");
    REQUIRE(workers.size() == 2);
    std::map<std::string, int> pids;
    for (const auto& w : workers) {
        INFO(w.dump());
        CHECK(w["state"] == "running");
        pids[w["worker"]] = w["pid"].get<int>();
        const std::string name = w["worker"];
        const fs::path socket = state / name / "workers" / name / "admin.sock";
        CHECK(w["admin_socket"] == socket.string());
        struct stat st {};
        REQUIRE(::stat(socket.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 0777) == 0600);
    }

    // Agents and pipelines: both workers', each entry naming its worker.
    const json agents = get_json(admin, "/agents");
    REQUIRE(agents.size() == 2);
    for (const auto& [app, processed] : {std::pair{"left", 30}, std::pair{"right", 20}}) {
        const json* a = find(agents, "pipeline", app);
        REQUIRE(a);
        CHECK((*a)["agent"] == "counter");
        CHECK((*a)["processed"] == processed);
        CHECK((*a)["worker"] == app);
        CHECK((*a)["pid"] == pids[app]);
    }
    const json listed = get_json(admin, "/pipelines");
    REQUIRE(listed.size() == 2);
    for (const char* app : {"left", "right"}) {
        const json* p = find(listed, "app", app);
        REQUIRE(p);
        CHECK((*p)["state"] == "running");
        CHECK((*p)["partitions"].size() == 2);
    }
    CHECK(get_json(admin, "/plugins").size() == 2);  // each worker loaded test_agents

    // The status page is the supervisor's too, and its history has both workers' pipelines.
    const auto page = http_get(admin, "/");
    CHECK(page.status == 200);
    CHECK(page.body.find("<title>Mephisto</title>") != std::string::npos);
    REQUIRE(await([&] {
        const json history = get_json(admin, "/history");
        return history.size() == 2 && find(history, "pipeline", "left") && find(history, "pipeline", "right");
    }, 30s));

    // A table read goes to the worker whose pipeline holds the key.
    const json l1 = get_json(admin, "/tables/counts/l1");
    CHECK(l1["value"] == 10);
    const json r3 = get_json(admin, "/tables/counts/r3");
    CHECK(r3["value"] == 5);
    CHECK(http_get(admin, "/tables/counts/nowhere").status == 404);
    CHECK(http_get(admin, "/tables/nothing/l1").status == 404);

    // Metrics: every worker's series, each with a pipeline label, and the supervisor's per worker.
    auto metrics = http_get(admin, "/metrics");
    REQUIRE(metrics.status == 200);
    CHECK(metrics.headers["content-type"].rfind("text/plain; version=0.0.4", 0) == 0);
    const std::string& text = metrics.body;
    CHECK(text.find("mephisto_agent_events_processed_total{pipeline=\"left\",agent=\"counter\"} 30") != std::string::npos);
    CHECK(text.find("mephisto_agent_events_processed_total{pipeline=\"right\",agent=\"counter\"} 20") != std::string::npos);
    CHECK(text.find("mephisto_up{pipeline=\"left\"} 1") != std::string::npos);
    CHECK(text.find("mephisto_worker_running{pipeline=\"right\"} 1") != std::string::npos);
    CHECK(text.find("mephisto_worker_restarts_total{pipeline=\"left\"} 0") != std::string::npos);
    std::istringstream lines(text);
    int samples = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#') continue;
        ++samples;
        INFO(line);
        CHECK(line.find("pipeline=\"") != std::string::npos);
    }
    CHECK(samples > 40);
    const auto file = dir.write("metrics.txt", text);
    std::string promtool;
    CHECK_MESSAGE(shell("promtool check metrics < " + file.string(), promtool) == 0, promtool);

    // POST /reload reaches every worker: nothing changed.
    const auto reload = http_raw(admin, "POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    CHECK(reload.status == 200);
    CHECK(json::parse(reload.body)["changes"].empty());

    // `mephisto status` lists both workers.
    std::string out;
    CHECK(run_cli({"status", "--admin", admin}, dir, out) == 0);
    INFO(out);
    CHECK(out.find("pipeline left (") != std::string::npos);
    CHECK(out.find("pipeline right (") != std::string::npos);
    CHECK(out.find("worker               state        pid  restarts  last exit") != std::string::npos);
    CHECK(out.find(std::to_string(pids["left"])) != std::string::npos);
    CHECK(out.find(std::to_string(pids["right"])) != std::string::npos);

    // A worker killed from outside: restarted; its last exit says how it ended; the other keeps its PID.
    REQUIRE(::kill(pids["left"], SIGKILL) == 0);
    REQUIRE(await([&] {
        const json now = get_json(admin, "/workers");
        const json* w = find(now, "worker", "left");
        return w && (*w)["state"] == "running" && (*w)["restarts"] == 1;
    }, 60s));
    const json after = get_json(admin, "/workers");
    CHECK((*find(after, "worker", "left"))["last_exit"] == "killed by SIGKILL");
    CHECK((*find(after, "worker", "left"))["pid"] != pids["left"]);
    CHECK((*find(after, "worker", "right"))["pid"] == pids["right"]);
    CHECK(run_cli({"status", "--admin", admin}, dir, out) <= 2);  // 2 while the new worker re-joins its group
    CHECK(out.find("killed by SIGKILL") != std::string::npos);
    CHECK(http_get(admin, "/metrics").body.find("mephisto_worker_restarts_total{pipeline=\"left\"} 1") != std::string::npos);

    // A third pipeline whose table would share left's RocksDB directory is refused, and said so; the others run on.
    dir.write("pipelines/clash.yaml", counting_pipeline("clash", "left_words", state / "left"));
    REQUIRE(await([&] { return find(get_json(admin, "/workers"), "worker", "clash") != nullptr; }, 30s));
    const json refused = *find(get_json(admin, "/workers"), "worker", "clash");
    CHECK(refused["state"] == "refused");
    CHECK(refused["reason"].get<std::string>().find("table counts would be stored in " + (state / "left" / "counts").string() +
                                                    ", which " + (pipelines / "left.yaml").string() + " uses already") !=
          std::string::npos);
    CHECK(http_get(admin, "/health").status == 503);
    CHECK((*find(get_json(admin, "/workers"), "worker", "right"))["pid"] == pids["right"]);

    CHECK(host->stop(SIGTERM, 60s) == 0);
    for (const char* w : {"left", "right"}) CHECK(!fs::exists(state / w / "workers" / w / "admin.sock"));
}
