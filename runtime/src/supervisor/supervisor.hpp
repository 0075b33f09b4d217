#pragma once
// The supervisor: `mephisto run` with a pipeline directory or several files runs each pipeline in a worker
// process of its own (the pipelines with `isolation: none` share one), the way PostgreSQL's postmaster or
// nginx's master process runs theirs. A worker is today's host running its pipeline(s); the supervisor
//  - starts one per pipeline, and restarts one that dies by a signal or exits non-zero, after a capped
//    exponential backoff, unless it crashed more than `supervisor.max_restarts` times within `within`: then its
//    pipeline is failed, reported, and left alone until its file changes or SIGHUP; the others run on;
//  - passes SIGTERM, SIGINT and SIGHUP to every worker; a second SIGTERM kills them at once;
//  - dies with its workers: each asks the kernel for SIGKILL when the supervisor dies (PR_SET_PDEATHSIG);
//  - handles the pipeline files: a file added starts its worker, a file edited reloads it (SIGHUP), a file
//    removed stops it;
//  - runs the embedded broker when a pipeline asks for one, and creates topics on it for the workers;
//  - serves the admin API, which says which pipeline is down or restarting, and why.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "host/host.hpp"

namespace mephisto {

struct RunOptions {
    HostOptions host;
    std::optional<Isolation> isolation;  // --isolation: overrides every file's
    std::vector<std::string> worker_log_args;  // --log-format ... as given to this process, passed on to workers
};

// `mephisto run`: chooses the process model (a single file, or only pipelines with isolation none: one process,
// as before; otherwise the supervisor and its workers) and runs until stopped. Returns the exit code.
int run_pipelines(const RunOptions& options);

// A worker's state as the admin API and `mephisto status` show it.
struct WorkerStatus {
    std::string name;  // the app id, or "shared" for the pipelines with isolation none
    std::vector<std::string> pipelines;  // app ids
    std::vector<std::string> files;
    std::string state;  // starting, running, restarting, failed, stopping, stopped
    pid_t pid = -1;
    int restarts = 0;        // since the supervisor started
    std::string last_exit;   // "killed by SIGSEGV", "exited with code 1"...; empty: never exited
    std::string reason;      // why it is restarting or failed, or stopped
    int64_t since_ms = 0;    // wall clock of the last state change
    std::string admin_socket;  // its admin API, for the supervisor's (<state_dir>/workers/<name>/admin.sock)
};

// `mephisto worker`: one worker process, started by the supervisor (not by hand). Runs `options` with the
// embedded broker, if any, reached through the supervisor on descriptor kWorkerChannelFd.
// `worker_dir` holds what the supervisor reads after a crash: the calls in progress and the crash ledger.
int run_worker(HostOptions options, pid_t supervisor, const std::string& embedded_bootstrap,
               const std::filesystem::path& worker_dir);

}  // namespace mephisto
