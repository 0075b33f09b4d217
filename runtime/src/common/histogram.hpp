#pragma once
// A fixed-bucket latency histogram filled lock-free (Prometheus' cumulative buckets are computed at scrape).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace mephisto {

struct LatencyHistogram {
    static constexpr std::array<double, 10> kBounds = {0.0001, 0.0005, 0.001, 0.005, 0.01,
                                                       0.05,   0.1,    0.5,   1.0,   5.0};  // seconds
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};  // the last one: +Inf
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};

    void record(std::chrono::nanoseconds elapsed) {
        const double seconds = std::chrono::duration<double>(elapsed).count();
        size_t bucket = 0;
        while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
        buckets[bucket].fetch_add(1, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
        sum_ns.fetch_add(static_cast<uint64_t>(elapsed.count()), std::memory_order_relaxed);
    }
};

}  // namespace mephisto
