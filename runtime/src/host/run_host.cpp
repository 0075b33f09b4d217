// `mephisto run` in one process (host/host.hpp run_host): the host's life under its signals, and what it tells
// systemd (common/service_manager.hpp).
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <thread>

#include "common/logging.hpp"
#include "common/service_manager.hpp"
#include "host/host.hpp"

namespace mephisto {

namespace {

// How long a stop asked for while the host starts may wait for the step in progress (a plugin's init, a call
// to the broker) before the process exits without it.
constexpr std::chrono::seconds kStartupStopGrace{2};

// run_host's signals, taken synchronously by one thread for the host's whole life (every other thread blocks
// them): the first SIGINT or SIGTERM asks for a stop, even while the host starts; a second one, or a stop that
// overruns its budget, ends the process at once. SIGHUP asks for a reload.
class SignalThread {
public:
    explicit SignalThread(StartupControl& startup) : startup_(startup) {
        sigemptyset(&signals_);
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&signals_, sig);
        pthread_sigmask(SIG_BLOCK, &signals_, nullptr);  // inherited by every thread started from here on
        thread_ = std::thread([this] { run(); });
    }
    ~SignalThread() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        pthread_kill(thread_.native_handle(), SIGUSR1);
        thread_.join();
    }
    // The main thread waits here for a stop or a reload (or `tick`, to look at the host's health).
    enum class Event { none, stop, reload };
    Event wait(std::chrono::milliseconds tick) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, tick, [&] { return stop_signal_ != 0 || reload_; });
        if (stop_signal_) return Event::stop;
        if (std::exchange(reload_, false)) return Event::reload;
        return Event::none;
    }
    int stop_signal() const {
        std::lock_guard lock(mu_);
        return stop_signal_;
    }
    void started() {
        std::lock_guard lock(mu_);
        starting_ = false;
    }
    // The stop begins: the process ends at once if it outlasts `budget`.
    void stopping(std::chrono::milliseconds budget) {
        std::lock_guard lock(mu_);
        stop_deadline_ = std::chrono::steady_clock::now() + budget;
        stop_budget_ = budget;
    }

private:
    void run() {
        auto log = logger("host");
        for (;;) {
            timespec tick{0, 100'000'000};
            const int sig = sigtimedwait(&signals_, nullptr, &tick);
            std::unique_lock lock(mu_);
            if (done_) return;
            const auto now = std::chrono::steady_clock::now();
            if (sig == SIGINT || sig == SIGTERM) {
                if (stop_signal_ != 0) {
                    log->critical("second {} received; exiting now without a clean stop", strsignal(sig));
                    _exit(2);
                }
                stop_signal_ = sig;
                if (starting_) {
                    startup_.cancel();
                    startup_grace_ = now + kStartupStopGrace;
                    log->info("received {} while starting ({}): stopping", strsignal(sig), startup_.step());
                }
                cv_.notify_all();
            } else if (sig == SIGHUP) {
                if (starting_) log->info("SIGHUP while starting: the files being started are the current ones");
                reload_ = !starting_;
                cv_.notify_all();
            }
            if (stop_signal_ != 0 && starting_ && now >= startup_grace_) {
                log->critical("startup did not stop within {} s of {}: {} has not returned; exiting now",
                              kStartupStopGrace.count(), strsignal(stop_signal_), startup_.step());
                _exit(2);
            }
            if (stop_budget_.count() > 0 && now >= stop_deadline_) {
                log->critical("shutdown did not finish within {} ms; exiting now", stop_budget_.count());
                _exit(2);
            }
        }
    }

    StartupControl& startup_;
    sigset_t signals_;
    std::thread thread_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    bool starting_ = true;
    bool reload_ = false;
    int stop_signal_ = 0;
    std::chrono::steady_clock::time_point startup_grace_{};
    std::chrono::steady_clock::time_point stop_deadline_{};
    std::chrono::milliseconds stop_budget_{0};
};

}  // namespace

int run_host(const HostOptions& options, const std::function<void()>& on_started) {
    auto log = logger("host");
    StartupControl startup;
    SignalThread signals(startup);
    auto host = Host::start(options, &startup);
    signals.started();
    if (!host) {
        if (startup.cancelled()) {  // the partly started host was stopped on the way out of start
            log->info("stopped while starting");
            return 0;
        }
        log->error("{}", host.error());
        return 1;
    }
    if (on_started) on_started();
    const auto serving = [&] { return "running " + std::to_string((*host)->pipelines().size()) + " pipeline(s)"; };
    notify_ready(serving());
    while (!(*host)->failed()) {
        const auto event = signals.wait(std::chrono::milliseconds(200));
        if (event == SignalThread::Event::stop) break;
        if (event == SignalThread::Event::reload) {
            notify_reloading("reloading plugins and pipeline files (SIGHUP)");
            (*host)->reload("SIGHUP", true, true);
            notify_ready(serving());
        }
    }
    notify_stopping("stopping: finishing in-flight events, committing, flushing");
    const bool failed = (*host)->failed();
    if (const int sig = signals.stop_signal())
        log->info("received {}, stopping: finishing in-flight events, committing, flushing", strsignal(sig));
    else
        log->error("stopping after a failure: {}", (*host)->failure());

    // Every pipeline stops at once within its own shutdown_timeout; the signal thread ends the process if a
    // library call hangs past that (a second signal ends it at once).
    signals.stopping((*host)->shutdown_budget() + std::chrono::seconds(2));
    if (!(*host)->stop()) {
        // A callback never returned: its thread still runs plugin code, so nothing is unloaded or destroyed.
        log->critical("stopped without a clean stop: a callback did not return within shutdown_timeout (see above); "
                      "its events stay uncommitted and are processed again after a restart");
        spdlog::shutdown();
        _exit(2);
    }
    host->reset();
    log->info("stopped");
    return failed ? 1 : 0;
}

}  // namespace mephisto
