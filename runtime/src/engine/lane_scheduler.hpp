#pragma once
// Hands lanes (one agent instance on one partition) to worker threads. A lane is in the scheduler at most
// once, so at most one worker runs it and events of a partition stay in order. Lanes that must wait
// (retry or restart backoff) sit in a timed queue instead of blocking a worker.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

namespace mephisto {

template <typename Lane>
class LaneScheduler {
public:
    using Clock = std::chrono::steady_clock;

    void push(Lane* lane) {
        {
            std::lock_guard lock(mu_);
            ready_.push_back(lane);
        }
        cv_.notify_one();
    }

    void push_after(Lane* lane, std::chrono::milliseconds delay) {
        {
            std::lock_guard lock(mu_);
            delayed_.emplace(Clock::now() + delay, lane);
        }
        cv_.notify_one();
    }

    // Blocks until a lane is due; nullptr once stop() was called.
    Lane* pop() {
        std::unique_lock lock(mu_);
        for (;;) {
            if (stopped_) return nullptr;
            const auto now = Clock::now();
            while (!delayed_.empty() && delayed_.begin()->first <= now) {
                ready_.push_back(delayed_.begin()->second);
                delayed_.erase(delayed_.begin());
            }
            if (!ready_.empty()) {
                Lane* lane = ready_.front();
                ready_.pop_front();
                return lane;
            }
            if (delayed_.empty()) {
                cv_.wait(lock);
            } else {
                // A copy: wait_until reads its deadline again after waking, when another worker may have taken
                // (and erased) that entry.
                const Clock::time_point due = delayed_.begin()->first;
                cv_.wait_until(lock, due);
            }
        }
    }

    // Takes a waiting lane out; false when it was not waiting (a worker runs it, or it is idle).
    bool remove(Lane* lane) {
        std::lock_guard lock(mu_);
        for (auto it = ready_.begin(); it != ready_.end(); ++it)
            if (*it == lane) {
                ready_.erase(it);
                return true;
            }
        for (auto it = delayed_.begin(); it != delayed_.end(); ++it)
            if (it->second == lane) {
                delayed_.erase(it);
                return true;
            }
        return false;
    }

    void stop() {
        {
            std::lock_guard lock(mu_);
            stopped_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Lane*> ready_;
    std::multimap<Clock::time_point, Lane*> delayed_;
    bool stopped_ = false;
};

}  // namespace mephisto
