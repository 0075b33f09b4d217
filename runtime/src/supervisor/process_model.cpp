#include "supervisor/process_model.hpp"

#include <algorithm>

#include "common/call_slots.hpp"
#include "common/logging.hpp"
#include "supervisor/crash_ledger.hpp"
#include "supervisor/worker_channel.hpp"
#include "supervisor/worker_process.hpp"

namespace mephisto {

std::vector<std::filesystem::path> pipeline_files(const std::optional<std::filesystem::path>& dir,
                                                  const std::vector<std::filesystem::path>& given) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    if (dir) {
        for (const auto& entry : std::filesystem::directory_iterator(*dir, ec))
            if (entry.is_regular_file() && entry.path().extension() == ".yaml") files.push_back(entry.path());
    } else {
        for (const auto& f : given)
            if (std::filesystem::is_regular_file(f, ec)) files.push_back(std::filesystem::absolute(f).lexically_normal());
    }
    std::sort(files.begin(), files.end());
    return files;
}

namespace {

// The pipelines of `options` as they would run, for the choice of the process model.
bool needs_supervisor(const RunOptions& options) {
    if (options.isolation) return *options.isolation == Isolation::process;
    const auto& given = options.host.files;
    const bool directory = given.size() == 1 && std::filesystem::is_directory(given.front());
    std::optional<std::filesystem::path> dir;
    if (directory) dir = std::filesystem::absolute(given.front()).lexically_normal();
    const auto files = pipeline_files(dir, given);
    bool any_process = false, all_set = true;
    std::vector<std::string> unenforced;
    for (const auto& file : files) {
        auto config = load_with_overrides(file, options.host);
        if (!config) continue;  // reported by whichever runs it
        if (!config->isolation) all_set = false;
        else if (*config->isolation == Isolation::process) any_process = true;
        if (config->callback_timeout.count() > 0 || config->memory_limit > 0 || config->cpu_limit > 0)
            unenforced.push_back(file.string());
    }
    // Unset: a directory or several files run isolated, a single file runs in this process. A directory with no
    // file yet runs under the supervisor too: the pipelines added to it later (a deployment) get their workers.
    const bool supervised = ((!all_set || files.empty()) && (directory || files.size() > 1)) || any_process;
    if (!supervised)
        for (const auto& file : unenforced)
            logger("supervisor")->warn("{}: callback_timeout and limits apply to worker processes only; this pipeline "
                                       "runs in the host process, where they are not enforced (isolation: process "
                                       "runs it in a worker)",
                                       file);
    return supervised;
}

}  // namespace

int run_pipelines(const RunOptions& options) {
    if (!needs_supervisor(options)) return run_host(options.host);
    return run_supervisor(options);
}

int run_worker(HostOptions options, pid_t supervisor, const std::string& embedded_bootstrap,
               const std::filesystem::path& worker_dir) {
    auto log = logger("worker");
    if (!follow_parent(supervisor)) {
        log->error("the supervisor (pid {}) is gone; not starting", supervisor);
        return 1;
    }
    if (auto st = call_slots::share(worker_dir / "calls"); !st)
        log->warn("{}; a crash cannot be pinned on its record", st.error());
    auto poison = crash_ledger::read(worker_dir / "crashes.json");
    if (!poison) log->error("{}; no record is quarantined", poison.error());
    else options.poison = std::move(*poison);
    auto link = std::make_shared<SupervisorLink>(kWorkerChannelFd, embedded_bootstrap);
    if (!embedded_bootstrap.empty()) options.embedded_broker = link;
    options.watch_pipeline_files = false;  // the supervisor watches them and sends SIGHUP
    options.admin_listen.reset();  // the supervisor's admin API answers for the workers, asking them here:
    options.admin_socket = worker_dir / "admin.sock";
    options.worker_name = worker_dir.filename().string();
    return run_host(options, [link] { link->ready(); });
}

}  // namespace mephisto
