#pragma once
// The channel between the supervisor and one worker process: a Unix socketpair (SOCK_SEQPACKET, so each
// message keeps its bounds) made before the fork, whose worker end the worker inherits as a file descriptor.
// No path names it, so nothing else on the machine can connect to it.
//
// Messages are text, a verb and its lines, each at most kMaxWorkerMessage bytes:
//   worker -> supervisor  "topics\n<partitions> <name>\n..."  create these on the embedded broker;
//                                                             answered "ok" or "error <why>"
//   worker -> supervisor  "ready"                              the worker's pipelines run (no answer)
// The supervisor never asks: it stops and reloads a worker with signals (SIGTERM, SIGHUP).
#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.hpp"
#include "kafka/topic_provisioner.hpp"

namespace mephisto {

inline constexpr size_t kMaxWorkerMessage = 64 * 1024;

// Sends one message; false when the peer is gone. THREAD: one sender at a time per descriptor.
bool send_worker_message(int fd, const std::string& message);
// Receives one message; nullopt at end of file or on an error (the peer is gone).
std::optional<std::string> receive_worker_message(int fd);

// The worker's end: the supervisor's embedded broker, as a TopicProvisioner, and the "ready" notice.
class SupervisorLink final : public TopicProvisioner {
public:
    SupervisorLink(int fd, std::string bootstrap) : fd_(fd), bootstrap_(std::move(bootstrap)) {}
    ~SupervisorLink() override;
    const std::string& bootstrap() const override { return bootstrap_; }
    Status create_topic(const std::string& name, int partitions) override;
    Status create_topics(const std::vector<std::pair<std::string, int>>& topics,
                         const std::atomic<bool>* cancel = nullptr) override;
    void ready();

private:
    Status request(const std::string& message);
    int fd_;
    std::string bootstrap_;
    std::mutex mu_;  // one request and its answer at a time
};

// The supervisor's end of one worker's channel: a thread that answers the worker's requests until the worker
// closes its end (it exited) or the channel is destroyed.
class WorkerChannel {
public:
    struct Handlers {
        // Creates topics; returns an error message, empty on success. Null: no embedded broker.
        std::function<std::string(const std::vector<std::pair<std::string, int>>&)> create_topics;
        std::function<void()> ready;
    };
    // Makes the socketpair; `worker_fd()` is the end to hand to the child (not close-on-exec).
    static Result<std::unique_ptr<WorkerChannel>> open(Handlers handlers);
    ~WorkerChannel();
    int worker_fd() const { return worker_fd_; }
    // After the fork: the parent closes the child's end and starts answering.
    void start();

private:
    WorkerChannel() = default;
    void serve();
    Handlers handlers_;
    int fd_ = -1, worker_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::thread thread_;
};

}  // namespace mephisto
