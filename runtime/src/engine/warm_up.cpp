// Warm-up before joining (engine/warm_up.hpp).
#include "engine/warm_up.hpp"

#include <chrono>
#include <map>
#include <thread>

#include "common/wall_clock.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kCheckEvery = std::chrono::milliseconds(100);
constexpr auto kReportEvery = std::chrono::seconds(5);

}  // namespace

const char* WarmUp::name(State s) {
    switch (s) {
        case State::off: return "off";
        case State::warming: return "warming";
        case State::caught_up: return "caught up";
        case State::timed_out: return "timed out";
        case State::skipped: return "skipped";
    }
    return "?";
}

void WarmUp::skip(const std::string& why) {
    std::lock_guard lock(mu_);
    skip_ = why;
}

bool WarmUp::warming(bool joined) const {
    if (!spec_.enabled || joined) return false;
    std::lock_guard lock(mu_);
    return status_.state == State::warming || status_.state == State::caught_up || status_.state == State::timed_out;
}

WarmUp::Status WarmUp::status() const {
    std::lock_guard lock(mu_);
    return status_;
}

void WarmUp::run(const std::atomic<bool>& go_on, const std::function<StandbyPlacement()>& placement,
                 const std::function<std::vector<StandbyStatus>()>& standbys) {
    if (!spec_.enabled) return;
    const auto started = Clock::now();
    {
        std::lock_guard lock(mu_);
        status_.state = State::warming;
        status_.started_ms = wall_ms();
        status_.reason = "waiting for the cluster view";
    }
    auto finish = [&](State state, const std::string& reason) {
        std::lock_guard lock(mu_);
        status_.state = state;
        status_.reason = reason;
        status_.duration_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    };
    auto next_report = started + kReportEvery;
    while (go_on.load()) {
        {
            std::lock_guard lock(mu_);
            if (!skip_.empty()) {
                status_.state = State::skipped;
                status_.reason = skip_;
                log_->info("warm-up skipped: {}; joining the group", skip_);
                return;
            }
        }
        const StandbyPlacement wanted = placement();
        const bool timed_out = Clock::now() - started >= spec_.timeout;
        if (wanted.view_whole && wanted.partitions.empty()) {
            finish(State::skipped, "no other host runs the pipeline: nothing would move here");
            log_->info("warm-up: no other host runs the pipeline; joining the group");
            return;
        }
        size_t caught_up = 0;
        if (!wanted.partitions.empty()) {
            std::map<TablePartition, int64_t> lag;
            for (const auto& s : standbys()) lag[{s.table, s.partition}] = s.lag;
            for (const auto& key : wanted.partitions) {
                auto it = lag.find(key);
                if (it != lag.end() && it->second >= 0 && it->second <= spec_.acceptable_lag) ++caught_up;
            }
            std::lock_guard lock(mu_);
            status_.partitions = wanted.partitions.size();
            status_.caught_up = caught_up;
            status_.reason = "following " + std::to_string(wanted.partitions.size()) + " changelog partition(s)";
        }
        if (!wanted.partitions.empty() && caught_up == wanted.partitions.size()) {
            finish(State::caught_up, "every warmed partition within " + std::to_string(spec_.acceptable_lag) +
                                         " record(s) of its changelog's end");
            log_->info("warm-up: {} table partition(s) caught up (acceptable lag {}) in {} ms; joining the group",
                       caught_up, spec_.acceptable_lag, status().duration_ms);
            return;
        }
        if (timed_out) {
            const std::string why = wanted.view_whole ? std::to_string(caught_up) + " of " +
                                                            std::to_string(wanted.partitions.size()) +
                                                            " partition(s) caught up"
                                                      : "the cluster view was not read";
            finish(State::timed_out, why);
            log_->warn("warm-up: timed out after {} ms ({}); joining the group, the rest recovers after", 
                       spec_.timeout.count(), why);
            return;
        }
        if (Clock::now() >= next_report) {
            log_->info("warm-up: {} of {} table partition(s) within {} record(s) of their changelog's end", caught_up,
                       wanted.partitions.size(), spec_.acceptable_lag);
            next_report = Clock::now() + kReportEvery;
        }
        std::this_thread::sleep_for(kCheckEvery);  // polls the follower's progress; go_on ends it within this
    }
}

}  // namespace mephisto
