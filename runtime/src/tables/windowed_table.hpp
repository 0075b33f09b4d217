#pragma once
// Windowed tables (Faust's windowed tables, with Kafka Streams' grace period): one value per (key, window),
// stored in the table's shard under "<window start><key>" so that a window's entries, and every window older
// than a time, are one contiguous key range. Time is stream time, per partition: the largest event time the
// partition has seen. A window [start, end) takes events until stream time reaches end + grace, then closes
// (its final values go to on_window_close, once); it is removed once stream time reaches end + expires.
// Stream time and the close mark live in the shard under meta keys, so they travel through the changelog and
// the same write batches as the values they describe: a restart neither loses a window nor closes one twice
// (unless it redoes the events since the last commit, at-least-once).
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/wall_clock.hpp"
#include "config/config.hpp"

namespace mephisto {

class TableShard;

struct TimeWindow {
    int64_t start = 0;  // inclusive, ms since the epoch
    int64_t end = 0;    // exclusive
};

// Every window containing time t: one for tumbling and sliding windows (the sliding window around t),
// size / step for hopping ones, oldest first. Windows starting before 0 are left out. (Session windows depend
// on the key's other events: WindowedShard::join_session.)
std::vector<TimeWindow> windows_containing(const WindowSpec& spec, int64_t t);
// The window a read at time t means: for hopping windows the latest one containing t.
TimeWindow window_at(const WindowSpec& spec, int64_t t);

// Store keys: 8 bytes of the window start (big-endian, offset so that order is time order), then the key.
std::string window_key(int64_t start, std::string_view key);
// Splits a store key made by window_key; nullopt for the meta keys.
std::optional<std::pair<int64_t, std::string_view>> split_window_key(std::string_view stored);
// True for the keys the window layer keeps for itself (stream time, close mark): never shown as entries.
bool is_window_meta_key(std::string_view stored);

// An event's time for a windowed table: its Kafka timestamp (relative_to stream), the number of milliseconds
// in a JSON field of its value (relative_to field; the timestamp when the field is missing), or the wall clock
// (relative_to now). An event without a timestamp is stamped with the wall clock.
int64_t event_time(const WindowSpec& spec, int64_t timestamp_ms, std::string_view value);

// One window's final value for one key, handed to on_window_close.
struct ClosedWindow {
    TimeWindow window;
    std::string key;
    std::string value;
};

// The window operations on one shard of a windowed table. Cheap to make; all state is in the shard.
class WindowedShard {
public:
    WindowedShard(TableShard& shard, const WindowSpec& spec) : shard_(shard), spec_(spec) {}

    // Calls write(w) for each window of time t an update may still change (not closed), while no window can
    // close; false when there is none: the event is late.
    bool update(int64_t t, const std::function<void(const TimeWindow&)>& write);
    // The value of key in window w, nullopt when it has none or the window expired.
    std::optional<std::string> get(const TimeWindow& w, std::string_view key);
    // key's live windows with values, oldest first.
    std::vector<std::pair<TimeWindow, std::string>> windows_of(std::string_view key);
    // Every live (window, key, value) of the window containing t (for table_iterate).
    std::map<std::string, std::string> entries_at(const TimeWindow& w);

    // Session windows (Kafka Streams'): the session of `key` an event at t joins. The key's open sessions within
    // the gap of t are merged into one [start, end) that contains t (their entries are replaced by it); its
    // value is theirs combined (int64 values summed when `sum_int64`, else the latest session's), nullopt when
    // none had one. nullopt when the event is late: the session it would make or join has closed.
    struct Session {
        TimeWindow window;
        std::optional<std::string> value;
    };
    // `write` runs with the joined session while it cannot close, to write its new value.
    std::optional<Session> join_session(std::string_view key, int64_t t, bool sum_int64,
                                        const std::function<void(const Session&)>& write);
    // The session of key containing t, with its value.
    std::optional<std::pair<TimeWindow, std::string>> session_at(std::string_view key, int64_t t);

    // Moves stream time to t if later. Returns the windows that closed because of it (when `take_closes`;
    // otherwise they stay pending until an instance that takes them comes by), and removes expired windows.
    // Returns nothing when stream time did not move far enough for a window boundary.
    // Tumbling, hopping and sliding windows: when windows closed, the new close mark is not stored yet; it is
    // returned in `close_mark`, and the caller stores it (persist_close_mark) once what the closes produced is
    // acknowledged. A crash before that closes them again rather than never. Until then they are not removed.
    std::vector<ClosedWindow> advance(int64_t t, bool take_closes, uint64_t& expired,
                                      std::optional<int64_t>& close_mark);
    void persist_close_mark(int64_t mark);
    // Session windows: advance() returns closed sessions without storing that they closed; the caller stores it
    // with this once what their closes produced is acknowledged (as persist_close_mark for fixed windows).
    void persist_session_closes(const std::vector<std::pair<std::string, TimeWindow>>& sessions);
    int64_t stream_time();

private:
    struct SessionEntry {
        TimeWindow window;
        bool closed = false;
    };
    void load();  // window_mu held
    void persist_marks();  // window_mu held
    std::vector<SessionEntry> sessions_of(std::string_view key);  // from the session index, oldest first
    std::vector<ClosedWindow> advance_sessions(bool take_closes, uint64_t& expired);  // window_mu held
    TableShard& shard_;
    const WindowSpec& spec_;
};

}  // namespace mephisto
