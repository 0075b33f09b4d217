// Window arithmetic of windowed tables (tables/windowed_table.hpp): which windows an event time falls in, which
// window a read means, and the store key layout that keeps a window's entries, and all older windows, one
// contiguous, time-ordered key range.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>
#include <mutex>

#include "tables/table_store.hpp"
#include "tables/windowed_table.hpp"

using namespace mephisto;
using namespace std::chrono_literals;

namespace {

WindowSpec tumbling(Millis size) {
    WindowSpec w;
    w.kind = WindowKind::tumbling;
    w.size = size;
    return w;
}
WindowSpec hopping(Millis size, Millis step) {
    WindowSpec w;
    w.kind = WindowKind::hopping;
    w.size = size;
    w.step = step;
    return w;
}
WindowSpec sliding(Millis before, Millis after) {
    WindowSpec w;
    w.kind = WindowKind::sliding;
    w.before = before;
    w.after = after;
    return w;
}
std::vector<std::pair<int64_t, int64_t>> starts_ends(const std::vector<TimeWindow>& ws) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const auto& w : ws) out.emplace_back(w.start, w.end);
    return out;
}

}  // namespace

TEST_CASE("a tumbling window holds each time exactly once, boundaries included in the next window") {
    const auto spec = tumbling(60s);
    CHECK(starts_ends(windows_containing(spec, 0)) == std::vector<std::pair<int64_t, int64_t>>{{0, 60'000}});
    CHECK(starts_ends(windows_containing(spec, 59'999)) == std::vector<std::pair<int64_t, int64_t>>{{0, 60'000}});
    CHECK(starts_ends(windows_containing(spec, 60'000)) == std::vector<std::pair<int64_t, int64_t>>{{60'000, 120'000}});
    CHECK(window_at(spec, 125'000).start == 120'000);
}

TEST_CASE("a hopping window event falls in every window that covers it, oldest first") {
    const auto spec = hopping(10s, 5s);  // Faust's Hopping(10, 5)
    CHECK(starts_ends(windows_containing(spec, 12'000)) ==
          std::vector<std::pair<int64_t, int64_t>>{{5'000, 15'000}, {10'000, 20'000}});
    CHECK(starts_ends(windows_containing(spec, 10'000)) ==
          std::vector<std::pair<int64_t, int64_t>>{{5'000, 15'000}, {10'000, 20'000}});
    CHECK(starts_ends(windows_containing(hopping(60s, 20s), 65'000)) ==
          std::vector<std::pair<int64_t, int64_t>>{{20'000, 80'000}, {40'000, 100'000}, {60'000, 120'000}});
    CHECK(windows_containing(spec, 3'000).size() == 1);  // windows before time 0 are left out
    CHECK(window_at(spec, 12'000).start == 10'000);     // a read means the latest window
}

TEST_CASE("a sliding window is the span around each event") {
    const auto spec = sliding(5s, 2s);
    CHECK(starts_ends(windows_containing(spec, 100'000)) == std::vector<std::pair<int64_t, int64_t>>{{95'000, 102'001}});
    CHECK(spec.width() == 7'001ms);
    CHECK(window_at(spec, 100'000).start == 95'000);
}

TEST_CASE("store keys sort by window start, then key, and split back, and meta keys are not windows") {
    const std::string a = window_key(60'000, "zebra"), b = window_key(120'000, "apple"), c = window_key(120'000, "b");
    CHECK(a < b);
    CHECK(b < c);
    CHECK(window_key(0, "") < a);
    auto split = split_window_key(c);
    REQUIRE(split);
    CHECK(split->first == 120'000);
    CHECK(split->second == "b");
    CHECK_FALSE(is_window_meta_key(a));
    CHECK(window_key(INT64_C(1) << 62, "") < std::string("\xff\xff", 2));  // meta keys sort after every window
}

TEST_CASE("an event's time: its timestamp, a JSON field, or the wall clock") {
    WindowSpec spec = tumbling(60s);
    CHECK(event_time(spec, 1234, "{\"ts\": 99}") == 1234);
    spec.relative_to = TimeSource::field;
    spec.time_field = "ts";
    CHECK(event_time(spec, 1234, "{\"ts\": 99}") == 99);
    CHECK(event_time(spec, 1234, "{\"other\": 99}") == 1234);  // no field: the timestamp
    CHECK(event_time(spec, 1234, "not json") == 1234);
    spec.relative_to = TimeSource::now;
    const int64_t before = wall_ms();
    CHECK(event_time(spec, 1234, "") >= before);
}

TEST_CASE("a closed session is stored as closed only once its close is acknowledged: until then a reload closes it again") {
    TableSpec table;
    table.name = "sessions";
    table.store = StoreKind::memory;
    table.value = ValueCodec::int64;
    WindowSpec spec;
    spec.kind = WindowKind::session;
    spec.gap = 10s;
    spec.expires = 60s;
    table.window = spec;
    auto store = TableStore::open(table, std::filesystem::temp_directory_path());
    REQUIRE(store.ok());
    auto shard = (*store)->shard(0);
    REQUIRE(shard.ok());
    WindowedShard sessions(**shard, *table.window);
    auto write = [&](const WindowedShard::Session& s) { (*shard)->put(window_key(s.window.start, "k"), std::string(7, '\0') + '\1'); };
    REQUIRE(sessions.join_session("k", 1'000, true, write));

    uint64_t expired = 0;
    std::optional<int64_t> mark;
    auto closed = sessions.advance(20'000, true, expired, mark);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].window.start == 1'000);
    CHECK(sessions.advance(20'001, true, expired, mark).empty());  // handed out once in this run
    CHECK_FALSE(sessions.join_session("k", 1'500, true, write));    // a closing session does not grow

    // A reload before the close was acknowledged (a crash, a revoke): it closes again, never not at all.
    { std::lock_guard lock((*shard)->window_mu); (*shard)->window_loaded = false; }
    closed = sessions.advance(20'002, true, expired, mark);
    REQUIRE(closed.size() == 1);
    sessions.persist_session_closes({{closed[0].key, closed[0].window}});
    { std::lock_guard lock((*shard)->window_mu); (*shard)->window_loaded = false; }
    CHECK(sessions.advance(20'003, true, expired, mark).empty());  // stored as closed: never again
    CHECK(sessions.advance(70'000, true, expired, mark).empty());
    CHECK(expired == 1);  // and, once closed for good, it expires
}
