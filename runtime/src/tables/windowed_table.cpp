#include "tables/windowed_table.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"

#include "tables/table_store.hpp"

namespace mephisto {

namespace {

// Meta keys start with two 0xff bytes: above every window key of a real time (a window start would have to
// be past the year 292 million to collide).
constexpr std::string_view kMetaPrefix = "\xff\xff" "mephisto.window.";
const std::string kStreamTimeKey = std::string(kMetaPrefix) + "stream_time";
const std::string kClosedBeforeKey = std::string(kMetaPrefix) + "closed_before";
// Session windows keep an index of each key's sessions: "\xff\xfe" + 4-byte key length + key + 8-byte start ->
// 8-byte end + 1 byte closed. Sessions have no fixed width, and closing one needs its end.
constexpr std::string_view kSessionPrefix = "\xff\xfe";

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Windows start on multiples of this: a boundary is where the set of closable windows can change.
int64_t step_of(const WindowSpec& spec) {
    switch (spec.kind) {
        case WindowKind::tumbling: return spec.size.count();
        case WindowKind::hopping: return spec.step.count();
        case WindowKind::sliding:
        case WindowKind::session: return 1;
    }
    return 1;
}

// The smallest window start boundary at or above x.
int64_t ceil_to_step(const WindowSpec& spec, int64_t x) {
    const int64_t step = step_of(spec);
    return -floor_div(-x, step) * step;
}

std::string encode_i64(int64_t v) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(v) >> (56 - 8 * i)) & 0xff);
    return out;
}

int64_t decode_i64(std::string_view s) {
    uint64_t v = 0;
    for (int i = 0; i < 8 && i < static_cast<int>(s.size()); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
    return static_cast<int64_t>(v);
}

}  // namespace

int64_t event_time(const WindowSpec& spec, int64_t timestamp_ms, std::string_view value) {
    if (spec.relative_to == TimeSource::now) return wall_ms();
    if (spec.relative_to == TimeSource::field && !value.empty()) {
        auto doc = parse_json_bounded(value);
        if (doc.is_object())
            if (auto it = doc.find(spec.time_field); it != doc.end() && it->is_number())
                return it->is_number_integer() ? it->get<int64_t>() : static_cast<int64_t>(it->get<double>());
    }
    return timestamp_ms >= 0 ? timestamp_ms : wall_ms();
}

std::vector<TimeWindow> windows_containing(const WindowSpec& spec, int64_t t) {
    std::vector<TimeWindow> out;
    switch (spec.kind) {
        case WindowKind::tumbling: {
            const int64_t size = spec.size.count();
            const int64_t start = floor_div(t, size) * size;
            if (start >= 0) out.push_back({start, start + size});
            break;
        }
        case WindowKind::hopping: {
            const int64_t size = spec.size.count(), step = spec.step.count();
            for (int64_t s = floor_div(t, step) * step; s > t - size; s -= step)
                if (s >= 0) out.push_back({s, s + size});
            std::reverse(out.begin(), out.end());
            break;
        }
        case WindowKind::sliding:
            if (t - spec.before.count() >= 0) out.push_back({t - spec.before.count(), t + spec.after.count() + 1});
            break;
        case WindowKind::session: break;
    }
    return out;
}

TimeWindow window_at(const WindowSpec& spec, int64_t t) {
    switch (spec.kind) {
        case WindowKind::tumbling:
        case WindowKind::hopping: {
            const int64_t step = step_of(spec);
            const int64_t start = floor_div(t, step) * step;
            return {start, start + spec.size.count()};
        }
        case WindowKind::sliding:
        case WindowKind::session: break;
    }
    return {t - spec.before.count(), t + spec.after.count() + 1};
}

std::string window_key(int64_t start, std::string_view key) {
    std::string out = encode_i64(static_cast<int64_t>(static_cast<uint64_t>(start) ^ (1ULL << 63)));
    out.append(key);
    return out;
}

std::optional<std::pair<int64_t, std::string_view>> split_window_key(std::string_view stored) {
    if (stored.size() < 8 || is_window_meta_key(stored)) return std::nullopt;
    const int64_t start = static_cast<int64_t>(static_cast<uint64_t>(decode_i64(stored.substr(0, 8))) ^ (1ULL << 63));
    return std::make_pair(start, stored.substr(8));
}

bool is_window_meta_key(std::string_view stored) {
    return stored.substr(0, kMetaPrefix.size()) == kMetaPrefix || stored.substr(0, kSessionPrefix.size()) == kSessionPrefix;
}

