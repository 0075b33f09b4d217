#pragma once
// The wall clock in milliseconds since the epoch: for times shown to people and compared across hosts (a
// heartbeat, when a recovery started), never for measuring intervals (steady_clock does that).
#include <chrono>
#include <cstdint>

namespace mephisto {

inline int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace mephisto
