// The mock cluster binds each mock broker to 127.0.0.1 port 0 and offers no setting to choose the port or the
// address. To give `mephisto broker --port P [--address IP]` and `broker: {embedded: {port: P}}` a fixed,
// documented address, this file interposes bind(2): while (and only while) this thread creates a mock cluster, a
// bind of an IPv4 loopback socket to port 0 is redirected to the requested port and address (the mock advertises
// the address its socket has, so clients elsewhere, in another network namespace say, are sent there). The executable exports the symbol
// (-Wl,--export-dynamic-symbol=bind, set by the runtime target) so librdkafka's call resolves here; start()
// then verifies the port it got, so a build without the export fails loudly instead of silently listening
// elsewhere.
#include "kafka/embedded_broker.hpp"

#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/logging.hpp"

namespace {

// Per-thread so no other thread's sockets are ever touched. Only the creating thread binds mock sockets
// (rd_kafka_mock_cluster_new creates its brokers synchronously before starting the cluster thread).
thread_local int t_next_port = 0;    // 0: any port
thread_local in_addr_t t_address = 0;  // network order; 0: loopback (interposition off unless a port is set)
thread_local int t_bind_errno = 0;   // errno of a failed redirected bind
thread_local int t_failed_port = 0;

using bind_fn = int (*)(int, const sockaddr*, socklen_t);

}  // namespace

extern "C" int bind(int fd, const sockaddr* addr, socklen_t len) {
    static bind_fn real = reinterpret_cast<bind_fn>(dlsym(RTLD_NEXT, "bind"));
    if ((t_next_port != 0 || t_address != 0) && addr && addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        sockaddr_in sin;
        std::memcpy(&sin, addr, sizeof sin);
        if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            const int port = t_next_port != 0 ? t_next_port++ : 0;
            sin.sin_port = htons(static_cast<uint16_t>(port));
            if (t_address != 0) sin.sin_addr.s_addr = t_address;
            int reuse = 1;  // a fixed port must be reusable right after a previous broker on it exited
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
            int rc = real(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
            if (rc != 0) {
                t_bind_errno = errno;
                t_failed_port = port;
            }
            return rc;
        }
    }
    return real(fd, addr, len);
}

namespace mephisto {

namespace {
std::mutex g_start_mutex;  // one cluster creation at a time keeps the port bookkeeping simple

// librdkafka 2.0.2 cannot fail a mock cluster creation cleanly (its cleanup asserts after a failed bind),
// so a fixed port is probed first, the same way the interposed bind will use it.
Status probe_port(const std::string& address, in_addr_t ip, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return make_error(std::string("embedded broker: socket: ") + std::strerror(errno));
    int reuse = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    sin.sin_addr.s_addr = ip;
    int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    int err = errno;
    if (rc == 0 && listen(fd, 1) != 0) {
        rc = -1;
        err = errno;
    }
    close(fd);
    if (rc == 0) return {};
    return make_error("embedded broker: cannot listen on " + address + ":" + std::to_string(port) + ": " + std::strerror(err) +
                      (err == EADDRINUSE ? " (another broker or program uses it: stop it, or choose another port)" : ""));
}
}  // namespace

EmbeddedBroker::~EmbeddedBroker() {
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::start(int port, int brokers, const std::string& address) {
    std::lock_guard lock(g_start_mutex);
    in_addr ip{};
    if (inet_pton(AF_INET, address.c_str(), &ip) != 1)
        return make_error("embedded broker: '" + address + "' is not an IPv4 address");
    const bool loopback = ip.s_addr == htonl(INADDR_LOOPBACK);
    // Probed first (see probe_port), also at port 0: an address this machine does not have fails here.
    if (port != 0 || !loopback)
        for (int i = 0; i < (port != 0 ? brokers : 1); ++i)
            if (auto st = probe_port(address, ip.s_addr, port != 0 ? port + i : 0); !st) return make_error(st.error());
    std::map<std::string, std::string> props = {{"log_level", "3"}};
    auto conf = make_conf({&props});
    if (!conf) return make_error(conf.error());
    route_logs(conf->get());
    auto rk = make_client(RD_KAFKA_PRODUCER, std::move(*conf));
    if (!rk) return make_error(rk.error());

    std::unique_ptr<EmbeddedBroker> b(new EmbeddedBroker());
    b->owner_ = std::move(*rk);
    t_next_port = port;
    t_address = loopback ? 0 : ip.s_addr;
    t_bind_errno = 0;
    b->cluster_ = rd_kafka_mock_cluster_new(b->owner_.get(), brokers);
    t_next_port = 0;
    t_address = 0;
    if (!b->cluster_) {
        if (t_bind_errno != 0)
            return make_error("embedded broker: cannot listen on " + address + ":" + std::to_string(t_failed_port) + ": " +
                              std::strerror(t_bind_errno) +
                              (t_bind_errno == EADDRINUSE
                                   ? " (another broker or program uses it: stop it, or choose another port)"
                                   : ""));
        return make_error("embedded broker: librdkafka could not create the mock cluster");
    }
    b->bootstrap_ = rd_kafka_mock_cluster_bootstraps(b->cluster_);
    const std::string expected = address + ":" + (port != 0 ? std::to_string(port) : std::string());
    if ((port != 0 || !loopback) && b->bootstrap_.rfind(expected, 0) != 0)
        return make_error("embedded broker: asked for " + expected + " but listens on " + b->bootstrap_ +
                          " (the executable does not export bind; link with mephisto::runtime)");
    b->address_ = ip.s_addr;
    return b;
}

// librdkafka 2.0.2's mock cluster thread polls its sockets and a wake-up pipe, serves its queue of operations,
// then drains the pipe: an operation queued between the serve and the drain loses its wake-up and waits for
// the poll's timeout (up to a second). Creating topics one after another hits that window again and again
// (8,000 topics took two minutes). While a batch is created, a helper connects to a mock broker's listener
// every millisecond: the connection wakes the thread, which serves what waits. 8,000 topics then take seconds.
Status EmbeddedBroker::create_topics(const std::vector<std::pair<std::string, int>>& topics,
                                     const std::atomic<bool>* cancel) {
    if (topics.size() <= 1) return topics.empty() ? Status{} : create_topic(topics.front().first, topics.front().second);
    sockaddr_in listener{};
    listener.sin_family = AF_INET;
    const std::string first = bootstrap_.substr(0, bootstrap_.find(','));
    listener.sin_port = htons(static_cast<uint16_t>(std::stoi(first.substr(first.rfind(':') + 1))));
    listener.sin_addr.s_addr = address_;
    std::atomic<bool> creating{true};
    std::thread waker([&] {
        while (creating.load(std::memory_order_relaxed)) {
            const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0) {
                (void)connect(fd, reinterpret_cast<const sockaddr*>(&listener), sizeof listener);
                close(fd);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    Status result;
    for (const auto& [name, partitions] : topics) {
        if (cancel && cancel->load()) {
            result = make_error("embedded broker: topic creation interrupted");
            break;
        }
        if (auto st = create_topic(name, partitions); !st) {
            result = st;
            break;
        }
    }
    creating = false;
    waker.join();
    return result;
}

Status EmbeddedBroker::create_topic(const std::string& name, int partitions) {
    auto err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions > 0 ? partitions : 4, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return make_error("embedded broker: cannot create topic " + name + ": " + rd_kafka_err2str(err));
    return {};
}

}  // namespace mephisto
