// Issue 11, finding 7 (RELIABILITY 12): broker faults are reported. /ready names a broker that cannot be
// reached, from the start or when it goes away, and turns ready again when it is back; past
// broker_unreachable_timeout the host exits non-zero; a restarted host shows the group's committed offset (and
// so the right lag) before it commits anything itself.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;

namespace {

// A loopback port nothing listens on.
int closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    ::close(fd);
    return ntohs(sa.sin_port);
}

}  // namespace

TEST_CASE("with no broker reachable, /ready names the broker and why, and broker_unreachable_timeout ends the host") {
    TempDir dir;
    const std::string address = "127.0.0.1:" + std::to_string(closed_port());
    auto yaml = dir.write("p.yaml", pipeline_yaml("nobroker", "broker_unreachable_timeout: 4s\n"
                                                              "topics: {in: {partitions: 1}}\n"
                                                              "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in}\n"));
    auto host = start_host(yaml, address, dir.path() / "host.log", {}, false);
    const std::string admin = admin_address(*host);
    HttpReply ready;
    REQUIRE(await([&] {
        ready = http_get(admin, "/ready");
        return ready.body.find("no broker of " + address + " reachable") != std::string::npos;
    }, 20s));
    CHECK(ready.status == 503);
    CHECK(ready.body.find("Connection refused") != std::string::npos);
    CHECK(http_get(admin, "/metrics").body.find("mephisto_broker_reachable{pipeline=\"nobroker\"} 0") != std::string::npos);
    CHECK(host->wait(30s) == 1);
    CHECK(host->log().find("(broker_unreachable_timeout 4s): stopping, so that a service manager can act") !=
          std::string::npos);
}

TEST_CASE("a broker that goes away while the host runs makes /ready say so, until it is back") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("flaky", "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                                                           "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in, sinks: [out]}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    produce(broker.bootstrap(), "in", {{"k", std::string("one"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](auto& r) { return !r.empty(); }, 30s));
    REQUIRE(await([&] { return http_get(admin, "/ready").status == 200; }, 30s));

    broker.set_down(1);
    HttpReply ready;
    CHECK(await([&] {
        ready = http_get(admin, "/ready");
        return ready.status == 503 && ready.body.find("no broker of " + broker.bootstrap() + " reachable") != std::string::npos;
    }, 30s));
    broker.set_up(1);
    CHECK(await([&] { return http_get(admin, "/ready").status == 200; }, 30s));
    CHECK(host->await_log("is reachable again", 10s));
    produce(broker.bootstrap(), "in", {{"k", std::string("two"), {}, -1}});
    CHECK(out.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    CHECK(host->running());  // broker_unreachable_timeout is off by default: the host waited
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a restarted host shows the group's committed offset and the true lag before it commits anything") {
    Broker broker;
    broker.create_topic("in", 2);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("lagcheck", "topics: {in: {partitions: 2}}\n"
                                                              "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in,"
                                                              " params: {drop_on: seq}}\n"));
    auto first = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    produce_sequence(broker.bootstrap(), "in", 0, 2000, 16);
    REQUIRE(await_caught_up(broker.bootstrap(), "lagcheck", "in", 2, 60s));
    CHECK(first->stop(SIGTERM, 30s) == 0);

    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    const std::string admin = admin_address(*second);
    const auto ends = end_offsets(broker.bootstrap(), "in", 2);
    json partitions;
    CHECK(await([&] {
        auto pipelines = json::parse(http_get(admin, "/pipelines").body, nullptr, false);
        if (pipelines.is_discarded() || pipelines.empty()) return false;
        partitions = pipelines[0]["partitions"];
        if (partitions.size() != 2) return false;
        for (const auto& p : partitions)
            if (p["committed"] != ends.at(p["partition"].get<int32_t>()) || p.value("lag", int64_t{-1}) != 0) return false;
        return true;
    }, 20s));
    INFO(partitions.dump());
    for (const auto& p : partitions) CHECK(p["lag"] == 0);  // not the partition's end, as before
    CHECK(second->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a changelog write the broker refuses stops the host without committing the inputs that made it") {
    // Two brokers: the changelog's leader is broker 2, which refuses one produce request for good.
    Broker broker(2);
    broker.create_topic("in", 1);
    broker.create_topic("cl-counts-changelog", 1);
    broker.set_leader("in", 0, 1);
    broker.set_leader("cl-counts-changelog", 0, 2);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("cl", "state_dir: " + (dir.path() / "state").string() + "\n"
                                                        "topics: {in: {partitions: 1}}\n"
                                                        "tables: {counts: {value: int64}}\n"
                                                        "agents:\n  count: {plugin: test_agents, agent: count, from: in, tables: [counts]}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "first.log");
    auto words = [](int n) { return std::vector<Message>(static_cast<size_t>(n), Message{"a", std::string("a"), {}, -1}); };
    produce(broker.bootstrap(), "in", words(10));
    REQUIRE(await_caught_up(broker.bootstrap(), "cl", "in", 1, 30s));
    constexpr int16_t kProduceRequest = 0;
    broker.fail_requests(2, kProduceRequest, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    produce(broker.bootstrap(), "in", words(10));
    CHECK(host->wait(30s) == 1);
    CHECK(host->log().find("delivery failed") != std::string::npos);
    // The ten inputs whose change was lost stay uncommitted, also through the stop's last flush and commit.
    CHECK(committed_offsets(broker.bootstrap(), "cl", "in", 1).at(0) == 10);

    auto second = start_host(yaml, broker.bootstrap(), dir.path() / "second.log");
    REQUIRE(await_caught_up(broker.bootstrap(), "cl", "in", 1, 30s));
    CHECK(second->stop(SIGTERM, 30s) == 0);
    CHECK(int64_table_from_changelog(broker.bootstrap(), "cl-counts-changelog", 1).at("a") == 20);
}
