#include "engine/failure_policy.hpp"

#include <algorithm>

namespace mephisto {

void AttemptCount::failed(int64_t offset) {
    if (offset != failing_offset_) attempts_ = 0;
    failing_offset_ = offset;
    ++attempts_;
}

void AttemptCount::succeeded(int64_t last_offset) {
    if (last_offset >= failing_offset_) reset();
}

void AttemptCount::exhaust(int64_t offset, const ErrorPolicy& policy) {
    attempts_ = policy.retry;
    failing_offset_ = offset;
}

void AttemptCount::left(int64_t offset) {
    if (offset == failing_offset_) reset();
}

void AttemptCount::reset() {
    attempts_ = 0;
    failing_offset_ = -1;
}

Millis retry_delay(const ErrorPolicy& policy, int attempts) {
    constexpr Millis cap = std::chrono::seconds(30);
    Millis delay = policy.retry_backoff;
    for (int i = 1; i < attempts && delay < cap; ++i) delay *= 2;
    return std::min(delay, cap);
}

FailureDecision decide_failure(const ErrorPolicy& policy, mph_status verdict, std::optional<int64_t> offset,
                               AttemptCount& count, std::optional<RestartPolicy::Decision> restart) {
    FailureDecision d;
    if (offset) count.failed(*offset);
    d.restart = restarts_instance(verdict);
    if (d.restart && restart) {
        d.restarts_in_window = restart->restarts_in_window;
        if (restart->quarantine) {
            d.quarantine = true;
            return d;
        }
        d.delay = restart->delay;
    }
    if (offset && count.attempts() > policy.retry) {
        d.give_up = true;
        return d;  // a restart still waits its delay before the next event; a retry's backoff does not apply
    }
    if (!d.restart) d.delay = retry_delay(policy, count.attempts());
    return d;
}

}  // namespace mephisto
