// Type=notify: a host run by systemd says READY=1 once it serves, RELOADING=1 (with MONOTONIC_USEC) then READY=1
// around a SIGHUP reload, and STOPPING=1 when it stops, on the datagram socket $NOTIFY_SOCKET names. The test plays
// systemd: it binds the socket, starts the host with the variable set, and reads what arrives with the sender's
// pid (SO_PASSCRED). A directory runs under the supervisor: only the supervisor (the service's main process)
// speaks, never a worker.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

struct Notification {
    pid_t sender = 0;
    std::string text;
};

// The service manager's end of $NOTIFY_SOCKET.
class NotifySocket {
public:
    explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        const int on = 1;
        REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        REQUIRE(path.string().size() < sizeof address.sun_path);
        std::strcpy(address.sun_path, path.c_str());
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    }
    ~NotifySocket() { ::close(fd_); }

    // Waits for a notification containing `text`; the ones before it are kept in `seen`.
    std::optional<Notification> await(const std::string& text, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char data[4096];
            char control[CMSG_SPACE(sizeof(ucred))];
            iovec iov{data, sizeof data};
            msghdr m{};
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            m.msg_control = control;
            m.msg_controllen = sizeof control;
            const ssize_t n = ::recvmsg(fd_, &m, 0);
            if (n < 0) continue;
            Notification got;
            got.text.assign(data, static_cast<size_t>(n));
            for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
                    got.sender = reinterpret_cast<ucred*>(CMSG_DATA(c))->pid;
            seen.push_back(got);
            if (got.text.find(text) != std::string::npos) return got;
        }
        return std::nullopt;
    }
    std::vector<Notification> seen;

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

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
