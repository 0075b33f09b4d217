// Pipelines from a directory (issue 4): every *.yaml in the directory given to `mephisto run` is a pipeline;
// a file added starts one, a file removed stops its pipeline cleanly, an edited file changes only its own
// pipeline, and a file that does not load is reported with file, line and column while the rest runs on.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

std::string pipeline(const std::string& app, const std::string& from, const std::string& to) {
    return pipeline_yaml(app, "topics: {" + from + ": {partitions: 2}, " + to + ": {partitions: 2}}\n"
           "agents:\n  relay: {plugin: test_agents, agent: forward, from: " + from + ", sinks: [" + to + "]}\n");
}

// Writes `text` to `path` the way an editor or a deployment should: beside it, then a rename.
void place(const std::filesystem::path& path, const std::string& text) {
    const auto partial = path.parent_path() / ("." + path.filename().string() + ".partial");
    std::ofstream(partial) << text;
    std::filesystem::rename(partial, path);
}

// Sends one value to `from` and waits until it comes out of `to`.
bool flows(const std::string& bootstrap, const std::string& from, const std::string& to, const std::string& value) {
    produce(bootstrap, from, {{"k", value, {}, -1}});
    TopicReader out(bootstrap, to, 2);
    return out.read_until([&](const std::vector<Record>& r) {
        return std::any_of(r.begin(), r.end(), [&](const Record& x) { return x.value == value; });
    }, 20s);
}

}  // namespace

TEST_CASE("a pipeline directory: files added start pipelines, removed ones stop, edits change only their own") {
    Broker broker;
    for (const char* t : {"a_in", "a_out", "a_out2", "b_in", "b_out"}) broker.create_topic(t, 2);
    TempDir dir;
    const auto pipelines = dir.path() / "pipelines";
    std::filesystem::create_directories(pipelines);
    place(pipelines / "a.yaml", pipeline("pa", "a_in", "a_out"));
    // One process: the supervisor's handling of the same directory is tested in tests/isolation.
    auto host = start_host(pipelines, broker.bootstrap(), dir.path() / "host.log", {"--isolation", "none"});
    CHECK(host->log().find("1 pipeline file(s)") != std::string::npos);
    REQUIRE(flows(broker.bootstrap(), "a_in", "a_out", "a-1"));

    // Added: b starts; a never pauses (one assignment only, no revocation).
    place(pipelines / "b.yaml", pipeline("pb", "b_in", "b_out"));
    REQUIRE(host->await_log("pipeline pb from " + (pipelines / "b.yaml").string() + " started", 30s));
    CHECK(flows(broker.bootstrap(), "b_in", "b_out", "b-1"));
    CHECK(flows(broker.bootstrap(), "a_in", "a_out", "a-2"));

    // A file that does not load: reported with file, line and column; nothing else changes.
    place(pipelines / "c.yaml", "app: {id: pc}\ntopics: {c: {partitions: two}}\n");
    REQUIRE(host->await_log("c.yaml:2:26: topics.c.partitions must be an integer", 30s));
    CHECK(host->log().find("not started") != std::string::npos);
    CHECK(flows(broker.bootstrap(), "b_in", "b_out", "b-2"));
    std::filesystem::remove(pipelines / "c.yaml");

    // Removed: b stops cleanly (its input committed); a runs on.
    std::filesystem::remove(pipelines / "b.yaml");
    REQUIRE(host->await_log("pipeline pb stopped", 30s));
    CHECK(await_caught_up(broker.bootstrap(), "pb", "b_in", 2, 10s));
    CHECK(flows(broker.bootstrap(), "a_in", "a_out", "a-3"));
    // Through all of that, a was never paused: one assignment, no revocation.
    CHECK(host->count_in_log("[pa] assigned") == 1);
    CHECK(host->count_in_log("[pa] revoked") == 0);

    // Edited, in place: a's agent now writes to a_out2; it restarts, the pipeline does not.
    place(pipelines / "a.yaml", pipeline("pa", "a_in", "a_out2"));
    REQUIRE(host->await_log("pipeline pa: " + (pipelines / "a.yaml").string() + " applied in place", 30s));
    CHECK(flows(broker.bootstrap(), "a_in", "a_out2", "a-4"));
    CHECK(host->count_in_log("[pa] revoked") == 0);

    // Edited beyond what a running pipeline can change (the topic it reads): only a restarts.
    place(pipelines / "a.yaml", pipeline("pa", "b_in", "a_out2"));
    REQUIRE(host->await_log("pipeline pa: " + (pipelines / "a.yaml").string() +
                                " changed (the topics the pipeline reads changed (+b_in, -a_in): its consumer must "
                                "rejoin the group",
                            30s));
    REQUIRE(host->await_log("restarting this pipeline", 10s));
    CHECK(flows(broker.bootstrap(), "b_in", "a_out2", "a-5"));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