namespace {

std::string session_prefix(std::string_view key) {
    std::string out(kSessionPrefix);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((key.size() >> (24 - 8 * i)) & 0xff));
    out.append(key);
    return out;
}

std::string session_index_key(std::string_view key, int64_t start) { return session_prefix(key) + encode_i64(start); }

std::string session_index_value(int64_t end, bool closed) { return encode_i64(end) + (closed ? '\1' : '\0'); }

// The smallest string above every string starting with `prefix`.
std::string after_prefix(std::string prefix) {
    while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
    if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
    return prefix;
}

}  // namespace

std::vector<WindowedShard::SessionEntry> WindowedShard::sessions_of(std::string_view key) {
    std::vector<SessionEntry> out;
    const std::string prefix = session_prefix(key);
    for (const auto& [stored, value] : shard_.scan(prefix, after_prefix(prefix)))
        if (stored.size() == prefix.size() + 8 && value.size() == 9)
            out.push_back({{decode_i64(std::string_view(stored).substr(prefix.size())), decode_i64(value)}, value[8] != 0});  // closed
    return out;
}

std::optional<WindowedShard::Session> WindowedShard::join_session(std::string_view key, int64_t t, bool sum_int64,
                                                                  const std::function<void(const Session&)>& write) {
    std::lock_guard lock(shard_.window_mu);
    load();
    const int64_t gap = spec_.gap.count(), grace = spec_.grace.count();
    Session joined{{t, t + 1}, std::nullopt};
    std::vector<SessionEntry> merged;
    for (const auto& s : sessions_of(key)) {
        // Within the gap of t: it starts at most a gap after t and ends at most a gap before it.
        if (s.window.start > t + gap || s.window.end - 1 < t - gap) continue;
        if (s.closed || shard_.sessions_closing.count(session_index_key(key, s.window.start)))
            return std::nullopt;  // a closed (or closing) session cannot grow again
        merged.push_back(s);
        joined.window.start = std::min(joined.window.start, s.window.start);
        joined.window.end = std::max(joined.window.end, s.window.end);
    }
    if (joined.window.end - 1 + gap + grace <= shard_.stream_time) return std::nullopt;  // it would close at once
    for (const auto& s : merged) {
        auto value = shard_.get(window_key(s.window.start, key));
        if (value) {
            if (sum_int64 && joined.value && value->size() == 8 && joined.value->size() == 8)
                joined.value = encode_i64(decode_i64(*joined.value) + decode_i64(*value));
            else
                joined.value = std::move(value);  // oldest first: the latest session's value wins
        }
        shard_.erase(window_key(s.window.start, key));
        shard_.erase(session_index_key(key, s.window.start));
    }
    shard_.put(session_index_key(key, joined.window.start), session_index_value(joined.window.end, false));
    if (joined.value) shard_.put(window_key(joined.window.start, key), *joined.value);
    if (shard_.next_session_close != INT64_MIN)  // unknown (after a load) stays unknown until the next scan
        shard_.next_session_close = std::min(shard_.next_session_close, joined.window.end - 1 + gap + grace);
    write(joined);
    return joined;
}

std::optional<std::pair<TimeWindow, std::string>> WindowedShard::session_at(std::string_view key, int64_t t) {
    {
        std::lock_guard lock(shard_.window_mu);
        load();
    }
    for (const auto& s : sessions_of(key))
        if (s.window.start <= t && t < s.window.end)
            if (auto v = shard_.get(window_key(s.window.start, key))) return std::make_pair(s.window, std::move(*v));
    return std::nullopt;
}

