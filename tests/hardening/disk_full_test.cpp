// Issue 11, finding 7: a full disk under a RocksDB table stops the host cleanly, naming the state directory and
// the cause, with a non-zero exit (it aborted in librocksdb before, without a word); nothing acknowledged is
// lost: a restart with room to write recovers the table from its changelog and processes the rest. The small
// filesystem is a tmpfs mounted in the host's own mount namespace (unshare, as root), so nothing outside sees it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <unistd.h>

#include <csignal>
#include <set>

#include "harness.hpp"

using namespace mephisto::test;
namespace fs = std::filesystem;

namespace {

std::string table_pipeline(const fs::path& state) {
    return pipeline_yaml("full", "state_dir: " + state.string() + "\n"
                                 "topics: {in: {partitions: 1}}\n"
                                 "tables: {blobs: {value: raw}}\n"
                                 "agents:\n  keep: {plugin: test_agents, agent: fold, from: in, tables: [blobs],"
                                 " params: {table: blobs}}\n");
}

// `mephisto run` in a mount namespace of its own where `state` is a tmpfs of `size`; `before` runs first.
std::unique_ptr<HostProcess> run_on_small_disk(const fs::path& yaml, const fs::path& state, const std::string& size,
                                               const std::string& bootstrap, const fs::path& log,
                                               const std::string& before = "true") {
    const std::string script = "mount -t tmpfs -o size=" + size + " tmpfs " + state.string() + " && " + before +
                               " && exec " + mephisto_binary().string() + " run " + yaml.string() + " --broker kafka://" +
                               bootstrap + " --admin 127.0.0.1:0";
    return std::make_unique<HostProcess>(
        std::vector<std::string>{"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script}, log);
}

}  // namespace

TEST_CASE("a full disk under a table stops the host naming the state directory and the cause, and a restart loses nothing") {
    REQUIRE_MESSAGE(::geteuid() == 0, "mounting a small filesystem needs root (the suite runs as root)");
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("full-blobs-changelog", 1);
    TempDir dir;
    const fs::path state = dir.path() / "state";
    fs::create_directories(state);
    auto yaml = dir.write("p.yaml", table_pipeline(state));
    auto host = run_on_small_disk(yaml, state, "1m", broker.bootstrap(), dir.path() / "first.log");
    REQUIRE(host->await_log("assigned ", 30s));
    // 3 MB of values for a 1 MB disk (and below the 5 MiB a partition of the embedded broker keeps).
    constexpr int kEvents = 150;
    constexpr size_t kSize = 20'000;
    std::vector<Message> blobs;
    for (int i = 0; i < kEvents; ++i) blobs.push_back(Message{"k" + std::to_string(i), std::string(kSize, 'a' + i % 26), {}, -1});
    produce(broker.bootstrap(), "in", blobs);

    CHECK(host->wait(60s) == 1);
    const std::string log = host->log();
    INFO(log);
    CHECK(log.find("cannot write to its store in " + (state / "blobs").string()) != std::string::npos);
    CHECK(log.find("No space left on device") != std::string::npos);
    CHECK(log.find("the state directory's disk is full") != std::string::npos);
    CHECK(log.find("fatal signal") == std::string::npos);  // no abort in librocksdb
    CHECK(log.find("stopping after a failure") != std::string::npos);
    // The commit never passed an input whose change had not reached the changelog.
    TopicReader written(broker.bootstrap(), "full-blobs-changelog", 1);
    REQUIRE(written.read_to_end(30s));
    const int64_t committed = committed_offsets(broker.bootstrap(), "full", "in", 1).at(0);
    MESSAGE("first host: committed " << committed << ", " << written.records().size() << " change(s) in the changelog");
    CHECK(committed <= static_cast<int64_t>(written.records().size()));

    // With room to write (the same, now empty, directory on the real disk), the table recovers from its
    // changelog and the host processes the rest: every input ends up in the table, none was lost.
    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    // Its table recovered first: the inputs may all be committed already, and a stop would cancel the recovery.
    CHECK(second->await_log("table blobs[0]: recovered", 60s));
    CHECK(await_caught_up(broker.bootstrap(), "full", "in", 1, 60s));
    CHECK(second->stop(SIGTERM, 30s) == 0);
    TopicReader changelog(broker.bootstrap(), "full-blobs-changelog", 1);
    REQUIRE(changelog.read_to_end(30s));
    std::set<std::string> keys;
    for (const auto& r : changelog.records())
        if (r.key && r.value && r.value->size() == kSize) keys.insert(*r.key);
    CHECK(keys.size() == kEvents);
    std::string out;
    CHECK(run_cli({"table", "get", yaml.string(), "blobs", "k149"}, dir, out) == 0);
    CHECK(out.size() >= kSize);
}

TEST_CASE("a state directory with no space left at start is refused with the path and the cause") {
    REQUIRE_MESSAGE(::geteuid() == 0, "mounting a small filesystem needs root (the suite runs as root)");
    Broker broker;
    broker.create_topic("in", 1);
    TempDir dir;
    const fs::path state = dir.path() / "state";
    fs::create_directories(state);
    auto yaml = dir.write("p.yaml", table_pipeline(state));
    auto host = run_on_small_disk(yaml, state, "1m", broker.bootstrap(), dir.path() / "host.log",
                                  "(dd if=/dev/zero of=" + (state / "filler").string() + " bs=64k 2>/dev/null || true)");
    CHECK(host->wait(60s) == 1);
    const std::string log = host->log();
    INFO(log);
    CHECK(log.find((state / "blobs").string()) != std::string::npos);
    CHECK(log.find("No space left on device") != std::string::npos);
    CHECK(log.find("fatal signal") == std::string::npos);
}
