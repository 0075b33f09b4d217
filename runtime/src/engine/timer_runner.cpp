// The timer runner (engine/timer_runner.hpp). THREAD: the timer thread, except where a function says.
#include "engine/timer_runner.hpp"

#include <algorithm>

#include "common/cron.hpp"
#include "common/logging.hpp"
#include "common/thread_name.hpp"
#include "common/wall_clock.hpp"
#include "engine/clocked_call.hpp"
#include "engine/failure_policy.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

}  // namespace

PluginCallRecord TimerRunner::call_record(const TimerRuntime& t, const char* callback) const {
    PluginCallRecord r;
    r.pipeline = s_.app_id.c_str();
    r.agent = t.spec->name.c_str();
    r.plugin = t.plugin ? t.plugin->name().c_str() : "(built into the host)";
    r.sha1 = t.plugin ? t.plugin->sha1().c_str() : nullptr;
    r.callback = callback;
    return r;
}

void TimerRunner::start() {
    if (timers_.empty() || thread_.joinable()) return;
    running_ = true;
    thread_ = std::thread([this] {
        name_this_thread("timers");
        crash_report::prepare_thread();
        loop();
        running_ = false;
    });
}

void TimerRunner::changed() {
    changed_ = true;
    cv_.notify_all();
    start();
}

void TimerRunner::request_stop() {
    stopping_ = true;
    if (!thread_.joinable()) return;
    // The thread holds mu_ while a callback runs, and that callback may never return: the lock is taken only
    // to meet the thread between its check of stopping_ and its wait.
    for (;;) {
        if (mu_.try_lock()) {
            mu_.unlock();  // it waits (and is woken below), or will see stopping_
            break;
        }
        if (in_call_.load()) break;  // in a callback: it sees stopping_ when (if) that returns
        std::this_thread::yield();
    }
    cv_.notify_all();
}

bool TimerRunner::join_until(std::chrono::steady_clock::time_point deadline) {
    if (!thread_.joinable()) return true;
    while (running_ && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
    if (running_) {
        thread_.detach();
        return false;
    }
    thread_.join();
    return true;
}

bool TimerRunner::destroy_instance(TimerRuntime& t) {
    if (!t.created) return false;
    if (t.info->callbacks.destroy) {
        ClockedCall call(call_, call_record(t, "destroy"));
        t.info->callbacks.destroy(t.instance);
    }
    t.instance = nullptr;
    t.created = false;
    return true;
}

void TimerRunner::loop() {
    std::unique_lock lock(mu_);
    const auto start = Clock::now();
    for (auto& t : timers_)
        if (t->next_fire == Clock::time_point{}) t->schedule_next(start);
    while (!stopping_) {
        auto next = Clock::time_point::max();
        for (auto& t : timers_)
            if (!t->quarantined) next = std::min(next, t->next_fire);
        auto woken = [&] { return stopping_.load() || changed_; };
        if (next == Clock::time_point::max()) cv_.wait(lock, woken);
        else cv_.wait_until(lock, next, woken);
        if (stopping_) break;
        if (std::exchange(changed_, false)) continue;  // a reload added or changed timers: new schedule
        const auto now = Clock::now();
        for (auto& t : timers_)
            if (!t->quarantined && t->next_fire <= now) fire(*t);
    }
}

void TimerRuntime::schedule_next(std::chrono::steady_clock::time_point now) {
    if (spec->cron.empty()) {
        next_fire = now + spec->every;
        return;
    }
    // The schedule is in wall-clock time; the timer thread waits on the steady clock. Both are read together,
    // now: `now` was taken before the callback ran.
    (void)now;
    const auto steady = Clock::now();
    const auto wall = std::chrono::system_clock::now();
    auto schedule = CronSchedule::parse(spec->cron);  // validated with the file
    auto next = schedule ? schedule->next_after(std::max(wall, next_wall), spec->timezone) : std::nullopt;
    if (!next) {
        next_fire = Clock::time_point::max();
        return;
    }
    next_wall = *next;
    next_fire = steady + std::chrono::duration_cast<Clock::duration>(*next - wall);
}

void TimerRunner::fire(TimerRuntime& t) {
    const auto& cb = t.info->callbacks;
    const auto now = Clock::now();
    if (t.spec->on_leader && !s_.leader()) {  // another host leads: its timer fires, this one waits for its turn
        t.schedule_next(now);
        return;
    }
    // Which timer the clocked calls below belong to, for the hung-callback watch.
    struct InCall {
        std::atomic<const TimerRuntime*>& slot;
        ~InCall() { slot.store(nullptr); }
    } in_call{in_call_};
    in_call_.store(&t);
    mph_status verdict = MPH_OK;
    std::string error;
    if (!t.created) {
        t.ctx.error.clear();
        void* instance = nullptr;
        ClockedCall call(call_, call_record(t, "create"));
        verdict = cb.create ? cb.create(&t.ctx, &instance) : MPH_OK;
        if (verdict == MPH_OK) {
            t.instance = instance;
            t.created = true;
        } else {
            error = "create failed: " + t.ctx.error;
        }
    }
    if (t.created) {
        t.ctx.error.clear();
        t.ctx.views.clear();
        const int64_t wall = wall_ms();
        ClockedCall call(call_, call_record(t, "on_timer"));
        verdict = cb.on_timer(t.instance, &t.ctx, t.spec->name.c_str(), wall);
        error = t.ctx.error;
    }
    // Catch up without bursts: a late tick fires once, then the schedule continues from now.
    if (!t.spec->cron.empty()) {
        t.schedule_next(now);
    } else {
        t.next_fire += t.spec->every;
        if (t.next_fire <= now) t.next_fire = now + t.spec->every;
    }
    if (verdict == MPH_OK) return;
    // The agents' supervisor decides (engine/failure_policy.hpp); a timer has no event to retry or dead-letter.
    std::optional<RestartPolicy::Decision> restart;
    if (restarts_instance(verdict)) {
        destroy_instance(t);
        restart = t.restarts.on_failure(now);
    }
    AttemptCount no_event;
    const FailureDecision d = decide_failure(ErrorPolicy{}, verdict, std::nullopt, no_event, restart);
    if (!d.restart) {
        t.ctx.log->warn("timer {} asked to retry: {}; it runs again at the next tick", t.spec->name, error);
        return;
    }
    if (d.quarantine) {
        t.quarantined = true;
        t.ctx.log->error("timer {} quarantined after more than {} restarts within {}: {}", t.spec->name,
                         t.spec->supervisor.max_restarts, format_duration(t.spec->supervisor.within), error);
        return;
    }
    t.ctx.log->error("timer {} failed: {}; restarting it in {}", t.spec->name, error, format_duration(d.delay));
    t.next_fire = std::max(t.next_fire, now + d.delay);
}

}  // namespace mephisto