std::vector<ClosedWindow> WindowedShard::advance_sessions(bool take_closes, uint64_t& expired) {
    std::vector<ClosedWindow> closed;
    const int64_t now = shard_.stream_time;
    if (shard_.next_session_close != INT64_MIN && now < shard_.next_session_close) return closed;
    const int64_t gap = spec_.gap.count(), grace = spec_.grace.count(), expires = spec_.expires.count();
    int64_t next = INT64_MAX;
    const std::string all(kSessionPrefix);
    for (const auto& [stored, index] : shard_.scan(all, after_prefix(all))) {
        if (index.size() != 9 || stored.size() < all.size() + 12) continue;
        const std::string_view rest = std::string_view(stored).substr(all.size());
        const size_t len = (static_cast<size_t>(static_cast<unsigned char>(rest[0])) << 24) |
                           (static_cast<size_t>(static_cast<unsigned char>(rest[1])) << 16) |
                           (static_cast<size_t>(static_cast<unsigned char>(rest[2])) << 8) |
                           static_cast<size_t>(static_cast<unsigned char>(rest[3]));
        if (rest.size() != 4 + len + 8) continue;
        const std::string key(rest.substr(4, len));
        const int64_t start = decode_i64(rest.substr(4 + len));
        const int64_t end = decode_i64(index);  // exclusive
        int state = index[8];  // 0 open, 1 closed, 2 closed and its value removed
        if (state == 0 && end - 1 + gap + grace <= now) {
            if (!take_closes) {
                next = std::min(next, now);  // pending until its taker comes by
                continue;
            }
            // Closing: handed out once; persist_session_closes stores it and asks for the next scan.
            if (shard_.sessions_closing.count(stored)) continue;
            if (auto value = shard_.get(window_key(start, key))) closed.push_back({{start, end}, key, std::move(*value)});
            shard_.sessions_closing.insert(stored);
            continue;
        }
        if (state == 0) {
            next = std::min(next, end - 1 + gap + grace);
            continue;
        }
        if (state == 1 && end - 1 + expires <= now) {  // reads no longer see it
            shard_.erase(window_key(start, key));
            state = 2;
            std::string removed = session_index_value(end, true);
            removed[8] = '\2';
            shard_.put(stored, removed);
            ++expired;
        }
        // The index entry stays while an event could still fall within its gap: such an event is late, it must
        // not start a new session beside the closed one.
        const int64_t forget_at = end - 1 + 2 * gap + grace;
        if (state == 2 && forget_at <= now) shard_.erase(stored);
        else next = std::min(next, state == 1 ? end - 1 + expires : forget_at);
    }
    shard_.next_session_close = next;
    return closed;
}

void WindowedShard::load() {
    if (shard_.window_loaded) return;
    auto st = shard_.get(kStreamTimeKey);
    auto closed = shard_.get(kClosedBeforeKey);
    shard_.stream_time = st ? decode_i64(*st) : -1;
    shard_.closed_before = closed ? decode_i64(*closed) : INT64_MIN;
    shard_.closed_persisted = shard_.closed_before;
    shard_.expired_before = INT64_MIN;
    shard_.next_session_close = INT64_MIN;  // unknown: the next advance scans the sessions once
    shard_.sessions_closing.clear();        // not stored: they close again
    shard_.window_loaded = true;
}

void WindowedShard::persist_marks() {
    shard_.put(kStreamTimeKey, encode_i64(shard_.stream_time));
    if (spec_.kind != WindowKind::session) shard_.put(kClosedBeforeKey, encode_i64(shard_.closed_persisted));
}

int64_t WindowedShard::stream_time() {
    std::lock_guard lock(shard_.window_mu);
    load();
    return shard_.stream_time;
}

bool WindowedShard::update(int64_t t, const std::function<void(const TimeWindow&)>& write) {
    std::lock_guard lock(shard_.window_mu);
    load();
    bool any = false;
    for (const auto& w : windows_containing(spec_, t))
        if (w.start >= shard_.closed_before && w.end + spec_.grace.count() > shard_.stream_time) {
            write(w);
            any = true;
        }
    return any;
}

void WindowedShard::persist_close_mark(int64_t mark) {
    std::lock_guard lock(shard_.window_mu);
    if (!shard_.window_loaded || mark <= shard_.closed_persisted) return;  // reloaded meanwhile, or older
    shard_.closed_persisted = mark;
    shard_.put(kClosedBeforeKey, encode_i64(mark));
}

void WindowedShard::persist_session_closes(const std::vector<std::pair<std::string, TimeWindow>>& sessions) {
    std::lock_guard lock(shard_.window_mu);
    if (!shard_.window_loaded) return;  // reloaded meanwhile: they close again
    for (const auto& [key, window] : sessions) {
        const std::string index = session_index_key(key, window.start);
        if (shard_.sessions_closing.erase(index)) shard_.put(index, session_index_value(window.end, true));
    }
    shard_.next_session_close = INT64_MIN;  // rescan: their expiry is due in time
}

std::optional<std::string> WindowedShard::get(const TimeWindow& w, std::string_view key) {
    {
        std::lock_guard lock(shard_.window_mu);
        load();
        if (w.end + spec_.expires.count() <= shard_.stream_time) return std::nullopt;  // expired
    }
    return shard_.get(window_key(w.start, key));
}

