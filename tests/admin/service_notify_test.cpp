// Type=notify: a host run by systemd says READY=1 once it serves, RELOADING=1 (with MONOTONIC_USEC) then READY=1
// around a SIGHUP reload, and STOPPING=1 when it stops, on the datagram socket $NOTIFY_SOCKET names. The test plays
// systemd: it binds the socket, starts the host with the variable set, and reads what arrives with the sender's
// pid (SO_PASSCRED). A directory runs under the supervisor: only the supervisor (the service's main process)
// speaks, never a worker.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "harness.hpp"
#include "notify_socket.hpp"

using namespace mephisto::test;

namespace {

void run_as_service(const std::filesystem::path& target, const std::string& pipelines_word) {
    TempDir dir;
    NotifySocket systemd(dir.path() / "notify.sock");
    ::setenv("NOTIFY_SOCKET", (dir.path() / "notify.sock").c_str(), 1);  // inherited by the host started next
    Broker broker;
    broker.create_topic("words", 4);
    auto host = start_host(target, broker.bootstrap(), dir.path() / "host.log");
    ::unsetenv("NOTIFY_SOCKET");
    const auto ready = systemd.await("READY=1", 60s);
    REQUIRE(ready);
    CHECK(ready->sender == host->pid());
    CHECK(ready->text.find("STATUS=" + pipelines_word) != std::string::npos);

    REQUIRE(::kill(host->pid(), SIGHUP) == 0);
    const auto reloading = systemd.await("RELOADING=1", 30s);
    REQUIRE(reloading);
    CHECK(reloading->text.find("MONOTONIC_USEC=") != std::string::npos);
    const auto again = systemd.await("READY=1", 30s);
    REQUIRE(again);

    CHECK(host->stop(SIGTERM, 30s) == 0);
    const auto stopping = systemd.await("STOPPING=1", 10s);
    REQUIRE(stopping);
    for (const auto& n : systemd.seen) CHECK_MESSAGE(n.sender == host->pid(), "from pid " << n.sender << ": " << n.text);
}

std::string pipeline(const std::string& app, const std::filesystem::path& state) {
    return pipeline_yaml(app, "state_dir: " + state.string() + "\n"
           "topics: {words: {partitions: 4}}\n"
           "agents:\n  relay: {plugin: test_agents, agent: forward, from: words}\n");
}

}  // namespace

TEST_CASE("a host under systemd (Type=notify): READY, RELOADING and READY around SIGHUP, STOPPING") {
    TempDir files;
    const auto yaml = files.write("svc.yaml", pipeline("svc", files.path() / "state"));
    run_as_service(yaml, "running 1 pipeline(s)");
}

TEST_CASE("the supervisor under systemd speaks for the service, its workers never do") {
    TempDir files;
    std::filesystem::create_directories(files.path() / "pipelines.d");
    files.write("pipelines.d/svc.yaml", pipeline("svc", files.path() / "state"));
    run_as_service(files.path() / "pipelines.d", "supervising 1 pipeline worker(s)");
}
