// ack: manual (Faust's acks=False with stream.ack): an event is done when the agent acknowledges it, possibly
// in a later callback, not when its callback returns. Unacknowledged events are never committed; they come
// again after a crash, and an instance's successor gets the ones it left.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

std::filesystem::path write_pipeline(const TempDir& dir, const std::string& app, const std::string& extra = "") {
    return dir.write("p.yaml", pipeline_yaml(app,
                                   "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                                   "agents:\n"
                                   "  writer: {plugin: test_agents, agent: acker, from: in, sinks: [out], ack: manual" +
                                   extra + "}\n"));
}

uint64_t agent_stat(const std::string& admin, const std::string& stat) {
    const auto agents = nlohmann::json::parse(http_get(admin, "/agents").body);
    return agents.empty() ? 0 : agents[0][stat].get<uint64_t>();
}

int64_t committed(const Broker& broker, const std::string& group) {
    return committed_offsets(broker.bootstrap(), group, "in", 1).at(0);
}

}  // namespace

TEST_CASE("ack: manual: only acknowledged events commit, and on_revoked acknowledges the rest before the last commit") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = write_pipeline(dir, "acks");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    produce_sequence(broker.bootstrap(), "in", 0, 25, 1);
    // Acknowledged ten at a time: 20 are, 5 wait.
    REQUIRE(await([&] { return agent_stat(admin, "processed") == 25 && agent_stat(admin, "unacked") == 5; }, 30s));
    REQUIRE(await([&] { return committed(broker, "acks") >= 20; }, 30s));
    CHECK(committed(broker, "acks") == 20);
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(committed(broker, "acks") == 25);

    // Nothing comes again after the restart: all 25 were acknowledged and committed.
    auto again = start_host(yaml, broker.bootstrap(), dir.path() / "again.log");
    produce_sequence(broker.bootstrap(), "in", 25, 1, 1);
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 26; }, 30s));
    out.read_for(500ms);
    const auto counts = out.value_counts();
    CHECK(counts.size() == 26);
    for (const auto& [value, n] : counts) CHECK_MESSAGE(n == 1, value);
    CHECK(again->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("ack: manual: after a SIGKILL the unacknowledged events are processed again") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = write_pipeline(dir, "crash");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    produce_sequence(broker.bootstrap(), "in", 0, 25, 1);
    REQUIRE(await([&] { return agent_stat(admin, "unacked") == 5 && committed(broker, "crash") >= 20; }, 30s));
    CHECK(host->stop(SIGKILL, 30s).has_value());
    CHECK(committed(broker, "crash") == 20);

    auto again = start_host(yaml, broker.bootstrap(), dir.path() / "again.log");
    const std::string admin_again = admin_address(*again);
    REQUIRE(await([&] { return agent_stat(admin_again, "processed") == 5; }, 30s));
    CHECK(again->stop(SIGTERM, 30s) == 0);
    CHECK(committed(broker, "crash") == 25);
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_to_end(30s));
    const auto counts = out.value_counts();
    CHECK(counts.size() == 25);
    for (int i = 0; i < 25; ++i) {
        const auto it = counts.find("seq-" + std::to_string(i));
        REQUIRE(it != counts.end());
        CHECK_MESSAGE(it->second == (i >= 20 ? 2 : 1), "seq-" << i);  // the 5 unacknowledged came again
    }
}

TEST_CASE("ack: manual: an instance restarted by its supervisor gets the events its predecessor left unacknowledged") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = write_pipeline(dir, "successor",
                               ", params: {fail_on: seq-7},\n           on_error: {retry: 1, backoff: 10ms, then: skip},\n"
                               "           supervisor: {backoff: 10ms, max_backoff: 20ms}");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    produce_sequence(broker.bootstrap(), "in", 0, 20, 1);
    // seq-0..6 are held when seq-7 fails; the next instance gets them first, then seq-7 fails again and is
    // skipped, and seq-8.. follow. Ten at a time are acknowledged: seq-0..6 and 8..10, then 11..19 wait.
    REQUIRE(await([&] { return agent_stat(admin, "skipped") == 1 && agent_stat(admin, "unacked") == 9; }, 30s));
    REQUIRE(await([&] { return committed(broker, "successor") >= 11; }, 30s));
    CHECK(committed(broker, "successor") == 11);
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 7 * 3 + 12; }, 30s));
    const auto counts = out.value_counts();
    for (int i = 0; i < 7; ++i) CHECK_MESSAGE(counts.at("seq-" + std::to_string(i)) == 3, "seq-" << i);
    CHECK(counts.count("seq-7") == 0);
    for (int i = 8; i < 20; ++i) CHECK_MESSAGE(counts.at("seq-" + std::to_string(i)) == 1, "seq-" << i);
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(committed(broker, "successor") == 20);
}
