#include "supervisor/worker_process.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "common/crash_report.hpp"

namespace mephisto {

namespace {

// Writes this process's id into `file` (a cgroup.procs): async-signal-safe, for the child before exec.
bool join_group(const char* file) {
    char digits[24];
    int n = 0;
    for (pid_t pid = ::getpid(); pid > 0 && n < 23; pid /= 10) digits[n++] = static_cast<char>('0' + pid % 10);
    char text[24];
    for (int i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
    const int fd = ::open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::write(fd, text, static_cast<size_t>(n)) == n;
    ::close(fd);
    return ok;
}

}  // namespace

Result<pid_t> spawn_worker(const std::vector<std::string>& args, int channel_fd, const ChildLimits& limits) {
    // Everything the child needs is prepared before the fork: a multi-threaded parent's child may only make
    // async-signal-safe calls until it executes.
    std::vector<std::string> argv_strings;
    argv_strings.push_back("mephisto");
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    std::vector<const char*> groups;
    for (const auto& file : limits.join) groups.push_back(file.c_str());

    // The worker's environment: the supervisor's, less NOTIFY_SOCKET (only the service's main process tells
    // systemd its state; common/service_manager.hpp). Made before the fork: the child only calls execve.
    std::vector<char*> environment;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) environment.push_back(*e);
    environment.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) return make_error(std::string("fork: ") + strerror(errno));
    if (pid > 0) return pid;

    // The child.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) _exit(127);
    // Its limits before anything of the worker runs. A group it cannot enter leaves it unlimited: it is
    // started anyway, and says so on stderr (the supervisor's).
    for (const char* file : groups)
        if (!join_group(file)) {
            static const char kWhy[] = "mephisto worker: cannot enter the control group of its limits; runs unlimited: ";
            (void)!::write(2, kWhy, sizeof kWhy - 1);
            (void)!::write(2, file, strlen(file));
            (void)!::write(2, "\n", 1);
        }
    if (limits.address_space > 0) {
        const rlimit bound{limits.address_space, limits.address_space};
        (void)::setrlimit(RLIMIT_AS, &bound);
    }
    if (channel_fd == kWorkerChannelFd) {
        const int flags = ::fcntl(channel_fd, F_GETFD);
        if (flags < 0 || ::fcntl(channel_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0) _exit(127);
    } else if (::dup2(channel_fd, kWorkerChannelFd) < 0) {
        _exit(127);
    }
    ::syscall(SYS_close_range, kWorkerChannelFd + 1, ~0U, 0);
    // SIGTERM, SIGINT and SIGHUP stay blocked, pending until the worker's signal thread takes them: one sent
    // while the worker starts must not kill it by the default action.
    sigset_t blocked;
    sigemptyset(&blocked);
    for (int sig : {SIGHUP, SIGINT, SIGTERM}) sigaddset(&blocked, sig);
    ::sigprocmask(SIG_SETMASK, &blocked, nullptr);
    for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGCHLD, SIGPIPE}) ::signal(sig, SIG_DFL);
    ::execve("/proc/self/exe", argv.data(), environment.data());
    _exit(127);
}

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        return std::string("killed by ") + (abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig)) +
               (WCOREDUMP(status) ? " (core dumped)" : "");
    }
    if (WIFEXITED(status)) {
        const int code = WEXITSTATUS(status);
        std::string what = "exited with code " + std::to_string(code);
        if (code == 0) return what;
        if (code == kExitPluginExited) return what + " (a plugin exited the process)";
        if (code == 127) return what + " (the worker could not be started)";
        if (code > 128 && code < 128 + 65) {
            const char* abbrev = sigabbrev_np(code - 128);
            if (abbrev) return what + " (SIG" + abbrev + ")";
        }
        return what;
    }
    return "ended with wait status " + std::to_string(status);
}

bool follow_parent(pid_t parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
    return ::getppid() == parent;
}

}  // namespace mephisto
