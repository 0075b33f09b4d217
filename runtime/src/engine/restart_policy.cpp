#include "engine/restart_policy.hpp"

#include <algorithm>

namespace mephisto {

void RestartPolicy::expire(Clock::time_point now) {
    while (!restarts_.empty() && now - restarts_.front() >= spec_.within) restarts_.pop_front();
}

int RestartPolicy::restarts_in_window(Clock::time_point now) {
    std::lock_guard lock(mu_);
    expire(now);
    return static_cast<int>(restarts_.size());
}

void RestartPolicy::reset(SupervisorSpec spec) {
    std::lock_guard lock(mu_);
    spec_ = spec;
    restarts_.clear();
}

RestartPolicy::Decision RestartPolicy::on_failure(Clock::time_point now) {
    std::lock_guard lock(mu_);
    expire(now);
    restarts_.push_back(now);
    Decision d;
    d.restarts_in_window = static_cast<int>(restarts_.size());
    if (d.restarts_in_window > spec_.max_restarts) {
        d.quarantine = true;
        return d;
    }
    // backoff * 2^(n-1), computed without overflow by stopping at the cap.
    Millis delay = spec_.backoff_initial;
    for (int i = 1; i < d.restarts_in_window && delay < spec_.backoff_max; ++i) delay *= 2;
    d.delay = std::min(delay, spec_.backoff_max);
    return d;
}

}  // namespace mephisto
