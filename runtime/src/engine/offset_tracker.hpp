#pragma once
// Which offset of one partition may be committed: the first offset that was fetched and is not finished yet,
// or the offset after the last fetched one when everything is finished (Kafka commits "the next offset to
// read"). Offsets may finish in any order; the commit only ever covers a contiguous finished prefix
// (RELIABILITY.md 2).
//
// Memory is a set of ranges of unfinished offsets, so it grows with the number of holes in the finished set
// (bounded by the events in flight), never with the size of offset gaps (compaction, aborted transactions:
// RELIABILITY.md 8). Not thread-safe: the owner locks.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

namespace mephisto {

class OffsetTracker {
public:
    // Records a fetched offset. Offsets arrive in increasing order; a repeat of an offset already seen is
    // ignored (returns false).
    bool fetched(int64_t offset);
    // Marks an offset finished. Unknown or already finished offsets are ignored (returns false).
    bool done(int64_t offset);
    // The offset to commit, or nullopt before anything was fetched.
    std::optional<int64_t> committable() const;
    size_t unfinished() const { return unfinished_; }
    size_t ranges() const { return pending_.size(); }

private:
    std::map<int64_t, int64_t> pending_;  // first -> last (inclusive) of each run of unfinished offsets
    int64_t next_ = -1;                   // last fetched offset + 1
    size_t unfinished_ = 0;
};

}  // namespace mephisto
