#pragma once
// The supervisor's restart intensity (Erlang's max restarts within a period, Faust's supervisor modes): each
// failure is one restart; the delay before it doubles with every restart inside the window, capped; past
// max_restarts within the window the agent is quarantined instead of restarted (RELIABILITY.md 9).
#include <chrono>
#include <deque>
#include <mutex>

#include "config/config.hpp"

namespace mephisto {

class RestartPolicy {
public:
    using Clock = std::chrono::steady_clock;
    struct Decision {
        bool quarantine = false;
        Millis delay{0};       // wait this long before re-creating the instance
        int restarts_in_window = 0;
    };

    explicit RestartPolicy(SupervisorSpec spec) : spec_(spec) {}
    // THREAD: any (the lanes of one agent fail on several workers).
    Decision on_failure(Clock::time_point now);
    int restarts_in_window(Clock::time_point now);
    // Forgets the history under a new spec (new code gets a fresh start).
    void reset(SupervisorSpec spec);

private:
    void expire(Clock::time_point now);
    std::mutex mu_;
    SupervisorSpec spec_;
    std::deque<Clock::time_point> restarts_;
};

}  // namespace mephisto
