// OffsetTracker: which offset of a partition may be committed when events finish out of order
// (RELIABILITY.md 2: contiguous commits; 8: a huge offset gap costs constant memory).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "engine/offset_tracker.hpp"

using mephisto::OffsetTracker;

namespace {

void fetch_range(OffsetTracker& t, int64_t first, int64_t last) {
    for (int64_t o = first; o <= last; ++o) REQUIRE(t.fetched(o));
}

}  // namespace

TEST_CASE("offset_tracker: nothing to commit before the first fetch") {
    OffsetTracker t;
    CHECK(t.committable() == std::nullopt);
    CHECK(t.unfinished() == 0);
    CHECK(t.ranges() == 0);
    CHECK_FALSE(t.done(0));  // nothing fetched: nothing can finish
    CHECK(t.committable() == std::nullopt);
}

TEST_CASE("offset_tracker: fetched but unfinished: the commit stays at the first fetched offset") {
    OffsetTracker t;
    fetch_range(t, 42, 46);
    CHECK(t.committable() == 42);  // the consumer resumes at 42 after a crash: nothing is lost
    CHECK(t.unfinished() == 5);
    CHECK(t.ranges() == 1);  // consecutive offsets share one range
}

TEST_CASE("offset_tracker: in-order completion commits the offset after each finished one") {
    OffsetTracker t;
    fetch_range(t, 0, 4);
    for (int64_t o = 0; o <= 4; ++o) {
        REQUIRE(t.done(o));
        CHECK(t.committable() == o + 1);
        CHECK(t.unfinished() == static_cast<size_t>(4 - o));
    }
    CHECK(t.ranges() == 0);
}

TEST_CASE("offset_tracker: out-of-order completion commits only the contiguous finished prefix (RELIABILITY 2)") {
    OffsetTracker t;
    fetch_range(t, 100, 109);
    // Lanes finish 101, 103, 105..109 first: 100 is still running, so nothing may be committed.
    for (int64_t o : {101, 103, 105, 106, 107, 108, 109}) REQUIRE(t.done(o));
    CHECK(t.committable() == 100);
    CHECK(t.unfinished() == 3);  // 100, 102, 104
    CHECK(t.ranges() == 3);
    REQUIRE(t.done(100));
    CHECK(t.committable() == 102);  // 101 was done, 102 is not
    REQUIRE(t.done(104));
    CHECK(t.committable() == 102);  // a later hole filling in does not move the commit
    REQUIRE(t.done(102));
    CHECK(t.committable() == 110);  // everything finished: commit the offset after the last fetched
    CHECK(t.unfinished() == 0);
    CHECK(t.ranges() == 0);
}

TEST_CASE("offset_tracker: finishing the middle of a run splits it, the ends shrink it") {
    OffsetTracker t;
    fetch_range(t, 0, 9);
    REQUIRE(t.done(5));
    CHECK(t.ranges() == 2);  // [0,4] [6,9]
    REQUIRE(t.done(0));
    REQUIRE(t.done(9));
    CHECK(t.ranges() == 2);  // [1,4] [6,8]
    CHECK(t.committable() == 1);
    CHECK(t.unfinished() == 7);
}

TEST_CASE("offset_tracker: a repeated or older fetch is ignored") {
    OffsetTracker t;
    fetch_range(t, 10, 12);
    CHECK_FALSE(t.fetched(12));  // the same offset again (a re-delivery after a seek)
    CHECK_FALSE(t.fetched(11));
    CHECK_FALSE(t.fetched(3));
    CHECK(t.unfinished() == 3);
    REQUIRE(t.done(10));
    REQUIRE(t.done(11));
    REQUIRE(t.done(12));
    CHECK_FALSE(t.fetched(12));  // finished offsets must not come back as unfinished
    CHECK(t.committable() == 13);
    CHECK(t.unfinished() == 0);
}

TEST_CASE("offset_tracker: a double done, or done of an offset never fetched, is ignored") {
    OffsetTracker t;
    fetch_range(t, 0, 2);
    REQUIRE(t.done(1));
    CHECK_FALSE(t.done(1));  // second ack of the same event
    CHECK(t.unfinished() == 2);
    CHECK_FALSE(t.done(3));   // past the last fetched offset
    CHECK_FALSE(t.done(-1));  // before the first
    CHECK(t.unfinished() == 2);
    CHECK(t.committable() == 0);
    REQUIRE(t.done(0));
    CHECK(t.committable() == 2);
}

TEST_CASE("offset_tracker: done of an offset inside a gap that was never fetched is ignored") {
    OffsetTracker t;
    REQUIRE(t.fetched(0));
    REQUIRE(t.fetched(10));
    CHECK_FALSE(t.done(5));
    CHECK(t.unfinished() == 2);
    CHECK(t.committable() == 0);
}

