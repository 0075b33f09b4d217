#pragma once
// The last 15 minutes of each pipeline's throughput and lag, sampled once a second on a thread of its own: what the
// status page plots, and GET /history. One ring of samples per pipeline; a pipeline that stopped keeps its samples
// until they age out, so a reload does not blank its plot.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mephisto {

struct PipelineSample {
    int64_t at_ms = 0;         // wall clock
    double events_per_s = 0;   // events the pipeline's agents processed per second since the sample before
    int64_t lag = -1;          // records behind the ends of its assigned partitions; -1: not known
};

class SampleHistory {
public:
    static constexpr size_t kSamples = 900;  // 15 minutes at one a second
    static constexpr std::chrono::milliseconds kEvery{1000};

    // What a pipeline says now: events processed since it started, and its lag.
    struct Reading {
        std::string pipeline;
        uint64_t processed = 0;
        int64_t lag = -1;
    };
    explicit SampleHistory(std::function<std::vector<Reading>()> read) : read_(std::move(read)) {}
    ~SampleHistory() { stop(); }
    SampleHistory(const SampleHistory&) = delete;
    SampleHistory& operator=(const SampleHistory&) = delete;

    void start();  // the sampling thread
    void stop();

    // Takes one sample at `at_ms` (the thread's step; also for tests). THREAD: one at a time.
    void sample(int64_t at_ms);
    // Every pipeline's samples, oldest first. THREAD: any.
    std::map<std::string, std::vector<PipelineSample>> snapshot() const;

private:
    struct Ring {
        std::deque<PipelineSample> samples;
        uint64_t processed = 0;  // at the last sample
        int64_t last_ms = 0;
    };
    std::function<std::vector<Reading>()> read_;
    mutable std::mutex mu_;  // guards rings_ and stop_
    std::map<std::string, Ring> rings_;
    bool stop_ = false;
    std::condition_variable wake_;
    std::thread thread_;
};

}  // namespace mephisto
