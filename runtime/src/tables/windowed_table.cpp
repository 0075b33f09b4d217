#include "tables/windowed_table.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>

#include <nlohmann/json.hpp>

#include "tables/table_store.hpp"

namespace mephisto {

namespace {

// Meta keys start with two 0xff bytes: above every window key of a real time (a window start would have to
// be past the year 292 million to collide).
constexpr std::string_view kMetaPrefix = "\xff\xff" "mephisto.window.";
const std::string kStreamTimeKey = std::string(kMetaPrefix) + "stream_time";
const std::string kClosedBeforeKey = std::string(kMetaPrefix) + "closed_before";

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Windows start on multiples of this: a boundary is where the set of closable windows can change.
int64_t step_of(const WindowSpec& spec) {
    switch (spec.kind) {
        case WindowKind::tumbling: return spec.size.count();
        case WindowKind::hopping: return spec.step.count();
        case WindowKind::sliding: return 1;
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

int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t event_time(const WindowSpec& spec, int64_t timestamp_ms, std::string_view value) {
    if (spec.relative_to == TimeSource::now) return wall_clock_ms();
    if (spec.relative_to == TimeSource::field && !value.empty()) {
        auto doc = nlohmann::json::parse(value, nullptr, false);
        if (doc.is_object())
            if (auto it = doc.find(spec.time_field); it != doc.end() && it->is_number())
                return it->is_number_integer() ? it->get<int64_t>() : static_cast<int64_t>(it->get<double>());
    }
    return timestamp_ms >= 0 ? timestamp_ms : wall_clock_ms();
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
        case WindowKind::sliding: break;
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

bool is_window_meta_key(std::string_view stored) { return stored.substr(0, kMetaPrefix.size()) == kMetaPrefix; }

void WindowedShard::load() {
    if (shard_.window_loaded) return;
    auto st = shard_.get(kStreamTimeKey);
    auto closed = shard_.get(kClosedBeforeKey);
    shard_.stream_time = st ? decode_i64(*st) : -1;
    shard_.closed_before = closed ? decode_i64(*closed) : INT64_MIN;
    shard_.expired_before = INT64_MIN;
    shard_.window_loaded = true;
}

void WindowedShard::persist_marks() {
    shard_.put(kStreamTimeKey, encode_i64(shard_.stream_time));
    shard_.put(kClosedBeforeKey, encode_i64(shard_.closed_before));
}

int64_t WindowedShard::stream_time() {
    std::lock_guard lock(shard_.window_mu);
    load();
    return shard_.stream_time;
}

std::vector<TimeWindow> WindowedShard::writable(int64_t t) {
    std::lock_guard lock(shard_.window_mu);
    load();
    std::vector<TimeWindow> out;
    for (const auto& w : windows_containing(spec_, t))
        if (w.start >= shard_.closed_before && w.end + spec_.grace.count() > shard_.stream_time) out.push_back(w);
    return out;
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

std::vector<ClosedWindow> WindowedShard::advance(int64_t t, bool take_closes, uint64_t& expired) {
    std::vector<ClosedWindow> closed;
    std::lock_guard lock(shard_.window_mu);
    load();
    bool changed = false;
    if (t > shard_.stream_time) {
        shard_.stream_time = t;
        changed = true;
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
        changed = true;
    }
    // Windows starting before `expire_limit` are removed, but never one that has not been closed.
    const int64_t expire_limit =
        std::min(shard_.closed_before, ceil_to_step(spec_, shard_.stream_time - width - spec_.expires.count() + 1));
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
