#include "supervisor/worker_channel.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "common/logging.hpp"

namespace mephisto {

bool send_worker_message(int fd, const std::string& message) {
    if (message.size() > kMaxWorkerMessage) return false;
    for (;;) {
        const ssize_t n = ::send(fd, message.data(), message.size(), MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(message.size())) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
}

std::optional<std::string> receive_worker_message(int fd) {
    std::string buffer(kMaxWorkerMessage, '\0');
    for (;;) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n > 0) {
            buffer.resize(static_cast<size_t>(n));
            return buffer;
        }
        if (n < 0 && errno == EINTR) continue;
        return std::nullopt;  // 0: the peer closed its end
    }
}

SupervisorLink::~SupervisorLink() { ::close(fd_); }

Status SupervisorLink::request(const std::string& message) {
    std::lock_guard lock(mu_);
    if (!send_worker_message(fd_, message)) return make_error("the supervisor is gone");
    auto answer = receive_worker_message(fd_);
    if (!answer) return make_error("the supervisor is gone");
    if (*answer == "ok") return {};
    if (answer->rfind("error ", 0) == 0) return make_error(answer->substr(6));
    return make_error("the supervisor answered '" + answer->substr(0, 200) + "'");
}

Status SupervisorLink::create_topic(const std::string& name, int partitions) {
    return create_topics({{name, partitions}});
}

Status SupervisorLink::create_topics(const std::vector<std::pair<std::string, int>>& topics,
                                     const std::atomic<bool>* cancel) {
    // In messages that fit: topic names are at most 249 bytes.
    std::string message = "topics\n";
    for (size_t i = 0; i < topics.size(); ++i) {
        message += std::to_string(topics[i].second) + " " + topics[i].first + "\n";
        if (message.size() > kMaxWorkerMessage - 300 || i + 1 == topics.size()) {
            if (cancel && cancel->load()) return make_error("embedded broker: topic creation interrupted");
            if (auto st = request(message); !st) return st;
            message = "topics\n";
        }
    }
    return {};
}

void SupervisorLink::ready() {
    std::lock_guard lock(mu_);
    (void)send_worker_message(fd_, "ready");
}

Result<std::unique_ptr<WorkerChannel>> WorkerChannel::open(Handlers handlers) {
    std::unique_ptr<WorkerChannel> c(new WorkerChannel());
    c->handlers_ = std::move(handlers);
    int fds[2];
    // Close-on-exec on both: the child's end is dup2'ed onto a fixed descriptor, which clears the flag there.
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
        return make_error(std::string("socketpair: ") + strerror(errno));
    c->fd_ = fds[0];
    c->worker_fd_ = fds[1];
    if (::pipe2(c->stop_pipe_, O_CLOEXEC) != 0) return make_error(std::string("pipe: ") + strerror(errno));
    return c;
}

WorkerChannel::~WorkerChannel() {
    if (thread_.joinable()) {
        (void)!::write(stop_pipe_[1], "x", 1);
        thread_.join();
    }
    for (int fd : {fd_, worker_fd_, stop_pipe_[0], stop_pipe_[1]})
        if (fd >= 0) ::close(fd);
}

void WorkerChannel::start() {
    ::close(worker_fd_);
    worker_fd_ = -1;
    thread_ = std::thread([this] { serve(); });
}

void WorkerChannel::serve() {
    for (;;) {
        pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents) return;
        auto message = receive_worker_message(fd_);
        if (!message) return;  // the worker exited
        std::istringstream in(*message);
        std::string verb;
        std::getline(in, verb);
        if (verb == "ready") {
            if (handlers_.ready) handlers_.ready();
        } else if (verb == "topics") {
            std::vector<std::pair<std::string, int>> topics;
            std::string line, problem;
            while (std::getline(in, line) && problem.empty()) {
                const auto space = line.find(' ');
                int partitions = 0;
                try {
                    partitions = std::stoi(line.substr(0, space));
                } catch (const std::exception&) {
                }
                if (space == std::string::npos || partitions < 1 || partitions > 100'000 || line.size() - space - 1 > 249)
                    problem = "malformed topic line '" + line.substr(0, 300) + "'";
                else
                    topics.emplace_back(line.substr(space + 1), partitions);
            }
            if (problem.empty())
                problem = handlers_.create_topics ? handlers_.create_topics(topics) : "the supervisor runs no embedded broker";
            if (!send_worker_message(fd_, problem.empty() ? "ok" : "error " + problem)) return;
        } else {
            logger("supervisor")->warn("a worker sent an unknown message '{}'; ignored", verb.substr(0, 100));
        }
    }
}

}  // namespace mephisto
