// The status page's history of throughput and lag (host/sample_history.hpp).
#include "host/sample_history.hpp"

#include "common/thread_name.hpp"
#include "common/wall_clock.hpp"

namespace mephisto {

void SampleHistory::start() {
    thread_ = std::thread([this] {
        name_this_thread("history");
        std::unique_lock lock(mu_);
        while (!stop_) {
            lock.unlock();
            sample(wall_ms());
            lock.lock();
            wake_.wait_for(lock, kEvery, [this] { return stop_; });
        }
    });
}

void SampleHistory::stop() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void SampleHistory::sample(int64_t at_ms) {
    const std::vector<Reading> readings = read_();  // outside the lock: it asks the pipelines
    std::lock_guard lock(mu_);
    for (const auto& r : readings) {
        auto [it, fresh] = rings_.try_emplace(r.pipeline);
        Ring& ring = it->second;
        PipelineSample s;
        s.at_ms = at_ms;
        s.lag = r.lag;
        if (!fresh && at_ms > ring.last_ms) {
            // A counter below the last one: the pipeline was restarted (a reload), and counts from 0 again.
            const uint64_t done = r.processed >= ring.processed ? r.processed - ring.processed : r.processed;
            s.events_per_s = static_cast<double>(done) * 1000.0 / static_cast<double>(at_ms - ring.last_ms);
        }
        ring.processed = r.processed;
        ring.last_ms = at_ms;
        if (fresh) continue;  // a rate needs two readings
        ring.samples.push_back(s);
        while (ring.samples.size() > kSamples) ring.samples.pop_front();
    }
    // A pipeline gone for longer than the window leaves it.
    const int64_t window_ms = static_cast<int64_t>(kSamples) * kEvery.count();
    for (auto it = rings_.begin(); it != rings_.end();)
        it = at_ms - it->second.last_ms > window_ms ? rings_.erase(it) : std::next(it);
}

std::map<std::string, std::vector<PipelineSample>> SampleHistory::snapshot() const {
    std::lock_guard lock(mu_);
    std::map<std::string, std::vector<PipelineSample>> out;
    for (const auto& [name, ring] : rings_) out[name].assign(ring.samples.begin(), ring.samples.end());
    return out;
}

}  // namespace mephisto