TEST_CASE("offset_tracker: a gap of a million offsets costs constant memory and the commit moves past it (RELIABILITY 8)") {
    OffsetTracker t;
    REQUIRE(t.fetched(0));
    REQUIRE(t.fetched(1'000'001));  // offsets 1..1'000'000 are transaction markers / aborted: never delivered
    CHECK(t.ranges() == 2);
    CHECK(t.unfinished() == 2);
    REQUIRE(t.done(0));
    CHECK(t.committable() == 1'000'001);  // the gap is not waited for
    REQUIRE(t.done(1'000'001));
    CHECK(t.committable() == 1'000'002);
    CHECK(t.ranges() == 0);

    // Many gaps in a row: memory follows the unfinished events, not the span of offsets.
    int64_t offset = 2'000'000;
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(t.fetched(offset));
        REQUIRE(t.done(offset));
        CHECK(t.ranges() == 0);
        offset += 1'000'000;
    }
    CHECK(t.committable() == offset - 1'000'000 + 1);
    CHECK(t.unfinished() == 0);
}

TEST_CASE("offset_tracker: offsets near the top of int64 still commit correctly") {
    OffsetTracker t;
    const int64_t big = INT64_MAX - 10;
    fetch_range(t, big, big + 2);
    REQUIRE(t.done(big + 1));
    CHECK(t.committable() == big);
    REQUIRE(t.done(big));
    REQUIRE(t.done(big + 2));
    CHECK(t.committable() == big + 3);
}

// A reference model: the set of unfinished offsets and the next offset after the last fetched one.
struct Model {
    std::set<int64_t> unfinished;
    std::set<int64_t> seen;  // every fetched offset, to pick stale ones
    int64_t next = -1;

    std::optional<int64_t> committable() const {
        if (next < 0) return std::nullopt;
        return unfinished.empty() ? next : *unfinished.begin();
    }
    // The tracker keeps one range per maximal run of consecutive unfinished offsets.
    size_t runs() const {
        size_t n = 0;
        int64_t prev = 0;
        for (auto it = unfinished.begin(); it != unfinished.end(); prev = *it, ++it)
            if (it == unfinished.begin() || *it != prev + 1) ++n;
        return n;
    }
};

TEST_CASE("offset_tracker: property: the tracker agrees with a set-based model over random operations") {
    for (uint32_t seed : {1u, 2u, 3u, 7u, 42u, 1234u, 99991u, 31337u}) {
        CAPTURE(seed);
        std::mt19937_64 rng(seed);
        auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
        OffsetTracker t;
        Model m;
        int64_t start = static_cast<int64_t>(rng() % 1000);
        for (int op = 0; op < 20'000; ++op) {
            CAPTURE(op);
            const int kind = static_cast<int>(rng() % 100);
            if (kind < 45) {
                // Fetch a new offset: usually the next one, sometimes after a gap (compaction, markers).
                int64_t o = m.next < 0 ? start : m.next;
                if (chance(10)) o += 1 + static_cast<int64_t>(rng() % (chance(10) ? 1'000'000 : 5));
                REQUIRE(t.fetched(o));
                m.unfinished.insert(o);
                m.seen.insert(o);
                m.next = o + 1;
            } else if (kind < 50) {
                // A stale fetch (re-delivery): an offset below next.
                if (m.next <= 0) continue;
                int64_t o = m.next - 1 - static_cast<int64_t>(rng() % 50);
                CHECK_FALSE(t.fetched(o));
            } else if (kind < 90) {
                // Finish an unfinished offset, chosen at random (lanes finish in any order).
                if (m.unfinished.empty()) continue;
                auto it = m.unfinished.begin();
                std::advance(it, static_cast<long>(rng() % std::min<size_t>(m.unfinished.size(), 64)));
                if (chance(50)) {  // or pick from anywhere
                    it = m.unfinished.begin();
                    std::advance(it, static_cast<long>(rng() % m.unfinished.size()));
                }
                const int64_t o = *it;
                REQUIRE(t.done(o));
                m.unfinished.erase(o);
            } else {
                // A done that must be ignored: already finished, inside a gap, or never fetched.
                int64_t o;
                if (!m.seen.empty() && chance(50)) {
                    auto it = m.seen.end();
                    std::advance(it, -1 - static_cast<long>(rng() % std::min<size_t>(m.seen.size(), 200)));
                    o = *it;
                } else {
                    o = (m.next < 0 ? start : m.next) - 100 + static_cast<int64_t>(rng() % 200);
                }
                const bool expected = m.unfinished.count(o) == 1;
                CHECK(t.done(o) == expected);
                m.unfinished.erase(o);
            }
            REQUIRE(t.committable() == m.committable());
            REQUIRE(t.unfinished() == m.unfinished.size());
            REQUIRE(t.ranges() == m.runs());
        }
        // Drain: finishing everything commits the offset after the last fetched one.
        for (int64_t o : std::vector<int64_t>(m.unfinished.rbegin(), m.unfinished.rend())) REQUIRE(t.done(o));
        CHECK(t.unfinished() == 0);
        CHECK(t.ranges() == 0);
        CHECK(t.committable() == m.next);
    }
}
