// A pipeline's timers (Faust's @app.timer and @app.crontab): one thread runs them, each at its next time, a
// fire at a time; a timer whose callback fails is supervised like an agent.
#include <algorithm>

#include "common/thread_name.hpp"
#include "common/cron.hpp"
#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

}  // namespace

void Pipeline::start_timer_thread() {
    timer_running_ = true;
    timer_thread_ = std::thread([this] {
        name_this_thread("timers");
        crash_report::prepare_thread();
        timer_loop();
        timer_running_ = false;
    });
}

void Pipeline::timer_loop() {
    std::unique_lock lock(timer_mutex_);
    const auto start = Clock::now();
    for (auto& t : timers_)
        if (t->next_fire == Clock::time_point{}) t->schedule_next(start);
    while (!stopping_) {
        auto next = Clock::time_point::max();
        for (auto& t : timers_)
            if (!t->quarantined) next = std::min(next, t->next_fire);
        auto woken = [&] { return stopping_.load() || timers_changed_; };
        if (next == Clock::time_point::max()) timer_cv_.wait(lock, woken);
        else timer_cv_.wait_until(lock, next, woken);
        if (stopping_) break;
        if (std::exchange(timers_changed_, false)) continue;  // a reload added or changed timers: new schedule
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

void Pipeline::fire(TimerRuntime& t) {
    const auto& cb = t.info->callbacks;
    const auto now = Clock::now();
    if (t.spec->on_leader && !leader_) {  // another host leads: its timer fires, this one waits for its turn
        t.schedule_next(now);
        return;
    }
    // Which timer the clocked calls below belong to, for the hung-callback watch.
    struct InCall {
        std::atomic<const TimerRuntime*>& slot;
        ~InCall() { slot.store(nullptr); }
    } in_call{timer_in_call_};
    timer_in_call_.store(&t);
    mph_status verdict = MPH_OK;
    std::string error;
    if (!t.created) {
        t.ctx.error.clear();
        void* instance = nullptr;
        ClockedCall call(timer_call_, call_record(t, "create"));
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
        const int64_t wall = std::chrono::duration_cast<milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
        ClockedCall call(timer_call_, call_record(t, "on_timer"));
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
        if (t.created && cb.destroy) {
            ClockedCall call(timer_call_, call_record(t, "destroy"));
            cb.destroy(t.instance);
        }
        t.instance = nullptr;
        t.created = false;
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
