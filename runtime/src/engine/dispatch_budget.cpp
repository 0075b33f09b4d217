#include "engine/dispatch_budget.hpp"

namespace mephisto {

void DispatchBudget::released(int64_t bytes) {
    const int64_t events_left = events_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    const int64_t bytes_left = bytes_.fetch_sub(bytes, std::memory_order_acq_rel) - bytes;
    // Cheap when nobody waits (both marks are -1); the notification takes the mutex, so it cannot slip between
    // the waiter's check and its sleep.
    if (events_left <= wake_events_.load(std::memory_order_acquire) &&
        bytes_left <= wake_bytes_.load(std::memory_order_acquire)) {
        std::lock_guard lock(mu_);
        room_.notify_one();
    }
}

bool DispatchBudget::full(Amount excluded) const {
    const Amount now = held();
    return now.events - excluded.events >= high_.events || now.bytes - excluded.bytes >= high_.bytes;
}

bool DispatchBudget::has_room(Amount excluded) const {
    const Amount now = held();
    return now.events - excluded.events <= high_.events / 2 && now.bytes - excluded.bytes <= high_.bytes / 2;
}

bool DispatchBudget::wait_for_room(Amount excluded, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    wake_events_.store(excluded.events + high_.events / 2, std::memory_order_release);
    wake_bytes_.store(excluded.bytes + high_.bytes / 2, std::memory_order_release);
    const bool room = room_.wait_for(lock, timeout, [&] { return has_room(excluded); });
    wake_events_.store(-1, std::memory_order_release);
    wake_bytes_.store(-1, std::memory_order_release);
    return room;
}

}  // namespace mephisto
