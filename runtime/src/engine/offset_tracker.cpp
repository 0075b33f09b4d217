#include "engine/offset_tracker.hpp"

namespace mephisto {

bool OffsetTracker::fetched(int64_t offset) {
    if (offset < next_) return false;
    if (!pending_.empty()) {
        auto last = std::prev(pending_.end());
        if (last->second == offset - 1 && next_ == offset) {
            last->second = offset;
            ++unfinished_;
            next_ = offset + 1;
            return true;
        }
    }
    pending_.emplace(offset, offset);
    ++unfinished_;
    next_ = offset + 1;
    return true;
}

bool OffsetTracker::done(int64_t offset) {
    auto it = pending_.upper_bound(offset);
    if (it == pending_.begin()) return false;
    --it;
    const int64_t first = it->first, last = it->second;
    if (offset > last) return false;
    pending_.erase(it);
    if (first < offset) pending_.emplace(first, offset - 1);
    if (offset < last) pending_.emplace(offset + 1, last);
    --unfinished_;
    return true;
}

std::optional<int64_t> OffsetTracker::committable() const {
    if (next_ < 0) return std::nullopt;
    return pending_.empty() ? next_ : pending_.begin()->first;
}

}  // namespace mephisto
