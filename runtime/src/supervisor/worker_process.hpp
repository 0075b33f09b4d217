#pragma once
// Starting a worker process and naming how it ended.
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.hpp"
#include "supervisor/worker_limits.hpp"

namespace mephisto {

// The descriptor a worker finds its channel to the supervisor on (worker_channel.hpp).
inline constexpr int kWorkerChannelFd = 3;

// Forks and executes this program (/proc/self/exe) with `args` (argv[1]...). In the child, before exec: the
// channel end `channel_fd` moves to kWorkerChannelFd, every other descriptor above 2 is closed, SIGTERM, SIGINT
// and SIGHUP stay blocked for the worker's signal thread, and PR_SET_PDEATHSIG makes the kernel SIGKILL the child when the thread that
// forked it dies (so a supervisor killed with SIGKILL leaves no worker processing), and the child enters its
// control groups and takes its RLIMIT_AS (`limits`), so that all of the worker's memory is counted. Fork from
// a thread that lives as long as the supervisor: its main thread.
Result<pid_t> spawn_worker(const std::vector<std::string>& args, int channel_fd, const ChildLimits& limits);

// How a wait status reads in logs and in `mephisto status`: "killed by SIGSEGV", "exited with code 70 (...)".
std::string describe_exit(int wait_status);

// In the worker, first thing: asks for SIGKILL when the supervisor dies, then checks that the supervisor
// `parent` is still its parent (it may have died before the request took effect). False: it is gone.
bool follow_parent(pid_t parent);

}  // namespace mephisto
