#pragma once
// The supervisor of `mephisto run` with pipelines in worker processes (supervisor/supervisor.hpp): its state and
// its steps, shared by supervisor.cpp (start, files, spawn, stop, the main loop) and worker_exits.cpp (a
// worker's exit: restart, quarantine, crash ledger, hang kills). Internal to the supervisor layer.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "admin/http_server.hpp"
#include "common/byte_size.hpp"
#include "common/call_slots.hpp"
#include "common/duration.hpp"
#include "common/logging.hpp"
#include "common/trusted_path.hpp"
#include "common/wall_clock.hpp"
#include "engine/file_watcher.hpp"
#include "engine/restart_policy.hpp"
#include "kafka/embedded_broker.hpp"
#include "supervisor/crash_ledger.hpp"
#include "supervisor/process_model.hpp"
#include "supervisor/supervisor_admin.hpp"
#include "supervisor/worker_channel.hpp"
#include "supervisor/worker_limits.hpp"
#include "supervisor/worker_process.hpp"
#include "supervisor/supervisor.hpp"

namespace mephisto::supervisor_detail {

using Clock = std::chrono::steady_clock;
inline constexpr const char* kSharedWorker = "shared";  // the worker of the pipelines with isolation none

using mephisto::wall_ms;

class Supervisor {
public:
    explicit Supervisor(const RunOptions& options)
        : options_(options),
          log_(logger("supervisor")),
          host_id_(options.host.host_id.empty() ? generated_host_id() : options.host.host_id) {}
    int run();
    std::vector<WorkerStatus> snapshot() const;

private:
    struct Worker {
        WorkerStatus status;
        std::map<std::filesystem::path, std::string> files;  // file -> SHA-1 of the content it runs
        std::map<std::filesystem::path, std::string> apps;   // file -> app id
        // file -> the directories of its RocksDB tables (<state_dir>/<table>): no two pipelines may share one.
        std::map<std::filesystem::path, std::vector<std::filesystem::path>> table_dirs;
        // <state_dir>/workers/<name>: its calls in progress (call_slots) and its crash ledger.
        std::filesystem::path dir;
        SupervisorSpec restart;
        std::chrono::milliseconds shutdown_timeout{30'000};
        std::unique_ptr<RestartPolicy> policy;
        std::unique_ptr<WorkerChannel> channel;
        Clock::time_point restart_at{};
        Clock::time_point stop_deadline{};
        bool respawn_when_stopped = false;  // its files changed: start it again once it is down
        // limits and callback_timeout, from its pipeline file(s) (the smallest set, for the shared worker).
        Millis callback_timeout{0};
        uint64_t memory_limit = 0;
        double cpu_limit = 0;
        std::unique_ptr<WorkerLimits> limits;  // made at its first start; again when the limits change
        uint64_t oom_kills_before = 0;         // the group's count when this run started
        // The call the supervisor killed this run for: it ran past callback_timeout.
        std::optional<call_slots::CallInProgress> hung;
    };

    // The worker a pipeline belongs to.
    std::string worker_name(const PipelineConfig& c) const {
        const Isolation isolation = options_.isolation ? *options_.isolation : c.isolation.value_or(Isolation::process);
        return isolation == Isolation::process ? c.app_id : kSharedWorker;
    }
    // Adds the pipeline of `file` to its worker (made if new); an error when it cannot run here.
    Status adopt(const std::filesystem::path& file, const PipelineConfig& c, const std::string& sha1);
    Status ensure_embedded_broker(const PipelineConfig& c);
    void spawn(Worker& w);
    void set_state(Worker& w, std::string state, std::string reason = {});
    // A worker's state: the thread of its channel sets it too (when the worker says it runs). Not under mu_.
    std::string state_of(const Worker& w) const;
    // The status's pipelines and files, from `apps`; the caller holds mu_.
    static void list_pipelines(Worker& w);
    // SIGTERM to a running worker, killed if it outlasts its shutdown_timeout; started again once down when
    // `respawn`.
    void ask_to_stop(Worker& w, const std::string& why, bool respawn);
    void reap();
    void on_exit(Worker& w, int wait_status);
    // Removes a worker whose files are gone. Its channel is destroyed outside mu_: the channel's thread may be
    // waiting for mu_ in a handler, and destroying the channel joins it.
    void forget(std::string name);
    // Pins a crash on the record being processed, when the worker's calls in progress name one; `fault` names
    // a kill by the supervisor or the kernel ("callback_timeout", "memory"), else the signal does.
    void count_crash(Worker& w, int wait_status, const std::string& fault);
    // Kills a worker whose callback has run past its callback_timeout.
    void watch_for_hang(Worker& w);
    // The directories of the pipeline's RocksDB tables.
    static std::vector<std::filesystem::path> table_dirs(const PipelineConfig& c);
    // An error when a table of `file` would be stored where another pipeline's is: two workers opening one
    // RocksDB directory, the second would fail to start again and again. The caller holds mu_.
    Status table_clash(const std::filesystem::path& file, const PipelineConfig& c) const;
    // The worker's settings from its pipeline file(s): true when its limits changed.
    static bool take_settings(Worker& w, const PipelineConfig& c);
    void sync_files();
    void restart_failed(const std::string& why);
    void forward(int sig);
    // Stops every worker (SIGTERM), within the longest shutdown_timeout; `why` says what asked.
    int stop(const std::string& why);

    RunOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    const std::string host_id_;  // every worker's id in the cluster view
    std::optional<std::filesystem::path> dir_;
    std::unique_ptr<EmbeddedBroker> broker_;
    mutable std::mutex mu_;  // guards workers_ and refused_: the admin thread and the channels read them
    std::map<std::string, std::unique_ptr<Worker>> workers_;
    std::map<std::filesystem::path, std::pair<std::string, std::string>> refused_;  // file -> (SHA-1, why)
    std::atomic<bool> files_changed_{false};
    std::unique_ptr<FileWatcher> watcher_;
    std::unique_ptr<HttpServer> admin_;
};

}  // namespace mephisto::supervisor_detail
