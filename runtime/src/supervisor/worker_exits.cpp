// A worker's exit (supervisor/supervisor_process.hpp): reaped, told apart (a crash, a kill for a hang or for
// memory, a clean stop), counted in the crash ledger against the record it was processing, and restarted after
// its backoff or failed past its restart limit.
#include <sys/wait.h>

#include "supervisor/supervisor_process.hpp"

namespace mephisto::supervisor_detail {

void Supervisor::reap() {
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        for (auto& [name, w] : workers_)
            if (w->status.pid == pid) {
                on_exit(*w, status);
                break;
            }
    }
}

void Supervisor::on_exit(Worker& w, int wait_status) {
    std::string cause = describe_exit(wait_status), fault;
    const bool sigkill = WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL;
    if (sigkill && w.hung) {
        fault = "callback_timeout";
        cause = "killed for hang: " + w.hung->agent + "'s " + w.hung->callback +
                (w.hung->about_an_event() ? " on " + w.hung->topic + "[" + std::to_string(w.hung->partition) + "]@" +
                                                std::to_string(w.hung->offset)
                                          : std::string()) +
                " ran past callback_timeout " + format_duration(w.callback_timeout);
    } else if (sigkill && w.limits && w.limits->oom_kills() > w.oom_kills_before) {
        fault = "memory";
        cause = "killed for memory: past limits.memory " + format_byte_size(w.memory_limit);
    }
    {
        std::lock_guard lock(mu_);
        w.status.pid = -1;
        w.status.last_exit = cause;
    }
    if (state_of(w) == "stopping") {
        if (w.files.empty()) {
            log_->info("worker {} stopped ({}); its files are gone", w.status.name, cause);
            forget(w.status.name);
            return;
        }
        set_state(w, "stopped", "stopped on request");
        log_->info("worker {} stopped ({})", w.status.name, cause);
        if (std::exchange(w.respawn_when_stopped, false)) spawn(w);
        return;
    }
    const bool clean = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
    if (clean) {  // someone stopped it on purpose (SIGTERM to the worker itself): not a crash
        set_state(w, "stopped", "exited on its own, with code 0 (a SIGTERM sent to it?); SIGHUP the supervisor to start it");
        log_->warn("worker {} exited with code 0 without being asked; not restarted (SIGHUP restarts it)", w.status.name);
        return;
    }
    count_crash(w, wait_status, fault);
    const auto decision = w.policy->on_failure(Clock::now());
    if (decision.quarantine) {
        const std::string why = cause + "; it crashed " + std::to_string(decision.restarts_in_window) + " times within " +
                                format_duration(w.restart.within) + ", more than supervisor.max_restarts (" +
                                std::to_string(w.restart.max_restarts) + ")";
        set_state(w, "failed", why);
        log_->error("pipeline(s) {} failed: {}; not restarted again until the file changes or SIGHUP; the other "
                    "pipelines run on",
                    fmt::join(w.status.pipelines, ", "), why);
        return;
    }
    {
        std::lock_guard lock(mu_);
        w.status.restarts++;
    }
    w.restart_at = Clock::now() + decision.delay;
    set_state(w, "restarting", cause);
    log_->error("worker {} {}; restarting it in {} ms (restart {} within supervisor.within); the other pipelines run on",
                w.status.name, cause, decision.delay.count(), decision.restarts_in_window);
}

void Supervisor::forget(std::string name) {
    std::unique_ptr<Worker> gone;
    {
        std::lock_guard lock(mu_);
        auto it = workers_.find(name);
        if (it == workers_.end()) return;
        gone = std::move(it->second);
        workers_.erase(it);
    }
}

void Supervisor::count_crash(Worker& w, int wait_status, const std::string& killed_for) {
    const auto calls = call_slots::read(w.dir / "calls");
    auto culprit = killed_for == "callback_timeout" ? w.hung : call_slots::culprit(calls);
    // Killed for memory: the call that had run longest is the one that kept allocating (the others, a
    // pass-through's, last microseconds); not "the only call", which another partition's lane breaks.
    if (!culprit && killed_for == "memory") culprit = call_slots::culprit(calls, call_slots::now_ns());
    if (!culprit || !culprit->about_an_event()) return;
    std::string fault = killed_for;
    if (fault.empty() && culprit->fault == call_slots::kFaultExit) {
        fault = "exit";
    } else if (fault.empty()) {
        const int sig = culprit->fault != 0 ? culprit->fault : (WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0);
        const char* abbrev = sig > 0 ? sigabbrev_np(sig) : nullptr;
        fault = abbrev ? std::string("SIG") + abbrev : "unknown";
    }
    auto counted = crash_ledger::add_crash(w.dir / "crashes.json", *culprit, fault, wall_ms());
    if (!counted) {
        log_->error("worker {}: cannot count the crash of {}: {}", w.status.name, culprit->topic, counted.error());
        return;
    }
    log_->error("pipeline {}, agent {}: record {} crashed the worker ({}, plugin {} sha1 {}), {} time(s) so far",
                counted->pipeline, counted->agent, counted->place(), fault, counted->plugin, counted->sha1,
                counted->crashes);
}

void Supervisor::watch_for_hang(Worker& w) {
    if (w.callback_timeout.count() <= 0 || w.status.pid <= 0 || w.hung) return;
    if (const auto state = state_of(w); state != "running" && state != "starting") return;
    const int64_t started_before =
        call_slots::now_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(w.callback_timeout).count();
    auto hung = call_slots::culprit(call_slots::read(w.dir / "calls", true), started_before);
    if (!hung) return;
    w.hung = hung;
    log_->error("worker {}: {}'s {} on {} has run past callback_timeout {}: killing the worker (it counts as a crash "
                "of that record)",
                w.status.name, hung->agent, hung->callback,
                hung->about_an_event() ? hung->topic + "[" + std::to_string(hung->partition) + "]@" + std::to_string(hung->offset)
                                       : std::string("no record"),
                format_duration(w.callback_timeout));
    ::kill(w.status.pid, SIGKILL);
}

}  // namespace mephisto::supervisor_detail
