// RestartPolicy: capped exponential backoff and quarantine after too many restarts in a window
// (RELIABILITY.md 9). Time is passed in explicitly; nothing sleeps.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "engine/restart_policy.hpp"

using mephisto::Millis;
using mephisto::RestartPolicy;
using mephisto::SupervisorSpec;
using namespace std::chrono_literals;

namespace {

const RestartPolicy::Clock::time_point t0 = RestartPolicy::Clock::time_point{} + 1000h;

SupervisorSpec spec(int max_restarts, Millis within, Millis backoff, Millis max_backoff) {
    SupervisorSpec s;
    s.max_restarts = max_restarts;
    s.within = within;
    s.backoff_initial = backoff;
    s.backoff_max = max_backoff;
    return s;
}

}  // namespace

TEST_CASE("restart_policy: the delay doubles with each restart in the window and stops at the cap") {
    RestartPolicy p(spec(100, 1h, 100ms, 10s));
    const std::vector<long long> expected = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000};
    for (size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(i);
        auto d = p.on_failure(t0 + std::chrono::seconds(i));
        CHECK_FALSE(d.quarantine);
        CHECK(d.delay == Millis(expected[i]));
        CHECK(d.restarts_in_window == static_cast<int>(i + 1));
    }
}

TEST_CASE("restart_policy: a cap that is not a power-of-two multiple of the initial backoff is met exactly") {
    RestartPolicy p(spec(100, 1h, 100ms, 1s));
    std::vector<long long> delays;
    for (int i = 0; i < 7; ++i) delays.push_back(p.on_failure(t0 + std::chrono::milliseconds(i)).delay.count());
    CHECK(delays == std::vector<long long>{100, 200, 400, 800, 1000, 1000, 1000});
}

TEST_CASE("restart_policy: many restarts never overflow the delay") {
    RestartPolicy p(spec(1'000'000, 24h, 1ms, 24h));
    RestartPolicy::Decision d;
    for (int i = 0; i < 200; ++i) d = p.on_failure(t0 + std::chrono::microseconds(i));
    CHECK_FALSE(d.quarantine);
    CHECK(d.delay == Millis(24h));
    CHECK(d.restarts_in_window == 200);
}

TEST_CASE("restart_policy: backoff equal to the cap stays constant") {
    RestartPolicy p(spec(10, 1min, 2s, 2s));
    for (int i = 0; i < 5; ++i) CHECK(p.on_failure(t0 + std::chrono::seconds(i)).delay == Millis(2000));
}

TEST_CASE("restart_policy: more than max_restarts failures within the window quarantine the agent") {
    RestartPolicy p(spec(3, 60s, 100ms, 10s));
    for (int i = 1; i <= 3; ++i) {
        auto d = p.on_failure(t0 + std::chrono::seconds(i));
        CHECK_FALSE(d.quarantine);
        CHECK(d.restarts_in_window == i);
    }
    auto d = p.on_failure(t0 + 4s);
    CHECK(d.quarantine);
    CHECK(d.restarts_in_window == 4);
    // Still inside the window: every further failure is a quarantine too.
    CHECK(p.on_failure(t0 + 5s).quarantine);
}

TEST_CASE("restart_policy: max_restarts 0 quarantines on the first failure") {
    RestartPolicy p(spec(0, 60s, 100ms, 10s));
    auto d = p.on_failure(t0);
    CHECK(d.quarantine);
    CHECK(d.restarts_in_window == 1);
}

TEST_CASE("restart_policy: restarts older than the window are forgotten, and the backoff starts over") {
    RestartPolicy p(spec(3, 60s, 100ms, 10s));
    CHECK(p.on_failure(t0).delay == 100ms);
    CHECK(p.on_failure(t0 + 1s).delay == 200ms);
    CHECK(p.on_failure(t0 + 2s).delay == 400ms);
    CHECK(p.restarts_in_window(t0 + 2s) == 3);

    // 59.999s after the first failure it still counts; at exactly 60s it has left the window.
    CHECK(p.restarts_in_window(t0 + 59'999ms) == 3);
    CHECK(p.restarts_in_window(t0 + 60s) == 2);
    CHECK(p.restarts_in_window(t0 + 61s) == 1);
    CHECK(p.restarts_in_window(t0 + 62s) == 0);

    // A new failure after the window: a fresh count, the initial delay, and no quarantine.
    auto d = p.on_failure(t0 + 62s);
    CHECK_FALSE(d.quarantine);
    CHECK(d.restarts_in_window == 1);
    CHECK(d.delay == 100ms);
}

TEST_CASE("restart_policy: a partly expired window: only the restarts still inside it count toward quarantine") {
    RestartPolicy p(spec(3, 60s, 100ms, 10s));
    p.on_failure(t0);
    p.on_failure(t0 + 10s);
    p.on_failure(t0 + 20s);
    // At t0+65s the first restart has expired: this is the third in the window, not the fourth.
    auto d = p.on_failure(t0 + 65s);
    CHECK_FALSE(d.quarantine);
    CHECK(d.restarts_in_window == 3);
    CHECK(d.delay == 400ms);
    // At t0+66s there are four within 60s (10s, 20s, 65s, 66s): quarantine.
    CHECK(p.on_failure(t0 + 66s).quarantine);
}

TEST_CASE("restart_policy: failures spaced wider than the window allows never quarantine") {
    RestartPolicy p(spec(2, 10s, 100ms, 10s));
    for (int i = 0; i < 100; ++i) {
        CAPTURE(i);
        auto d = p.on_failure(t0 + std::chrono::seconds(6 * i));  // at most two fall within any 10s
        CHECK_FALSE(d.quarantine);
        CHECK(d.restarts_in_window <= 2);
    }
}
