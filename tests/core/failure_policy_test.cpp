// The supervisor's decisions in-process (engine/failure_policy): retry backoff, restarts and their intensity,
// quarantine, the error policy past the retries, and a timer's restart. Time is passed in; nothing sleeps.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <optional>

#include "engine/failure_policy.hpp"

using namespace mephisto;
using namespace std::chrono_literals;

namespace {

const RestartPolicy::Clock::time_point t0 = RestartPolicy::Clock::time_point{} + 1000h;

ErrorPolicy retries(int retry, Millis backoff = 100ms) {
    ErrorPolicy p;
    p.retry = retry;
    p.retry_backoff = backoff;
    return p;
}

SupervisorSpec intensity(int max_restarts, Millis within) {
    SupervisorSpec s;
    s.max_restarts = max_restarts;
    s.within = within;
    s.backoff_initial = 100ms;
    s.backoff_max = 1s;
    return s;
}

// What the lane runner does on a verdict: asks the restart policy when the verdict restarts the instance.
FailureDecision fail(const ErrorPolicy& policy, RestartPolicy& restarts, mph_status verdict,
                     std::optional<int64_t> offset, AttemptCount& count, RestartPolicy::Clock::time_point now) {
    std::optional<RestartPolicy::Decision> restart;
    if (restarts_instance(verdict)) restart = restarts.on_failure(now);
    return decide_failure(policy, verdict, offset, count, restart);
}

}  // namespace

TEST_CASE("failure policy: RETRY retries the same event with a doubling backoff, then the error policy takes it") {
    const ErrorPolicy policy = retries(3, 100ms);
    RestartPolicy restarts(intensity(5, 60s));
    AttemptCount count;
    const long long expected[] = {100, 200, 400};
    for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        auto d = fail(policy, restarts, MPH_RETRY, 42, count, t0);
        CHECK_FALSE(d.restart);
        CHECK_FALSE(d.give_up);
        CHECK(d.delay == Millis(expected[i]));
        CHECK(count.attempts() == i + 1);
    }
    auto d = fail(policy, restarts, MPH_RETRY, 42, count, t0);  // the fourth failure: out of retries
    CHECK(d.give_up);
    CHECK(d.delay == 0ms);
    CHECK(restarts.restarts_in_window(t0) == 0);  // a retry never restarts the instance
}

TEST_CASE("failure policy: the retry backoff stops at 30 seconds") {
    CHECK(retry_delay(retries(100, 1s), 1) == 1s);
    CHECK(retry_delay(retries(100, 1s), 5) == 16s);
    CHECK(retry_delay(retries(100, 1s), 6) == 30s);
    CHECK(retry_delay(retries(100, 1s), 1000) == 30s);  // no overflow
}

TEST_CASE("failure policy: any verdict but OK and RETRY restarts the instance, a negative host status too") {
    for (mph_status verdict : {MPH_FATAL, static_cast<mph_status>(MPH_ERR_FULL), static_cast<mph_status>(MPH_ERR_STATE),
                               static_cast<mph_status>(7)}) {
        CAPTURE(verdict);
        CHECK(restarts_instance(verdict));
        RestartPolicy restarts(intensity(5, 60s));
        AttemptCount count;
        auto d = fail(retries(3), restarts, verdict, 0, count, t0);
        CHECK(d.restart);
        CHECK(d.delay == 100ms);  // the restart policy's delay, not the retry backoff
        CHECK(d.restarts_in_window == 1);
        CHECK_FALSE(d.give_up);  // the re-created instance gets the same event again
    }
    CHECK_FALSE(restarts_instance(MPH_OK));
    CHECK_FALSE(restarts_instance(MPH_RETRY));
}

TEST_CASE("failure policy: restarts past max_restarts within the window quarantine, outside it they do not") {
    RestartPolicy restarts(intensity(2, 10s));
    AttemptCount count;
    CHECK(fail(retries(100), restarts, MPH_FATAL, 0, count, t0).delay == 100ms);
    CHECK(fail(retries(100), restarts, MPH_FATAL, 0, count, t0 + 1s).delay == 200ms);
    auto d = fail(retries(100), restarts, MPH_FATAL, 0, count, t0 + 2s);
    CHECK(d.quarantine);
    CHECK(d.restarts_in_window == 3);

    RestartPolicy spread(intensity(2, 10s));
    AttemptCount other;
    for (int i = 0; i < 10; ++i) {  // one restart every 6 s: never more than two within 10 s
        CAPTURE(i);
        CHECK_FALSE(fail(retries(100), spread, MPH_FATAL, i, other, t0 + std::chrono::seconds(6 * i)).quarantine);
    }
    spread.reset(intensity(2, 10s));  // a plugin swap: new code, a fresh history
    CHECK(spread.restarts_in_window(t0 + 54s) == 0);
}

TEST_CASE("failure policy: a restarting verdict past the retries goes to the error policy and still waits the restart") {
    RestartPolicy restarts(intensity(100, 60s));
    AttemptCount count;
    const ErrorPolicy policy = retries(1);
    CHECK_FALSE(fail(policy, restarts, MPH_FATAL, 9, count, t0).give_up);
    auto d = fail(policy, restarts, MPH_FATAL, 9, count, t0 + 1s);
    CHECK(d.give_up);
    CHECK(d.restart);
    CHECK(d.delay == 200ms);
}

TEST_CASE("failure policy: a failed create counts a restart but no attempt at any event") {
    RestartPolicy restarts(intensity(100, 60s));
    AttemptCount count;
    for (int i = 0; i < 5; ++i) {
        auto d = fail(retries(0), restarts, MPH_FATAL, std::nullopt, count, t0);
        CHECK(d.restart);
        CHECK_FALSE(d.give_up);  // no event is dead-lettered for a create that fails
    }
    CHECK(count.attempts() == 0);
}

TEST_CASE("failure policy: each event has its own count, earlier events succeeding do not reset it") {
    AttemptCount count;
    count.failed(10);
    count.failed(10);
    CHECK(count.attempts() == 2);
    count.succeeded(7);  // a successor re-processing what its predecessor left unacknowledged
    CHECK(count.attempts() == 2);
    count.failed(11);  // another event fails: its own count
    CHECK(count.attempts() == 1);
    count.succeeded(11);
    CHECK(count.attempts() == 0);
    count.exhaust(12, retries(3));  // undecodable: its next failure goes to the policy at once
    CHECK(count.attempts() == 3);
    RestartPolicy restarts(intensity(5, 60s));
    CHECK(fail(retries(3), restarts, MPH_RETRY, 12, count, t0).give_up);
    count.reset();
    count.failed(13);
    count.left(14);  // another event was dropped: the count stands
    CHECK(count.attempts() == 1);
    count.left(13);
    CHECK(count.attempts() == 0);
}

TEST_CASE("failure policy: a timer restarts with the same intensity, and RETRY waits for its next tick") {
    RestartPolicy restarts(intensity(1, 60s));
    AttemptCount none;
    auto retry = fail(ErrorPolicy{}, restarts, MPH_RETRY, std::nullopt, none, t0);
    CHECK_FALSE(retry.restart);
    CHECK_FALSE(retry.give_up);
    auto first = fail(ErrorPolicy{}, restarts, MPH_FATAL, std::nullopt, none, t0);
    CHECK(first.restart);
    CHECK(first.delay == 100ms);
    CHECK(fail(ErrorPolicy{}, restarts, MPH_FATAL, std::nullopt, none, t0 + 1s).quarantine);
}