std::map<std::string, std::string> WindowedShard::entries_at(const TimeWindow& w) {
    std::map<std::string, std::string> out;
    if (spec_.kind == WindowKind::session) {  // every key's session containing w.start
        {
            std::lock_guard lock(shard_.window_mu);
            load();
        }
        const std::string all(kSessionPrefix);
        for (const auto& [stored, index] : shard_.scan(all, after_prefix(all))) {
            const std::string_view rest = std::string_view(stored).substr(all.size());
            if (index.size() != 9 || rest.size() < 12) continue;
            const size_t len = rest.size() - 12;
            const int64_t start = decode_i64(rest.substr(4 + len));
            if (start > w.start || decode_i64(index) <= w.start) continue;
            if (auto v = shard_.get(window_key(start, rest.substr(4, len)))) out.emplace(rest.substr(4, len), std::move(*v));
        }
        return out;
    }
    {
        std::lock_guard lock(shard_.window_mu);
        load();
        if (w.end + spec_.expires.count() <= shard_.stream_time) return out;
    }
    for (auto& [stored, value] : shard_.scan(window_key(w.start, ""), window_key(w.start + 1, "")))
        out.emplace(stored.substr(8), std::move(value));
    return out;
}

std::vector<std::pair<TimeWindow, std::string>> WindowedShard::windows_of(std::string_view key) {
    int64_t now, oldest;
    {
        std::lock_guard lock(shard_.window_mu);
        load();
        now = shard_.stream_time;
        oldest = std::max<int64_t>(0, now - spec_.width().count() - spec_.expires.count() + 1);
    }
    std::vector<std::pair<TimeWindow, std::string>> out;
    if (spec_.kind == WindowKind::session) {
        for (const auto& s : sessions_of(key))
            if (auto v = shard_.get(window_key(s.window.start, key))) out.push_back({s.window, std::move(*v)});
        return out;
    }
    if (now < 0) return out;
    const int64_t width = spec_.width().count();
    if (spec_.kind == WindowKind::sliding) {  // windows start anywhere: scan the live range for the key
        for (auto& [stored, value] : shard_.scan(window_key(oldest, ""), window_key(now + 1, "")))
            if (auto split = split_window_key(stored); split && split->second == key)
                out.push_back({{split->first, split->first + width}, std::move(value)});
        return out;
    }
    const int64_t step = step_of(spec_);
    for (int64_t s = ceil_to_step(spec_, oldest); s <= now; s += step)
        if (auto v = shard_.get(window_key(s, key))) out.push_back({{s, s + width}, std::move(*v)});
    return out;
}

std::vector<ClosedWindow> WindowedShard::advance(int64_t t, bool take_closes, uint64_t& expired,
                                                 std::optional<int64_t>& close_mark) {
    std::vector<ClosedWindow> closed;
    std::lock_guard lock(shard_.window_mu);
    load();
    bool changed = false;
    if (t > shard_.stream_time) {
        shard_.stream_time = t;
        changed = true;
    }
    if (spec_.kind == WindowKind::session) {
        closed = advance_sessions(take_closes, expired);
        if (changed) persist_marks();
        return closed;
    }
    const int64_t width = spec_.width().count();
    // Windows starting before `close_limit` have ended, grace included.
    const int64_t close_limit = ceil_to_step(spec_, shard_.stream_time - width - spec_.grace.count() + 1);
    if (take_closes && close_limit > shard_.closed_before) {
        const int64_t from = std::max<int64_t>(0, shard_.closed_before);
        if (close_limit > from)
            for (auto& [stored, value] : shard_.scan(window_key(from, ""), window_key(close_limit, "")))
                if (auto split = split_window_key(stored))
                    closed.push_back({{split->first, split->first + width}, std::string(split->second), std::move(value)});
        shard_.closed_before = close_limit;
        if (closed.empty()) shard_.closed_persisted = close_limit;  // nothing to acknowledge first
        else close_mark = close_limit;
        changed = true;
    }
    // Windows starting before `expire_limit` are removed, but never one whose close is not stored yet.
    const int64_t expire_limit =
        std::min(shard_.closed_persisted, ceil_to_step(spec_, shard_.stream_time - width - spec_.expires.count() + 1));
    if (expire_limit > shard_.expired_before) {
        const int64_t from = std::max<int64_t>(0, shard_.expired_before);
        if (expire_limit > from)
            for (const auto& [stored, value] : shard_.scan(window_key(from, ""), window_key(expire_limit, ""))) {
                (void)value;
                shard_.erase(stored);  // a tombstone in the changelog at the next commit
                ++expired;
            }
        shard_.expired_before = expire_limit;
    }
    if (changed) persist_marks();
    return closed;
}

}  // namespace mephisto
