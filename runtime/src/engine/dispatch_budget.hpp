#pragma once
// What a pipeline's consumer has handed to its lanes and not seen finished, in events and bytes: one budget for
// the whole pipeline (Kafka Streams bounds the records buffered per partition; here the partitions share one).
//
// Above the high mark the consumer thread stops taking messages from librdkafka and waits for the workers to
// bring it down to half, rather than pausing partitions: a pause makes librdkafka drop what it prefetched of the
// partition, and fetch it again on resume (a 1,000,000-event word count paused and resumed its 12 partitions 33
// times). Partitions still pause one at a time when they alone hold too much (a stuck lane), and a paused
// partition's events do not count here, so one slow partition never stops the others.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace mephisto {

class DispatchBudget {
public:
    struct Amount {
        int64_t events = 0;
        int64_t bytes = 0;
    };
    explicit DispatchBudget(Amount high) : high_(high) {}

    // Consumer thread: a message of `bytes` (key and value) handed to the lanes.
    void taken(int64_t bytes) {
        events_.fetch_add(1, std::memory_order_relaxed);
        bytes_.fetch_add(bytes, std::memory_order_relaxed);
    }
    // Any thread: one of them finished. Wakes the consumer waiting for room once there is.
    void released(int64_t bytes);

    // Consumer thread: whether the lanes hold the high mark in events or in bytes, beyond `excluded` (what the
    // paused partitions hold).
    bool full(Amount excluded) const;
    // Consumer thread: waits until the lanes hold no more than half the high mark beyond `excluded`, at most
    // `timeout`. True when they do.
    bool wait_for_room(Amount excluded, std::chrono::milliseconds timeout);

    Amount held() const {
        return {events_.load(std::memory_order_relaxed), bytes_.load(std::memory_order_relaxed)};
    }

private:
    bool has_room(Amount excluded) const;

    const Amount high_;
    std::atomic<int64_t> events_{0};
    std::atomic<int64_t> bytes_{0};
    // While the consumer waits: the held events and bytes at or below which it has room (-1: nobody waits).
    std::atomic<int64_t> wake_events_{-1};
    std::atomic<int64_t> wake_bytes_{-1};
    std::mutex mu_;
    std::condition_variable room_;
};

}  // namespace mephisto
