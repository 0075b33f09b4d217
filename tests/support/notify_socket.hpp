#pragma once
// The service manager's end of $NOTIFY_SOCKET, for tests of Type=notify: a datagram socket bound where the test
// says, reading each notification with its sender's pid (SO_PASSCRED), as systemd does.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace mephisto::test {

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

}  // namespace mephisto::test
