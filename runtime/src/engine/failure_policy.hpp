#pragma once
// The supervisor's decisions, shared by agents and timers (Faust's agent supervisor, Kafka Streams' processing
// exception handler): what a verdict other than OK leads to.
//  - RETRY: the same event again, after a backoff that doubles with each attempt (capped at 30 s);
//  - any other verdict (FATAL, a negative host status returned as-is, a failed create): the instance is
//    destroyed and re-created after the restart policy's delay; past max_restarts within its window, the agent
//    (or timer) is quarantined instead;
//  - past `retry` retries of one event, the error policy takes it: skip, dead letter, or crash the pipeline.
// Pure: counters and the restart policy's answer come in, a decision goes out (tests/core/failure_policy_test).
#include <cstdint>
#include <optional>

#include "config/config.hpp"
#include "engine/restart_policy.hpp"
#include "mephisto/mephisto.h"

namespace mephisto {

// One lane's failed attempts at one event (worker-only).
class AttemptCount {
public:
    int attempts() const { return attempts_; }
    // A failed attempt at the event at `offset`; a different event than the last one failing starts its own count.
    void failed(int64_t offset);
    // The events up to `last_offset` succeeded. Events before the failing one succeeding (a successor
    // re-processing what its predecessor left unacknowledged) do not reset the count, or a poisoned event would
    // never run out of tries.
    void succeeded(int64_t last_offset);
    // The event at `offset` cannot succeed by retrying (an undecodable value, a failing filter): its next
    // failure goes to the error policy at once.
    void exhaust(int64_t offset, const ErrorPolicy& policy);
    // The event at `offset` left the lane without succeeding (dropped): the next one starts afresh.
    void left(int64_t offset);
    void reset();

private:
    int attempts_ = 0;
    int64_t failing_offset_ = -1;
};

// Whether a verdict restarts the instance (everything but OK and RETRY).
inline bool restarts_instance(mph_status verdict) { return verdict != MPH_OK && verdict != MPH_RETRY; }

// The backoff before retrying an event that failed `attempts` times: retry_backoff doubled per attempt, at
// most 30 s.
Millis retry_delay(const ErrorPolicy& policy, int attempts);

struct FailureDecision {
    bool quarantine = false;  // too many restarts within the window: take no more events (they stay uncommitted)
    bool restart = false;     // the instance was destroyed: re-create it after `delay`
    bool give_up = false;     // out of retries: the error policy takes the events the verdict covered
    Millis delay{0};          // before the next attempt (or the re-created instance's first event)
    int restarts_in_window = 0;
};

// A verdict other than OK on the event at `offset` (nullopt: the instance failed to start, no event counted).
// `restart` is the restart policy's answer (RestartPolicy::on_failure) when restarts_instance(verdict), which the
// caller asked for when it destroyed the instance. Counts the attempt in `count`.
FailureDecision decide_failure(const ErrorPolicy& policy, mph_status verdict, std::optional<int64_t> offset,
                               AttemptCount& count, std::optional<RestartPolicy::Decision> restart);

}  // namespace mephisto
