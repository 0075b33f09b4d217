#pragma once
// A pipeline's timers (Faust's @app.timer and @app.crontab): one thread runs them, each at its next time, one
// fire at a time; a timer whose callback fails is supervised like an agent (engine/failure_policy.hpp).
// Internal to the engine.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/crash_report.hpp"
#include "config/config.hpp"
#include "engine/agent_context.hpp"
#include "engine/lane.hpp"
#include "engine/restart_policy.hpp"
#include "plugin/plugin.hpp"

namespace mephisto {

struct TimerRuntime {
    const TimerSpec* spec = nullptr;  // points into spec_versions, like AgentRuntime::spec
    std::vector<std::unique_ptr<const TimerSpec>> spec_versions;
    std::shared_ptr<Plugin> plugin;
    const AgentInfo* info = nullptr;
    mph_agent_ctx ctx;
    void* instance = nullptr;
    bool created = false;
    bool quarantined = false;
    RestartPolicy restarts;
    std::chrono::steady_clock::time_point next_fire;
    // Cron: the wall-clock minute next_fire stands for. The next one is computed after it, not after the wall
    // clock when a tick ends (a long callback, or a wall clock behind the steady one, must not fire one twice).
    std::chrono::system_clock::time_point next_wall{};
    // Its next tick after `now`: `every` later, or the cron schedule's next minute (in its time zone).
    void schedule_next(std::chrono::steady_clock::time_point now);
    explicit TimerRuntime(const TimerSpec& s) : restarts(s.supervisor) { set_spec(s); }
    void set_spec(const TimerSpec& s) {
        spec_versions.push_back(std::make_unique<const TimerSpec>(s));
        spec = spec_versions.back().get();
    }
};

class TimerRunner {
public:
    struct Services {
        std::function<bool()> leader;  // on_leader timers fire only while this host leads
        std::string app_id;  // names the pipeline in crash reports
    };
    explicit TimerRunner(Services services) : s_(std::move(services)) {}

    // The timers. Changed (added, removed, re-imaged) only under lock(), which the thread holds while a timer
    // fires: a change waits for the fire in progress. Read without it on the thread that changes them (the
    // pipeline's swaps and reloads are serialized). After a change, changed().
    std::vector<std::unique_ptr<TimerRuntime>>& timers() { return timers_; }
    const std::vector<std::unique_ptr<TimerRuntime>>& timers() const { return timers_; }
    std::unique_lock<std::mutex> lock() { return std::unique_lock(mu_); }
    // The set or a schedule changed (the caller holds lock()): the thread takes the new schedule, and starts
    // when the first timer came.
    void changed();
    // A timer leaves for good (a reload removed it). Kept alive for readers that took a pointer before.
    void retire(std::unique_ptr<TimerRuntime> timer) { retired_.push_back(std::move(timer)); }
    // Destroys a timer's instance, if it has one (a swap, a reload, the stop); true when it had. Clocked for
    // the hung-callback watch. Under lock(), or once the thread is gone.
    bool destroy_instance(TimerRuntime& t);
    // What the crash report says of a timer's call.
    PluginCallRecord call_record(const TimerRuntime& t, const char* callback) const;

    // Starts the thread when there are timers. THREAD: the pipeline's starting one.
    void start();
    // Wakes the thread to leave; a callback in progress finishes first (it may never: see join_until).
    void request_stop();
    // Joins the thread once it left, waiting until `deadline` at most; a thread still inside a callback then is
    // detached. False when it was.
    bool join_until(std::chrono::steady_clock::time_point deadline);

    // For the hung-callback watch: the callback in progress (one thread: one at a time) and its timer.
    const CallClock& call_clock() const { return call_; }
    CallClock& call_clock() { return call_; }
    const TimerRuntime* in_call() const { return in_call_.load(); }

private:
    void loop();
    void fire(TimerRuntime& timer);

    Services s_;
    std::vector<std::unique_ptr<TimerRuntime>> timers_;
    std::vector<std::unique_ptr<TimerRuntime>> retired_;
    std::mutex mu_;  // held by the thread except while it waits
    std::condition_variable cv_;
    bool changed_ = false;  // guarded by mu_
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::atomic<bool> running_{false};  // the thread is inside its loop
    CallClock call_;
    std::atomic<const TimerRuntime*> in_call_{nullptr};
};

}  // namespace mephisto
