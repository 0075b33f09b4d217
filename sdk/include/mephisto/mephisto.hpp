// mephisto.hpp — header-only C++20 wrapper over the Mephisto plugin ABI (mephisto.h).
//
// An agent is a plain class. The wrapper detects which callbacks it has and fills the C descriptor with
// trampolines for exactly those; everything else stays NULL, so the host skips it.
//
//     #include <mephisto/mephisto.hpp>
//
//     struct Greeter {
//         void on_event(mephisto::Context& ctx, const mephisto::Event& greeting) {
//             ctx.log_info(greeting.value());
//         }
//     };
//
//     MEPHISTO_PLUGIN("hello_world", "1.0.0", mephisto::agent<Greeter>("greet", "logs every greeting"));
//
// What an agent class may have (all optional except one of on_event / on_batch / on_timer):
//     T(mephisto::Context&)            or T()      one instance per partition (and per timer)
//     R on_event(Context&, const Event&)
//     R on_batch(Context&, Batch)                  consecutive events of one partition, one verdict
//     R on_timer(Context&, std::string_view timer, int64_t now_ms)
//     R on_assigned(Context&, int32_t partition)
//     R on_revoked(Context&, int32_t partition)
//     R on_window_close(Context&, std::string_view table, std::string_view key, Window window,
//                       std::string_view value)      (ABI 1.3) a window's final value, once per (key, window)
//     R on_reply(Context&, const Reply&)            (ABI 1.4) the answer to ctx.ask(...), or its timeout
// where R is void (always MPH_OK) or mph_status (MPH_OK, MPH_RETRY or MPH_FATAL).
//
// ERRORS. Context members that call the host (emit, send, forward, ...) throw mephisto::Error when the
// host refuses; the agent can catch it, or let it propagate. Every exception that leaves user code is caught
// at the trampoline, its what() goes to the host through set_error, and the callback returns:
//     mephisto::Error with status MPH_RETRY or MPH_ERR_FULL   -> MPH_RETRY (transient: the host retries)
//     any other exception                                     -> MPH_FATAL (the supervisor restarts)
// So `throw mephisto::Error("db timed out", MPH_RETRY)` asks for a retry, and a bug that throws restarts
// the instance. Nothing crosses the C boundary (mephisto.h, convention 9); destructors never leak out.
// One exception keeps the host's text: mephisto::MergeRefused (from Table::merge) becomes MPH_FATAL without
// set_error, because the host already recorded the aggregator's reason as the callback's error text.
//
// TABLES (ABI 1.1). ctx.table("name") in the constructor resolves a table the agent lists under `tables:` in
// YAML and returns a mephisto::Table: get/put/erase/add/for_each on the shard of the instance's partition,
// and (ABI 1.2) merge on a table with an aggregator. See class Table. On a windowed table (ABI 1.3, YAML
// `window:`) the same calls change the windows of the current event, and get() reads the window of the table's
// `relative_to` time; window() and for_each_window() read other windows (Faust's .current(), .now(), .delta()).
//
// CODECS AND AGGREGATORS (ABI 1.2). A plugin may provide value codecs and table aggregators besides (or instead
// of) agents; like agents they are classes, here with static members only, listed in MEPHISTO_PLUGIN:
//     mephisto::codec<T>(name, description)        YAML `value: {plugin: P, codec: NAME}`
//         static void validate(std::string_view value)           throws to refuse a malformed value
//         static std::string to_json(std::string_view value)     one JSON value (for `mephisto table get|dump`)
//     (either may be left out: without validate every value is accepted, without to_json the host shows the
//     bytes as a JSON string)
//     mephisto::predicate<T>(name, description)    YAML `filter: {plugin: P, predicate: NAME}` (ABI 1.3)
//         static bool keep(const mephisto::Event& event)        false filters the event out of the agent
//     mephisto::key_function<T>(name, description) YAML `group_by: {plugin: P, function: NAME}`
//         static std::string key(const mephisto::Event& event)  the key to group by; throws to refuse the event
//     mephisto::aggregator<T>(name, description)   YAML `aggregate: {plugin: P, name: NAME}`, used by Table::merge
//         static std::string merge(std::optional<std::string_view> current, std::string_view input)
//             the key's new value; current is nullopt when the key is absent and the table has no default;
//             throws to refuse the input (the table is unchanged)
// The exception's what() becomes the host's reason (MPH_ERR_INVALID). The host calls them from any thread,
// concurrently, outside any agent callback: keep no mutable state, and do not call the host (no Context).
//
// PARAMS. Params declared with mephisto::agent(...) are shown by `mephisto plugin inspect`, and the host
// applies them: Context::param() returns the YAML value or else the declared default_value, and the host
// refuses at startup a missing `required` param or a YAML param the agent does not declare.
//
// LINKAGE. MEPHISTO_PLUGIN must appear exactly once per plugin, at global scope: it defines the exported
// entry function and the plugin's one global (the definition and the host table). The header itself holds
// no function-local or inline statics, so it adds no STB_GNU_UNIQUE symbols. libstdc++ still has a few
// (std::to_string's digit table, for one), which is why plugins must be built with -fno-gnu-unique, as
// mephisto_add_plugin does: otherwise glibc never unloads the image on dlclose.
#ifndef MEPHISTO_MEPHISTO_HPP
#define MEPHISTO_MEPHISTO_HPP

#include <mephisto/mephisto.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace mephisto {

// ---------------------------------------------------------------------------------------------------------
// Status names and errors
// ---------------------------------------------------------------------------------------------------------

// The macro name of a status code, for messages ("MPH_ERR_FULL"). Unknown codes give "MPH_?".
constexpr std::string_view status_name(mph_status status) noexcept {
    switch (status) {
    case MPH_OK:
        return "MPH_OK";
    case MPH_RETRY:
        return "MPH_RETRY";
    case MPH_FATAL:
        return "MPH_FATAL";
    case MPH_ERR_INVALID:
        return "MPH_ERR_INVALID";
    case MPH_ERR_NOT_FOUND:
        return "MPH_ERR_NOT_FOUND";
    case MPH_ERR_STATE:
        return "MPH_ERR_STATE";
    case MPH_ERR_FULL:
        return "MPH_ERR_FULL";
    case MPH_ERR_UNSUPPORTED:
        return "MPH_ERR_UNSUPPORTED";
    case MPH_ERR_TIMEOUT:
        return "MPH_ERR_TIMEOUT";
    default:
        return "MPH_?";
    }
}

// Thrown by Context when the host refuses a call, and by agents that want to choose their verdict.
// status() is the host's status code (MPH_ERR_*) or the verdict the thrower asks for (MPH_RETRY/MPH_FATAL).
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message, mph_status status = MPH_FATAL)
        : std::runtime_error(message), status_(status) {}

    mph_status status() const noexcept { return status_; }

    // The callback verdict this error turns into at the trampoline: only transient causes are retried.
    mph_status verdict() const noexcept {
        return status_ == MPH_RETRY || status_ == MPH_ERR_FULL ? MPH_RETRY : MPH_FATAL;
    }

private:
    mph_status status_;
};

// Thrown by Table::merge when the table's aggregator refused the input, or when the table's value codec refused
// the aggregator's result (status MPH_ERR_INVALID; the table is unchanged). The host has already recorded its
// reason (the aggregator's text) as the callback's error text: left uncaught, this becomes MPH_FATAL and the
// trampoline keeps the host's reason rather than overwriting it with what(). Catch it to skip such an input.
class MergeRefused : public Error {
public:
    explicit MergeRefused(const std::string& message) : Error(message, MPH_ERR_INVALID) {}
};

// ---------------------------------------------------------------------------------------------------------
// Plain data: headers, events, batches, messages
// ---------------------------------------------------------------------------------------------------------

// A header view. value is nullopt for a header without a value (distinct from an empty value).
struct Header {
    std::string_view name;
    std::optional<std::string_view> value;
};

namespace detail {

// A random-access-by-index range over a C array, yielding views by value. Range needs size() and at(i).
template <class Range, class Element>
class IndexIterator {
public:
    using iterator_concept = std::forward_iterator_tag;
    using value_type = Element;
    using difference_type = std::ptrdiff_t;

    IndexIterator() = default;
    IndexIterator(const Range* range, size_t index) : range_(range), index_(index) {}

    Element operator*() const { return range_->at(index_); }
    IndexIterator& operator++() {
        ++index_;
        return *this;
    }
    IndexIterator operator++(int) {
        IndexIterator previous = *this;
        ++index_;
        return previous;
    }
    bool operator==(const IndexIterator& other) const { return index_ == other.index_; }

private:
    const Range* range_ = nullptr;
    size_t index_ = 0;
};

inline std::string_view bytes_view(const void* data, size_t size) noexcept {
    return data == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(data), size);
}

} // namespace detail

// The headers of an event, in message order. A view: valid until the callback returns.
class Headers {
public:
    using iterator = detail::IndexIterator<Headers, Header>;

    Headers(const mph_header* headers, size_t count) noexcept : headers_(headers), count_(headers ? count : 0) {}

    size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    Header at(size_t index) const {
        if (index >= count_) throw std::out_of_range("mephisto::Headers::at: index out of range");
        return (*this)[index];
    }
    Header operator[](size_t index) const noexcept {
        const mph_header& header = headers_[index];
        Header view{detail::bytes_view(header.name, header.name_len), std::nullopt};
        if (header.value != nullptr) view.value = detail::bytes_view(header.value, header.value_len);
        return view;
    }
    iterator begin() const noexcept { return {this, 0}; }
    iterator end() const noexcept { return {this, count_}; }

    // The first header called `name`, if any.
    std::optional<Header> find(std::string_view name) const noexcept {
        for (size_t i = 0; i < count_; ++i) {
            Header header = (*this)[i];
            if (header.name == name) return header;
        }
        return std::nullopt;
    }

private:
    const mph_header* headers_;
    size_t count_;
};

// One consumed event: a view over the host's mph_event, valid until the callback returns (convention 6).
// Copy what you keep (std::string(event.value())).
class Event {
public:
    explicit Event(const mph_event& event) noexcept : event_(&event) {}

    std::string_view topic() const noexcept { return event_->topic ? event_->topic : std::string_view(); }
    int32_t partition() const noexcept { return event_->partition; }
    int64_t offset() const noexcept { return event_->offset; }
    // Milliseconds since the epoch; -1 when the message has none.
    int64_t timestamp_ms() const noexcept { return event_->timestamp_ms; }
    // nullopt when the message has no key (distinct from an empty key).
    std::optional<std::string_view> key() const noexcept {
        if (event_->key == nullptr) return std::nullopt;
        return detail::bytes_view(event_->key, event_->key_len);
    }
    // The value bytes; empty for a tombstone (see is_tombstone) and for an empty value.
    std::string_view value() const noexcept { return detail::bytes_view(event_->value, event_->value_len); }
    bool is_tombstone() const noexcept { return event_->value == nullptr; }
    // The value, or nullopt for a tombstone: what Message::value wants to pass a tombstone on.
    std::optional<std::string_view> value_or_tombstone() const noexcept {
        if (is_tombstone()) return std::nullopt;
        return value();
    }
    Headers headers() const noexcept { return {event_->headers, event_->header_count}; }
    // The C struct, for what the wrapper does not cover.
    const mph_event& raw() const noexcept { return *event_; }

private:
    const mph_event* event_;
};

// The answer to an ask (ABI 1.4), handed to on_reply: the reply the asked agent sent, or a timeout.
class Reply {
public:
    Reply(uint64_t request, mph_status status, const mph_event* reply) noexcept
        : request_(request), status_(status), reply_(reply) {}
    // The id ctx.ask returned.
    uint64_t request() const noexcept { return request_; }
    bool timed_out() const noexcept { return status_ == MPH_ERR_TIMEOUT || reply_ == nullptr; }
    // MPH_OK with a reply, MPH_ERR_TIMEOUT without one.
    mph_status status() const noexcept { return status_; }
    // The reply's value; empty when it timed out.
    std::string_view value() const noexcept {
        return reply_ ? detail::bytes_view(reply_->value, reply_->value_len) : std::string_view();
    }
    // The reply message itself (headers, timestamp); nullopt when it timed out.
    std::optional<Event> event() const noexcept {
        if (!reply_) return std::nullopt;
        return Event(*reply_);
    }

private:
    uint64_t request_;
    mph_status status_;
    const mph_event* reply_;
};

// Consecutive events of one partition handed to on_batch. A view, valid until the callback returns.
class Batch {
public:
    using iterator = detail::IndexIterator<Batch, Event>;

    Batch(const mph_event* const* events, size_t count) noexcept : events_(events), count_(events ? count : 0) {}

    size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    Event operator[](size_t index) const noexcept { return Event(*events_[index]); }
    Event at(size_t index) const {
        if (index >= count_) throw std::out_of_range("mephisto::Batch::at: index out of range");
        return (*this)[index];
    }
    iterator begin() const noexcept { return {this, 0}; }
    iterator end() const noexcept { return {this, count_}; }

private:
    const mph_event* const* events_;
    size_t count_;
};

// One message to produce. The host copies everything before emit/send returns, so views are fine.
//     ctx.emit({.value = word, .key = word});
struct Message {
    std::optional<std::string_view> value;              // nullopt: a tombstone
    std::optional<std::string_view> key = std::nullopt; // nullopt: no key
    std::span<const Header> headers = {};
    int32_t partition = MPH_PARTITION_ANY;
    int64_t timestamp_ms = 0; // 0: the host stamps the current time
};

// A parameter an agent accepts. The strings must outlive the plugin: use string literals.
//     mephisto::Param{.name = "tiny_below", .description = "...", .default_value = "100"}
struct Param {
    const char* name;
    const char* description = nullptr;
    const char* default_value = nullptr; // nullptr: no default
    bool required = false;
};

// ---------------------------------------------------------------------------------------------------------
// Tables (ABI 1.1): value codecs and the Table handle
// ---------------------------------------------------------------------------------------------------------

// The table value codecs of mephisto.h: int64 is 8 bytes big-endian (Kafka's LongSerializer), double is an
// IEEE-754 binary64, big-endian. Fixed-size arrays, so that encoding a counter never allocates.
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8, "the double codec is IEEE-754 binary64");

constexpr std::array<char, 8> encode_int64(int64_t value) noexcept {
    const auto bits = static_cast<uint64_t>(value);
    std::array<char, 8> bytes{};
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
    return bytes;
}
// nullopt unless `bytes` is exactly 8 bytes.
constexpr std::optional<int64_t> decode_int64(std::string_view bytes) noexcept {
    if (bytes.size() != 8) return std::nullopt;
    uint64_t bits = 0;
    for (const char byte : bytes) bits = (bits << 8) | static_cast<unsigned char>(byte);
    return static_cast<int64_t>(bits); // modular since C++20: the two's complement reading of the bits
}
constexpr std::array<char, 8> encode_double(double value) noexcept {
    return encode_int64(std::bit_cast<int64_t>(value));
}
constexpr std::optional<double> decode_double(std::string_view bytes) noexcept {
    const std::optional<int64_t> bits = decode_int64(bytes);
    if (!bits) return std::nullopt;
    return std::bit_cast<double>(*bits);
}

class Context;

// A time window of a windowed table (ABI 1.3): [start_ms, end_ms), milliseconds since the epoch.
struct Window {
    int64_t start_ms = 0;
    int64_t end_ms = 0;
};

// Which time Table::window reads at (Faust's WindowSet accessors).
enum class WindowTime : int32_t {
    relative = MPH_WINDOW_RELATIVE, // the table's `relative_to` (.value())
    current = MPH_WINDOW_CURRENT,   // the event being processed (.current())
    now = MPH_WINDOW_NOW,           // the wall clock (.now())
};

// A host-owned table (Faust's Table): keys and values are bytes, sharded by the partition of the instance,
// changelogged and recovered by the host. Values are in the table's value codec (`value:` in YAML): raw bytes,
// int64, double (see encode_int64/encode_double; get_int64/put_int64 ... do the encoding) or JSON text.
// Resolve it once, in the constructor, and keep it as a member:
//
//     struct WordCount {
//         explicit WordCount(mephisto::Context& ctx) : counts(ctx.table("counts")) {}
//         void on_event(mephisto::Context& ctx, const mephisto::Event& word) {
//             ctx.emit(std::to_string(counts.add(word.value())), word.value());
//         }
//         mephisto::Table counts;
//     };
//
// A Table is bound to the instance that resolved it: it keeps that instance's ctx, and the host passes the
// same ctx to every callback of the instance, so any callback of that instance may use it. Never share one
// between instances (a static, a global, another thread): each instance resolves its own.
//
// ERRORS. Every member throws mephisto::Error carrying the host's status when the host refuses:
//     MPH_ERR_STATE        from a timer instance (partition -1), which has no shard, or outside a callback
//     MPH_ERR_INVALID      a value the codec refuses (not 8 bytes for int64/double, not JSON for json);
//                          from merge(), mephisto::MergeRefused: the aggregator refused the input
//     MPH_ERR_UNSUPPORTED  add() on a table whose codec is not int64, merge() on a table without an aggregator
//                          or on a host older than ABI 1.2
// Uncaught, each becomes MPH_FATAL with the message (mephisto::Error::verdict).
//
// OWNERSHIP. Views returned by get() are valid until the callback returns, views passed to for_each's visitor
// only during the visit (mephisto.h, convention 6): copy what you keep.
class Table {
public:
    // The name the table was resolved with (its YAML name).
    const std::string& name() const noexcept { return name_; }

    // The value of key, or the table's declared default when the key is absent; nullopt when it is absent
    // and the table has no default.
    std::optional<std::string_view> get(std::string_view key) const {
        const void* value = nullptr;
        size_t value_len = 0;
        const mph_status status = api_->table_get(ctx_, table_, bytes(key), key.size(), &value, &value_len);
        if (status == MPH_ERR_NOT_FOUND) return std::nullopt;
        check(status, "get");
        return std::string_view(value == nullptr ? "" : static_cast<const char*>(value), value_len);
    }
    // Writes key = value; the value must be valid for the table's codec (else Error MPH_ERR_INVALID).
    void put(std::string_view key, std::string_view value) const {
        check(api_->table_put(ctx_, table_, bytes(key), key.size(), bytes(value), value.size()), "put");
    }
    // Deletes key (a no-op when absent). Named erase, as in std::map: `delete` is a keyword.
    void erase(std::string_view key) const { check(api_->table_delete(ctx_, table_, bytes(key), key.size()), "erase"); }

    // int64 tables only: adds delta to the value (absent: the default, else 0) and returns the new value.
    // One host call, done by the host: cheaper and simpler than get_int64 + put_int64.
    int64_t add(std::string_view key, int64_t delta = 1) const {
        int64_t result = 0;
        check(api_->table_add(ctx_, table_, bytes(key), key.size(), delta, &result), "add");
        return result;
    }

    // Tables with an aggregator (YAML `aggregate: {plugin: P, name: NAME}`, ABI 1.2): folds input into key's
    // value, atomically, with one host call: the value becomes merge(current, input), where current is the
    // stored value, else the table's default, else absent. Returns the new value (a copy).
    // Throws mephisto::MergeRefused when the aggregator refuses the input or the table's codec refuses its
    // result (the table is unchanged, the host's reason is the callback's error text), and Error with
    // MPH_ERR_UNSUPPORTED when the table has no aggregator or the host is older than ABI 1.2.
    std::string merge(std::string_view key, std::string_view input) const {
        // MPH_HAS_MEMBER(mph_host_api, api_, table_merge) spelled out: its C cast trips -Wold-style-cast.
        // The host may predate 1.2 even though this plugin was built against 1.2, so check at use.
        if (api_->struct_size < offsetof(mph_host_api, table_merge) + sizeof(api_->table_merge)) {
            throw Error("table '" + name_ + "': merge needs Mephisto ABI 1.2, the host offers " +
                            std::to_string(api_->abi_major) + "." + std::to_string(api_->abi_minor),
                        MPH_ERR_UNSUPPORTED);
        }
        const void* value = nullptr;
        size_t value_len = 0;
        const mph_status status =
            api_->table_merge(ctx_, table_, bytes(key), key.size(), bytes(input), input.size(), &value, &value_len);
        if (status == MPH_ERR_INVALID) throw MergeRefused(message(status, "merge"));
        check(status, "merge");
        return std::string(detail::bytes_view(value, value_len));
    }

    // get()/put() through the int64 codec. get_int64 throws Error (MPH_ERR_INVALID) when the value is not
    // 8 bytes, which happens only on a table whose codec is not int64.
    std::optional<int64_t> get_int64(std::string_view key) const {
        const std::optional<std::string_view> value = get(key);
        if (!value) return std::nullopt;
        if (const std::optional<int64_t> number = decode_int64(*value)) return number;
        throw wrong_size(*value, "int64");
    }
    void put_int64(std::string_view key, int64_t value) const {
        const std::array<char, 8> encoded = encode_int64(value);
        put(key, std::string_view(encoded.data(), encoded.size()));
    }

    // get()/put() through the double codec; get_double throws like get_int64.
    std::optional<double> get_double(std::string_view key) const {
        const std::optional<std::string_view> value = get(key);
        if (!value) return std::nullopt;
        if (const std::optional<double> number = decode_double(*value)) return number;
        throw wrong_size(*value, "double");
    }
    void put_double(std::string_view key, double value) const {
        const std::array<char, 8> encoded = encode_double(value);
        put(key, std::string_view(encoded.data(), encoded.size()));
    }

    // Calls visit(std::string_view key, std::string_view value) for every entry of the instance's shard, in
    // key byte order. visit returns void, or bool where false stops the iteration. Writes made by visit are
    // not seen by this iteration. An exception thrown by visit stops the iteration and is rethrown here,
    // after the host's table_iterate has returned: it never unwinds through host frames (convention 9).
    template <class Visit>
    void for_each(Visit&& visit) const {
        using Result = std::invoke_result_t<Visit&, std::string_view, std::string_view>;
        static_assert(std::is_void_v<Result> || std::is_same_v<Result, bool>,
                      "Table::for_each: the visitor must return void or bool (false stops)");
        struct Iteration {
            std::remove_reference_t<Visit>* visit;
            std::exception_ptr error;
            bool stopped = false;
        };
        Iteration iteration{&visit, nullptr};
        // Captureless, so it converts to the C function pointer; everything it needs comes through `user`.
        const mph_table_visit_fn trampoline = [](void* user, const void* key, size_t key_len, const void* value,
                                                 size_t value_len) noexcept -> mph_status {
            Iteration& state = *static_cast<Iteration*>(user);
            try {
                const std::string_view key_view = detail::bytes_view(key, key_len);
                const std::string_view value_view = detail::bytes_view(value, value_len);
                if constexpr (std::is_void_v<Result>) {
                    (*state.visit)(key_view, value_view);
                } else if (!(*state.visit)(key_view, value_view)) {
                    state.stopped = true;
                    return MPH_FATAL; // any status but MPH_OK stops the host's iteration
                }
                return MPH_OK;
            } catch (...) {
                state.error = std::current_exception();
                return MPH_FATAL;
            }
        };
        const mph_status status = api_->table_iterate(ctx_, table_, trampoline, &iteration);
        if (iteration.error) std::rethrow_exception(iteration.error);
        if (iteration.stopped) return;
        check(status, "for_each");
    }

    // Windowed tables (ABI 1.3): key's value in the window containing (time - delta_ms), with that window; the
    // table's default when the window has no value; nullopt when it has none (or expired) and there is no
    // default. For hopping windows, the latest window containing that time.
    std::optional<std::pair<std::string_view, Window>> window(std::string_view key, WindowTime at = WindowTime::relative,
                                                              int64_t delta_ms = 0) const {
        require_windows("window");
        const void* value = nullptr;
        size_t value_len = 0;
        mph_window w{sizeof(mph_window), 0, 0};
        const mph_status status = api_->window_get(ctx_, table_, bytes(key), key.size(), static_cast<int32_t>(at),
                                                   delta_ms, &value, &value_len, &w);
        if (status == MPH_ERR_NOT_FOUND) return std::nullopt;
        check(status, "window");
        return std::make_pair(detail::bytes_view(value, value_len), Window{w.start_ms, w.end_ms});
    }
    // Calls visit(Window, std::string_view value) for each of key's live windows, oldest first.
    template <class Visit>
    void for_each_window(std::string_view key, Visit&& visit) const {
        require_windows("for_each_window");
        struct Iteration {
            std::remove_reference_t<Visit>* visit;
            std::exception_ptr error;
        };
        Iteration iteration{&visit, nullptr};
        const mph_window_visit_fn trampoline = [](void* user, const mph_window* w, const void* value,
                                                  size_t value_len) noexcept -> mph_status {
            Iteration& state = *static_cast<Iteration*>(user);
            try {
                (*state.visit)(Window{w->start_ms, w->end_ms}, detail::bytes_view(value, value_len));
                return MPH_OK;
            } catch (...) {
                state.error = std::current_exception();
                return MPH_FATAL;
            }
        };
        const mph_status status = api_->window_iterate(ctx_, table_, bytes(key), key.size(), trampoline, &iteration);
        if (iteration.error) std::rethrow_exception(iteration.error);
        check(status, "for_each_window");
    }

    // The C handles, for what the wrapper does not cover.
    mph_table* raw() const noexcept { return table_; }
    mph_agent_ctx* raw_ctx() const noexcept { return ctx_; }

private:
    friend class Context; // the only way to get a Table is Context::table, which resolves and checks it

    Table(mph_agent_ctx* ctx, const mph_host_api* api, mph_table* table, std::string name)
        : ctx_(ctx), api_(api), table_(table), name_(std::move(name)) {}

    // Never NULL for a present byte string: an empty key or value must not read as "no bytes given".
    static const char* bytes(std::string_view text) noexcept { return text.data() ? text.data() : ""; }

    void require_windows(const char* operation) const {
        if (api_->struct_size < offsetof(mph_host_api, window_iterate) + sizeof(api_->window_iterate))
            throw Error("table '" + name_ + "': " + operation + " needs Mephisto ABI 1.3, the host offers " +
                            std::to_string(api_->abi_major) + "." + std::to_string(api_->abi_minor),
                        MPH_ERR_UNSUPPORTED);
    }

    // A hint after the status for the causes an agent author can act on.
    static std::string_view hint(mph_status status, std::string_view operation) noexcept {
        const bool merge = operation == "merge";
        switch (status) {
        case MPH_ERR_STATE:
            return " (tables are usable only in callbacks of a partition instance, not from a timer instance "
                   "(partition -1))";
        case MPH_ERR_UNSUPPORTED:
            return merge ? " (the table has no aggregator: give it `aggregate: {plugin: P, name: NAME}` in YAML)"
                         : " (add needs a table whose value codec is int64)";
        case MPH_ERR_INVALID:
            return merge ? " (the aggregator refused the input, or the table's value codec refused its result; the "
                           "host's reason is the callback's error text)"
                         : " (the value is not valid for the table's value codec, or an argument is invalid)";
        default:
            return "";
        }
    }

    std::string message(mph_status status, const char* operation) const {
        return "table '" + name_ + "': " + operation + " failed: " + std::string(status_name(status)) +
               std::string(hint(status, operation));
    }

    void check(mph_status status, const char* operation) const {
        if (status == MPH_OK) return;
        throw Error(message(status, operation), status);
    }

    Error wrong_size(std::string_view value, const char* codec) const {
        return Error("table '" + name_ + "': the value is " + std::to_string(value.size()) + " bytes, an " + codec +
                         " is 8: is the table's value codec " + codec + "?",
                     MPH_ERR_INVALID);
    }

    mph_agent_ctx* ctx_;
    const mph_host_api* api_;
    mph_table* table_;
    std::string name_;
};

// ---------------------------------------------------------------------------------------------------------
// Context: the host as seen from one callback
// ---------------------------------------------------------------------------------------------------------

// The host's services for the instance being called. Created by the trampoline for each callback and
// valid only during it: never store a Context or call it from another thread (convention 7).
class Context {
public:
    Context(mph_agent_ctx* ctx, const mph_host_api* api) noexcept : ctx_(ctx), api_(api) {}

    // --- logging through the host's logger for this plugin and agent ----------------------------------
    // Several parts are concatenated with operator<<: ctx.log_info("routed ", amount, " to ", topic).
    template <class... Parts>
    void log(int32_t level, const Parts&... parts) const {
        if constexpr (sizeof...(Parts) == 1 && (std::is_convertible_v<const Parts&, std::string_view> && ...)) {
            const std::string_view text = (std::string_view(parts), ...);
            api_->log(ctx_, level, text.data(), text.size());
        } else {
            std::ostringstream text;
            (text << ... << parts);
            const std::string joined = std::move(text).str();
            api_->log(ctx_, level, joined.data(), joined.size());
        }
    }
    template <class... Parts>
    void log_trace(const Parts&... parts) const {
        log(MPH_LOG_TRACE, parts...);
    }
    template <class... Parts>
    void log_debug(const Parts&... parts) const {
        log(MPH_LOG_DEBUG, parts...);
    }
    template <class... Parts>
    void log_info(const Parts&... parts) const {
        log(MPH_LOG_INFO, parts...);
    }
    template <class... Parts>
    void log_warn(const Parts&... parts) const {
        log(MPH_LOG_WARN, parts...);
    }
    template <class... Parts>
    void log_error(const Parts&... parts) const {
        log(MPH_LOG_ERROR, parts...);
    }

    // Records the reason for a RETRY/FATAL verdict. Rarely needed: throwing does it for you.
    void set_error(std::string_view message) const noexcept { api_->set_error(ctx_, message.data(), message.size()); }

    // --- params ------------------------------------------------------------------------------------------
    // The YAML value, else the declared default (the host applies it), else nullopt.
    // Views stay valid for the instance's life.
    std::optional<std::string_view> param(std::string_view name) const {
        const std::string terminated(name); // the ABI wants a NUL-terminated name
        if (const char* value = api_->param(ctx_, terminated.c_str())) return std::string_view(value);
        return std::nullopt;
    }
    std::string_view param_or(std::string_view name, std::string_view fallback) const {
        return param(name).value_or(fallback);
    }
    // The param or throws Error naming it: use in constructors, where it becomes a failed create.
    std::string_view require_param(std::string_view name) const {
        if (auto value = param(name)) return *value;
        throw Error("missing param '" + std::string(name) + "'");
    }
    // The param parsed as a number (integral or floating point) or bool ("true"/"false"/"1"/"0").
    // Throws Error when it is absent (without fallback) or does not parse entirely.
    template <class Number>
    Number param_as(std::string_view name) const {
        return parse_param<Number>(name, require_param(name));
    }
    template <class Number>
    Number param_as(std::string_view name, Number fallback) const {
        const auto value = param(name);
        return value ? parse_param<Number>(name, *value) : fallback;
    }

    // --- producing -------------------------------------------------------------------------------------------
    // To every sink of the agent (`sinks:` in YAML). Throws Error (MPH_ERR_UNSUPPORTED without sinks).
    void emit(const Message& message) const {
        check(with_c_message(message, [&](const mph_message& c_message) { return api_->emit(ctx_, &c_message); }),
              "emit");
    }
    void emit(std::string_view value, std::optional<std::string_view> key = std::nullopt) const {
        emit(Message{.value = value, .key = key});
    }
    // To the named topic, which need not be a sink.
    void send(std::string_view topic, const Message& message) const {
        check(with_c_message(message,
                             [&](const mph_message& c_message) {
                                 return api_->send(ctx_, topic.data(), topic.size(), &c_message);
                             }),
              "send");
    }
    void send(std::string_view topic, std::string_view value, std::optional<std::string_view> key = std::nullopt,
              int32_t partition = MPH_PARTITION_ANY) const {
        send(topic, Message{.value = value, .key = key, .partition = partition});
    }
    // The event being processed, unchanged, to every sink. Only inside on_event (else Error MPH_ERR_STATE).
    void forward() const { check(api_->forward(ctx_), "forward"); }

    // --- agents talking to agents (ABI 1.4) ----------------------------------------------------------------
    // `agent` is an agent's YAML name in this pipeline; the message goes to the first topic it reads, so any
    // host of the app that owns the key's partition gets it.
    // Faust's cast: no reply expected.
    void cast(std::string_view agent, const Message& message) const {
        require_messaging("cast");
        const std::string name(agent);
        check(with_c_message(message, [&](const mph_message& c_message) { return api_->cast(ctx_, name.c_str(), &c_message); }),
              "cast");
    }
    void cast(std::string_view agent, std::string_view value, std::optional<std::string_view> key = std::nullopt) const {
        cast(agent, Message{.value = value, .key = key});
    }
    // Faust's ask: the reply (or a timeout) comes to this instance's on_reply(Context&, const Reply&) with the
    // id returned here. The event being processed stays uncommitted until then.
    uint64_t ask(std::string_view agent, const Message& message, std::chrono::milliseconds timeout) const {
        require_messaging("ask");
        const std::string name(agent);
        uint64_t request = 0;
        check(with_c_message(message,
                             [&](const mph_message& c_message) {
                                 return api_->ask(ctx_, name.c_str(), &c_message, timeout.count(), &request);
                             }),
              "ask");
        return request;
    }
    uint64_t ask(std::string_view agent, std::string_view value, std::optional<std::string_view> key,
                 std::chrono::milliseconds timeout) const {
        return ask(agent, Message{.value = value, .key = key}, timeout);
    }
    // Answers the event being processed when an ask sent it; false (nothing sent) when nobody asked.
    // Only inside on_event.
    bool reply(std::string_view value) const {
        require_messaging("reply");
        const mph_status status = api_->reply(ctx_, value.data() ? value.data() : "", value.size());
        if (status == MPH_ERR_NOT_FOUND) return false;
        check(status, "reply");
        return true;
    }
    // `ack: manual` in YAML: acknowledges an event this instance processed (now or in an earlier callback).
    void ack(int64_t offset) const {
        require_messaging("ack");
        check(api_->ack(ctx_, offset), "ack");
    }
    void ack(const Event& event) const { ack(event.offset()); }

    // --- identity ------------------------------------------------------------------------------------------
    // The partition this instance serves, or -1 for a timer instance.
    int32_t partition() const noexcept { return api_->partition(ctx_); }
    // The agent's name in YAML (not the plugin's agent name).
    std::string_view agent_name() const noexcept {
        const char* name = api_->agent_name(ctx_);
        return name ? std::string_view(name) : std::string_view();
    }

    // --- tables (ABI 1.1) ---------------------------------------------------------------------------------
    // The table `name` the agent lists under `tables:` in YAML. Call it in the constructor and keep the Table.
    // Throws Error when the agent does not declare the table (MPH_ERR_NOT_FOUND) or when the host is older
    // than ABI 1.1 (MPH_ERR_UNSUPPORTED); in the constructor, either becomes a failed create with the message.
    Table table(std::string_view name) const;

    // The C handles, for host members newer than this wrapper (check MPH_HAS_MEMBER first).
    mph_agent_ctx* raw() const noexcept { return ctx_; }
    const mph_host_api& api() const noexcept { return *api_; }

private:
    void require_messaging(const char* operation) const {
        if (api_->struct_size < offsetof(mph_host_api, ack) + sizeof(api_->ack))
            throw Error(std::string(operation) + " needs a host with ABI 1.4; this host has " +
                            std::to_string(api_->abi_major) + "." + std::to_string(api_->abi_minor),
                        MPH_ERR_UNSUPPORTED);
    }
    static void check(mph_status status, const char* operation) {
        if (status == MPH_OK) return;
        std::string message = std::string(operation) + " failed: " + std::string(status_name(status));
        throw Error(message, status);
    }

    template <class Produce>
    static mph_status with_c_message(const Message& message, Produce&& produce) {
        std::vector<mph_header> headers;
        headers.reserve(message.headers.size());
        for (const Header& header : message.headers) {
            headers.push_back(mph_header{header.name.data(), header.name.size(),
                                         header.value ? header.value->data() : nullptr,
                                         header.value ? header.value->size() : 0});
        }
        mph_message c_message{};
        c_message.struct_size = sizeof(mph_message);
        if (message.key) {
            // A present but empty key must stay distinguishable from "no key": never pass NULL for it.
            c_message.key = message.key->data() ? message.key->data() : "";
            c_message.key_len = message.key->size();
        }
        if (message.value) {
            c_message.value = message.value->data() ? message.value->data() : "";
            c_message.value_len = message.value->size();
        }
        c_message.headers = headers.empty() ? nullptr : headers.data();
        c_message.header_count = headers.size();
        c_message.partition = message.partition;
        c_message.timestamp_ms = message.timestamp_ms;
        return produce(c_message);
    }

    template <class Number>
    static Number parse_param(std::string_view name, std::string_view text) {
        auto invalid = [&]() {
            return Error("param '" + std::string(name) + "' = '" + std::string(text) + "' is not a valid " +
                         (std::is_same_v<Number, bool> ? "bool" : "number"));
        };
        if constexpr (std::is_same_v<Number, bool>) {
            if (text == "true" || text == "1") return true;
            if (text == "false" || text == "0") return false;
            throw invalid();
        } else {
            static_assert(std::is_arithmetic_v<Number>, "param_as<T>: T must be a number or bool");
            Number parsed{};
            const char* end = text.data() + text.size();
            const auto [stop, error] = std::from_chars(text.data(), end, parsed);
            if (error != std::errc() || stop != end) throw invalid();
            return parsed;
        }
    }

    mph_agent_ctx* ctx_;
    const mph_host_api* api_;
};

inline Table Context::table(std::string_view name) const {
    std::string table_name(name); // also the NUL-terminated name the ABI wants
    // MPH_HAS_MEMBER(mph_host_api, api_, table_iterate) spelled out: its C cast trips -Wold-style-cast.
    // The host's table may predate 1.1 even though this plugin was built against 1.1, so check at use.
    if (api_->struct_size < offsetof(mph_host_api, table_iterate) + sizeof(api_->table_iterate)) {
        throw Error("table '" + table_name + "': the host offers Mephisto ABI " + std::to_string(api_->abi_major) +
                        "." + std::to_string(api_->abi_minor) + ", tables need ABI 1.1",
                    MPH_ERR_UNSUPPORTED);
    }
    mph_table* handle = api_->table(ctx_, table_name.c_str());
    if (handle == nullptr) {
        throw Error("table '" + table_name + "' is not declared for agent '" + std::string(agent_name()) +
                        "': list it under the agent's `tables:` in YAML",
                    MPH_ERR_NOT_FOUND);
    }
    return Table(ctx_, api_, handle, std::move(table_name));
}

// ---------------------------------------------------------------------------------------------------------
// Agent detection
// ---------------------------------------------------------------------------------------------------------

namespace detail {

// The return type a callback may have: void (meaning MPH_OK) or a verdict.
template <class R>
concept CallbackResult = std::is_void_v<R> || std::is_same_v<R, mph_status>;

template <class T>
concept HasOnEvent = requires(T& agent, Context& ctx, const Event& event) {
    agent.on_event(ctx, event);
};
template <class T>
concept HasOnBatch = requires(T& agent, Context& ctx, Batch batch) {
    agent.on_batch(ctx, batch);
};
template <class T>
concept HasOnTimer = requires(T& agent, Context& ctx, std::string_view timer, int64_t now_ms) {
    agent.on_timer(ctx, timer, now_ms);
};
template <class T>
concept HasOnAssigned = requires(T& agent, Context& ctx, int32_t partition) {
    agent.on_assigned(ctx, partition);
};
template <class T>
concept HasOnRevoked = requires(T& agent, Context& ctx, int32_t partition) {
    agent.on_revoked(ctx, partition);
};
template <class T>
concept HasOnWindowClose = requires(T& agent, Context& ctx, std::string_view text, Window window) {
    agent.on_window_close(ctx, text, text, window, text);
};

// A member that exists by name but does not match the expected signature is almost always a typo in the
// parameter list; without this check the wrapper would silently leave the callback NULL.
template <class T>
concept NamesOnEvent = requires {
    &T::on_event;
};
template <class T>
concept NamesOnBatch = requires {
    &T::on_batch;
};
template <class T>
concept NamesOnTimer = requires {
    &T::on_timer;
};
template <class T>
concept NamesOnAssigned = requires {
    &T::on_assigned;
};
template <class T>
concept NamesOnRevoked = requires {
    &T::on_revoked;
};
template <class T>
concept NamesOnWindowClose = requires {
    &T::on_window_close;
};
template <class T>
concept HasOnReply = requires(T& agent, Context& ctx, const Reply& reply) {
    agent.on_reply(ctx, reply);
};
template <class T>
concept NamesOnReply = requires {
    &T::on_reply;
};

template <class T>
void check_agent_class() {
    static_assert(std::is_constructible_v<T, Context&> || std::is_default_constructible_v<T>,
                  "an agent class needs a constructor T(mephisto::Context&) or a default constructor");
    static_assert(HasOnEvent<T> || HasOnBatch<T> || HasOnTimer<T>,
                  "an agent class needs on_event(Context&, const Event&), on_batch(Context&, Batch) or "
                  "on_timer(Context&, std::string_view, int64_t)");
    static_assert(HasOnEvent<T> || !NamesOnEvent<T>, "on_event must be callable as on_event(Context&, const Event&)");
    static_assert(HasOnBatch<T> || !NamesOnBatch<T>, "on_batch must be callable as on_batch(Context&, Batch)");
    static_assert(HasOnTimer<T> || !NamesOnTimer<T>,
                  "on_timer must be callable as on_timer(Context&, std::string_view, int64_t)");
    static_assert(HasOnAssigned<T> || !NamesOnAssigned<T>,
                  "on_assigned must be callable as on_assigned(Context&, int32_t)");
    static_assert(HasOnRevoked<T> || !NamesOnRevoked<T>,
                  "on_revoked must be callable as on_revoked(Context&, int32_t)");
    static_assert(HasOnWindowClose<T> || !NamesOnWindowClose<T>,
                  "on_window_close must be callable as on_window_close(Context&, std::string_view table, "
                  "std::string_view key, mephisto::Window, std::string_view value)");
    static_assert(HasOnReply<T> || !NamesOnReply<T>, "on_reply must be callable as on_reply(Context&, const mephisto::Reply&)");
}

} // namespace detail

// What mephisto::agent<T>(...) returns: the declaration of one agent, consumed by MEPHISTO_PLUGIN.
template <class T>
struct AgentDefinition {
    const char* name;
    const char* description;
    std::vector<Param> params;
};

// Declares an agent implemented by class T. Strings must be literals (they are referenced, not copied).
template <class T>
AgentDefinition<T> agent(const char* name, const char* description = nullptr,
                         std::initializer_list<Param> params = {}) {
    detail::check_agent_class<T>();
    return {name, description, std::vector<Param>(params)};
}

// ---------------------------------------------------------------------------------------------------------
// Codecs and aggregators (ABI 1.2): detection, trampolines, definitions
// ---------------------------------------------------------------------------------------------------------

namespace detail {

// Writes a NUL-terminated message into a caller-provided buffer, truncated to it.
inline void write_error(char* errbuf, size_t errbuf_size, const char* message) noexcept {
    if (errbuf == nullptr || errbuf_size == 0) return;
    std::snprintf(errbuf, errbuf_size, "%s", message ? message : "");
}
inline void write_error(char* errbuf, size_t errbuf_size, const std::string& message) noexcept {
    write_error(errbuf, errbuf_size, message.c_str());
}

// What a codec class may have: static members only (the host calls them outside any instance).
template <class T>
concept HasValidate = requires(std::string_view value) { T::validate(value); };
template <class T>
concept HasToJson = requires(std::string_view value) { T::to_json(value); };
template <class T>
concept ValidateReturnsVoid = requires(std::string_view value) {
    { T::validate(value) } -> std::same_as<void>;
};
template <class T>
concept ToJsonReturnsText = requires(std::string_view value) {
    { T::to_json(value) } -> std::convertible_to<std::string_view>;
};
template <class T>
concept NamesValidate = requires { &T::validate; };
template <class T>
concept NamesToJson = requires { &T::to_json; };

template <class T>
void check_codec_class() {
    static_assert(HasValidate<T> || HasToJson<T>,
                  "a codec class needs static void validate(std::string_view value) (throws to refuse a value) "
                  "and/or static std::string to_json(std::string_view value)");
    static_assert(HasValidate<T> || !NamesValidate<T>,
                  "validate must be a static member callable as T::validate(std::string_view)");
    static_assert(HasToJson<T> || !NamesToJson<T>,
                  "to_json must be a static member callable as T::to_json(std::string_view)");
    static_assert(!HasValidate<T> || ValidateReturnsVoid<T>,
                  "validate must return void: it accepts a value by returning and refuses it by throwing");
    static_assert(!HasToJson<T> || ToJsonReturnsText<T>,
                  "to_json must return the JSON text: std::string (or anything convertible to std::string_view)");
}

// What an aggregator class must have.
template <class T>
concept HasMerge = requires(std::optional<std::string_view> current, std::string_view input) {
    T::merge(current, input);
};
template <class T>
concept MergeReturnsValue = requires(std::optional<std::string_view> current, std::string_view input) {
    { T::merge(current, input) } -> std::convertible_to<std::string_view>;
};
template <class T>
concept NamesMerge = requires { &T::merge; };

template <class T>
void check_aggregator_class() {
    static_assert(HasMerge<T> || !NamesMerge<T>,
                  "merge must be a static member callable as T::merge(std::optional<std::string_view> current, "
                  "std::string_view input)");
    static_assert(HasMerge<T>, "an aggregator class needs static std::string merge(std::optional<std::string_view> "
                               "current, std::string_view input) (throws to refuse the input)");
    static_assert(!HasMerge<T> || MergeReturnsValue<T>,
                  "merge must return the new value: std::string (or anything convertible to std::string_view)");
}

// Runs a codec or aggregator member: MPH_OK when it returns, MPH_ERR_INVALID with the exception's text in
// errbuf when it throws. Nothing crosses the C boundary (convention 9).
template <class Callback>
mph_status refusing(char* errbuf, size_t errbuf_size, Callback&& callback) noexcept {
    try {
        callback();
        return MPH_OK;
    } catch (const std::exception& error) {
        write_error(errbuf, errbuf_size, error.what());
    } catch (...) {
        write_error(errbuf, errbuf_size, "unknown exception (not derived from std::exception)");
    }
    return MPH_ERR_INVALID;
}

// Hands a result to the host's output; never passes NULL for present bytes.
inline void write_all(mph_write_fn write, void* sink, std::string_view bytes) noexcept {
    write(sink, bytes.data() ? bytes.data() : "", bytes.size());
}

// The C functions of a codec descriptor. They touch no plugin state and never call the host.
template <class T>
struct CodecTrampolines {
    static mph_status validate(const void* value, size_t value_len, char* errbuf,
                               size_t errbuf_size) noexcept requires HasValidate<T> {
        return refusing(errbuf, errbuf_size, [&]() { T::validate(bytes_view(value, value_len)); });
    }

    // The JSON text is computed whole before anything is written: a throw writes nothing.
    static mph_status to_json(const void* value, size_t value_len, mph_write_fn write,
                              void* sink) noexcept requires HasToJson<T> {
        if (write == nullptr) return MPH_ERR_INVALID;
        return refusing(nullptr, 0, [&]() {
            const auto json = T::to_json(bytes_view(value, value_len));
            write_all(write, sink, std::string_view(json));
        });
    }
};

// The C function of an aggregator descriptor. current is NULL when the key is absent: nullopt, as opposed to
// a present empty value.
template <class T>
struct AggregatorTrampolines {
    static mph_status merge(const void* current, size_t current_len, const void* input, size_t input_len,
                            mph_write_fn write, void* sink, char* errbuf, size_t errbuf_size) noexcept {
        if (write == nullptr) {
            write_error(errbuf, errbuf_size, "merge was given no write function");
            return MPH_ERR_INVALID;
        }
        return refusing(errbuf, errbuf_size, [&]() {
            std::optional<std::string_view> current_value;
            if (current != nullptr) current_value = bytes_view(current, current_len);
            const auto merged = T::merge(current_value, bytes_view(input, input_len));
            write_all(write, sink, std::string_view(merged));
        });
    }
};

// What a key-function class must have: static std::string key(const Event&) (ABI 1.2).
template <class T>
concept HasKeyFunction = requires(const Event& event) {
    { T::key(event) } -> std::convertible_to<std::string_view>;
};

// The C function of a key-function descriptor: the key is computed whole before anything is written.
template <class T>
struct KeyFunctionTrampolines {
    static mph_status key(const mph_event* event, mph_write_fn write, void* sink, char* errbuf,
                          size_t errbuf_size) noexcept {
        if (write == nullptr || event == nullptr) {
            write_error(errbuf, errbuf_size, "key was given no event or no write function");
            return MPH_ERR_INVALID;
        }
        return refusing(errbuf, errbuf_size, [&]() {
            const auto key = T::key(Event(*event));
            write_all(write, sink, std::string_view(key));
        });
    }
};

template <class T>
concept HasKeep = requires(const Event& event) {
    { T::keep(event) } -> std::convertible_to<bool>;
};

// The C function of a predicate descriptor (ABI 1.3): 1 keep, 0 filter out, MPH_ERR_INVALID when keep throws.
template <class T>
struct PredicateTrampolines {
    static int32_t keep(const mph_event* event, char* errbuf, size_t errbuf_size) noexcept {
        if (event == nullptr) {
            write_error(errbuf, errbuf_size, "keep was given no event");
            return MPH_ERR_INVALID;
        }
        bool kept = false;
        const mph_status status = refusing(errbuf, errbuf_size, [&]() { kept = static_cast<bool>(T::keep(Event(*event))); });
        return status != MPH_OK ? status : kept ? 1 : 0;
    }
};

} // namespace detail

// What mephisto::predicate<T>(...) returns: a filter predicate, consumed by MEPHISTO_PLUGIN.
template <class T>
struct PredicateDefinition {
    const char* name;
    const char* description;

    mph_predicate_descriptor descriptor() const noexcept {
        mph_predicate_descriptor d{};
        d.struct_size = sizeof(mph_predicate_descriptor);
        d.name = name;
        d.description = description;
        d.keep = &detail::PredicateTrampolines<T>::keep;
        return d;
    }
};

// Declares a filter predicate implemented by class T (ABI 1.3), for an agent's YAML
// `filter: {plugin: P, predicate: NAME}`:
//     static bool keep(const mephisto::Event& event)   true: the agent gets it; false: it is filtered out;
//                                                      throws: the event follows the agent's error policy
// Called from any thread, concurrently, outside any agent callback: keep no mutable state, do not call the host.
template <class T>
PredicateDefinition<T> predicate(const char* name, const char* description = nullptr) {
    static_assert(detail::HasKeep<T>, "a predicate class needs static bool keep(const mephisto::Event& event)");
    return {name, description};
}

// What mephisto::key_function<T>(...) returns: a group_by key function, consumed by MEPHISTO_PLUGIN.
template <class T>
struct KeyFunctionDefinition {
    const char* name;
    const char* description;

    mph_key_fn_descriptor descriptor() const noexcept {
        mph_key_fn_descriptor d{};
        d.struct_size = sizeof(mph_key_fn_descriptor);
        d.name = name;
        d.description = description;
        d.key = &detail::KeyFunctionTrampolines<T>::key;
        return d;
    }
};

// Declares a key function implemented by class T, for YAML's `group_by: {plugin: P, function: NAME}`:
//     static std::string key(const mephisto::Event& event)   the key to group the event by; throws to refuse it
// (the event then follows the agent's error policy). Called from any thread, concurrently, outside any agent
// callback: keep no mutable state, and do not call the host. Strings must be literals.
template <class T>
KeyFunctionDefinition<T> key_function(const char* name, const char* description = nullptr) {
    static_assert(detail::HasKeyFunction<T>,
                  "a key-function class needs static std::string key(const mephisto::Event& event)");
    return {name, description};
}

// What mephisto::codec<T>(...) returns: the declaration of one value codec, consumed by MEPHISTO_PLUGIN.
template <class T>
struct CodecDefinition {
    const char* name;
    const char* description;

    // The C descriptor MEPHISTO_PLUGIN lists; also usable on its own, e.g. to test the codec.
    mph_codec_descriptor descriptor() const noexcept {
        mph_codec_descriptor d{};
        d.struct_size = sizeof(mph_codec_descriptor);
        d.name = name;
        d.description = description;
        if constexpr (detail::HasValidate<T>) d.validate = &detail::CodecTrampolines<T>::validate;
        if constexpr (detail::HasToJson<T>) d.to_json = &detail::CodecTrampolines<T>::to_json;
        return d;
    }
};

// Declares a value codec implemented by class T (static validate and/or to_json; see the top of this file).
// Strings must be literals (they are referenced, not copied).
template <class T>
CodecDefinition<T> codec(const char* name, const char* description = nullptr) {
    detail::check_codec_class<T>();
    return {name, description};
}

// What mephisto::aggregator<T>(...) returns: the declaration of one table aggregator, consumed by MEPHISTO_PLUGIN.
template <class T>
struct AggregatorDefinition {
    const char* name;
    const char* description;

    // The C descriptor MEPHISTO_PLUGIN lists; also usable on its own, e.g. in testing::TableSpec::aggregator.
    mph_aggregator_descriptor descriptor() const noexcept {
        mph_aggregator_descriptor d{};
        d.struct_size = sizeof(mph_aggregator_descriptor);
        d.name = name;
        d.description = description;
        d.merge = &detail::AggregatorTrampolines<T>::merge;
        return d;
    }
};

// Declares a table aggregator implemented by class T (static merge; see the top of this file).
// Strings must be literals (they are referenced, not copied).
template <class T>
AggregatorDefinition<T> aggregator(const char* name, const char* description = nullptr) {
    detail::check_aggregator_class<T>();
    return {name, description};
}

// A one-line description of the whole plugin, for `mephisto plugin inspect`. Optional MEPHISTO_PLUGIN argument.
struct PluginDescription {
    const char* text;
};
inline PluginDescription description(const char* text) noexcept { return {text}; }

// ---------------------------------------------------------------------------------------------------------
// The plugin definition and the trampolines (internal)
// ---------------------------------------------------------------------------------------------------------

namespace detail {

// Everything the host reads about one agent, with stable addresses (the descriptor points into it).
struct AgentRecord {
    std::vector<mph_param_spec> specs;
    std::vector<const mph_param_spec*> spec_pointers;
    mph_agent_descriptor descriptor{};
};

class Plugin;

} // namespace detail
} // namespace mephisto

extern "C" {
// Defined by MEPHISTO_PLUGIN; declared here so that tests can hand it to mephisto::testing::AgentDriver.
MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor,
                                                              const mph_host_api* api, char* errbuf,
                                                              size_t errbuf_size);
}

namespace mephisto::detail {

// The plugin's single global, defined by MEPHISTO_PLUGIN in one translation unit (never inline, so it can
// never become a GNU_UNIQUE symbol that pins the image in memory).
extern Plugin this_plugin;

template <class T>
struct Trampolines;

// The plugin definition: descriptor storage plus the host table kept from the entry call.
class Plugin {
public:
    template <class... Items>
    Plugin(const char* name, const char* version, Items&&... items) {
        descriptor_.struct_size = sizeof(mph_plugin_descriptor);
        descriptor_.abi_major = MPH_ABI_VERSION_MAJOR;
        descriptor_.abi_minor = MPH_ABI_VERSION_MINOR;
        descriptor_.name = name;
        descriptor_.version = version;
        (add(std::forward<Items>(items)), ...);
        for (const auto& record : agents_) agent_pointers_.push_back(&record->descriptor);
        descriptor_.agents = agent_pointers_.data();
        descriptor_.agent_count = agent_pointers_.size();
        // codecs_ and aggregators_ are complete: their elements no longer move.
        for (const mph_codec_descriptor& codec : codecs_) codec_pointers_.push_back(&codec);
        descriptor_.codecs = codec_pointers_.empty() ? nullptr : codec_pointers_.data();
        descriptor_.codec_count = codec_pointers_.size();
        for (const mph_aggregator_descriptor& aggregator : aggregators_) aggregator_pointers_.push_back(&aggregator);
        descriptor_.aggregators = aggregator_pointers_.empty() ? nullptr : aggregator_pointers_.data();
        descriptor_.aggregator_count = aggregator_pointers_.size();
        for (const mph_key_fn_descriptor& fn : key_functions_) key_function_pointers_.push_back(&fn);
        descriptor_.key_functions = key_function_pointers_.empty() ? nullptr : key_function_pointers_.data();
        descriptor_.key_function_count = key_function_pointers_.size();
        for (const mph_predicate_descriptor& p : predicates_) predicate_pointers_.push_back(&p);
        descriptor_.predicates = predicate_pointers_.empty() ? nullptr : predicate_pointers_.data();
        descriptor_.predicate_count = predicate_pointers_.size();
    }
    Plugin(const Plugin&) = delete;
    Plugin& operator=(const Plugin&) = delete;

    // The body of mephisto_plugin_entry (convention 1).
    const mph_plugin_descriptor* enter(uint32_t host_major, uint32_t host_minor, const mph_host_api* api, char* errbuf,
                                       size_t errbuf_size) noexcept {
        try {
            const std::string plugin = std::string("plugin '") + descriptor_.name + "'";
            if (host_major != MPH_ABI_VERSION_MAJOR) {
                write_error(errbuf, errbuf_size,
                            plugin + " needs Mephisto ABI " + std::to_string(MPH_ABI_VERSION_MAJOR) +
                                ".x, the host offers " + std::to_string(host_major) + "." + std::to_string(host_minor));
                return nullptr;
            }
            // The wrapper needs only the 1.0 members up front; agent_name is the last of them. Newer members are
            // checked where they are used (Context::table, Table::merge), as convention 4 asks.
            // (MPH_HAS_MEMBER spelled out: its C cast would trip -Wold-style-cast in plugins that enable it.)
            if (api == nullptr || api->struct_size < offsetof(mph_host_api, agent_name) + sizeof(api->agent_name)) {
                write_error(errbuf, errbuf_size,
                            plugin + ": the host function table is missing or smaller than ABI 1.0");
                return nullptr;
            }
            if (!definition_error_.empty()) {
                write_error(errbuf, errbuf_size, plugin + ": " + definition_error_);
                return nullptr;
            }
            api_ = api;
            return &descriptor_;
        } catch (...) { // std::bad_alloc while building the message
            write_error(errbuf, errbuf_size, "out of memory while loading the plugin");
            return nullptr;
        }
    }

    const mph_host_api* api() const noexcept { return api_; }

private:
    void add(PluginDescription description) { descriptor_.description = description.text; }

    template <class T>
    void add(AgentDefinition<T> definition) {
        auto record = std::make_unique<AgentRecord>();
        for (const Param& param : definition.params) {
            record->specs.push_back(mph_param_spec{sizeof(mph_param_spec), param.name, param.description,
                                                   param.default_value, param.required});
        }
        for (const mph_param_spec& spec : record->specs) record->spec_pointers.push_back(&spec);

        mph_agent_descriptor& d = record->descriptor;
        d.struct_size = sizeof(mph_agent_descriptor);
        d.name = definition.name;
        d.description = definition.description;
        d.params = record->spec_pointers.empty() ? nullptr : record->spec_pointers.data();
        d.param_count = record->spec_pointers.size();
        d.create = &Trampolines<T>::create;
        d.destroy = &Trampolines<T>::destroy;
        if constexpr (HasOnEvent<T>) d.on_event = &Trampolines<T>::on_event;
        if constexpr (HasOnBatch<T>) d.on_batch = &Trampolines<T>::on_batch;
        if constexpr (HasOnTimer<T>) d.on_timer = &Trampolines<T>::on_timer;
        if constexpr (HasOnAssigned<T>) d.on_assigned = &Trampolines<T>::on_assigned;
        if constexpr (HasOnRevoked<T>) d.on_revoked = &Trampolines<T>::on_revoked;
        if constexpr (HasOnWindowClose<T>) d.on_window_close = &Trampolines<T>::on_window_close;
        if constexpr (HasOnReply<T>) d.on_reply = &Trampolines<T>::on_reply;

        // Refused at entry rather than thrown here: this runs during static initialization (dlopen).
        for (const auto& existing : agents_)
            if (std::strcmp(existing->descriptor.name, d.name) == 0)
                definition_error_ = std::string("two agents are named '") + d.name + "'";
        agents_.push_back(std::move(record));
    }

    template <class T>
    void add(CodecDefinition<T> definition) {
        const mph_codec_descriptor d = definition.descriptor();
        for (const mph_codec_descriptor& existing : codecs_)
            if (std::strcmp(existing.name, d.name) == 0)
                definition_error_ = std::string("two codecs are named '") + d.name + "'";
        codecs_.push_back(d);
    }

    template <class T>
    void add(AggregatorDefinition<T> definition) {
        const mph_aggregator_descriptor d = definition.descriptor();
        for (const mph_aggregator_descriptor& existing : aggregators_)
            if (std::strcmp(existing.name, d.name) == 0)
                definition_error_ = std::string("two aggregators are named '") + d.name + "'";
        aggregators_.push_back(d);
    }

    template <class T>
    void add(KeyFunctionDefinition<T> definition) {
        const mph_key_fn_descriptor d = definition.descriptor();
        for (const mph_key_fn_descriptor& existing : key_functions_)
            if (std::strcmp(existing.name, d.name) == 0)
                definition_error_ = std::string("two key functions are named '") + d.name + "'";
        key_functions_.push_back(d);
    }

    template <class T>
    void add(PredicateDefinition<T> definition) {
        const mph_predicate_descriptor d = definition.descriptor();
        for (const mph_predicate_descriptor& existing : predicates_)
            if (std::strcmp(existing.name, d.name) == 0)
                definition_error_ = std::string("two predicates are named '") + d.name + "'";
        predicates_.push_back(d);
    }

    mph_plugin_descriptor descriptor_{};
    std::vector<std::unique_ptr<AgentRecord>> agents_;
    std::vector<const mph_agent_descriptor*> agent_pointers_;
    std::vector<mph_codec_descriptor> codecs_; // filled by the constructor only, so pointers into it stay valid
    std::vector<const mph_codec_descriptor*> codec_pointers_;
    std::vector<mph_aggregator_descriptor> aggregators_;
    std::vector<const mph_aggregator_descriptor*> aggregator_pointers_;
    std::vector<mph_key_fn_descriptor> key_functions_;
    std::vector<const mph_key_fn_descriptor*> key_function_pointers_;
    std::vector<mph_predicate_descriptor> predicates_;
    std::vector<const mph_predicate_descriptor*> predicate_pointers_;
    std::string definition_error_;
    const mph_host_api* api_ = nullptr;
};

// Runs a user callback: converts its result to a verdict and every exception to set_error + verdict.
template <class Callback>
mph_status guarded(const Context& context, Callback&& callback) noexcept {
    try {
        using Result = std::invoke_result_t<Callback&>;
        static_assert(CallbackResult<Result>, "agent callbacks must return void or mph_status");
        if constexpr (std::is_void_v<Result>) {
            callback();
            return MPH_OK;
        } else {
            const mph_status verdict = callback();
            if (verdict == MPH_OK || verdict == MPH_RETRY || verdict == MPH_FATAL) return verdict;
            // A host status (negative) returned as a verdict: a bug, but one the host must not misread.
            const std::string message = "the agent returned " + std::string(status_name(verdict)) + " (" +
                                        std::to_string(verdict) + ") as its verdict";
            context.set_error(message);
            return MPH_FATAL;
        }
    } catch (const MergeRefused& error) {
        // The host recorded its reason (the aggregator's) as the callback's error text: keep it.
        return error.verdict();
    } catch (const Error& error) {
        context.set_error(error.what());
        return error.verdict();
    } catch (const std::exception& error) {
        context.set_error(error.what());
        return MPH_FATAL;
    } catch (...) {
        context.set_error("unknown exception (not derived from std::exception)");
        return MPH_FATAL;
    }
}

template <class T>
T* construct_agent(Context& context) {
    if constexpr (std::is_constructible_v<T, Context&>) {
        return new T(context);
    } else {
        return new T();
    }
}

// The C functions in the descriptor. Each builds a Context and runs the member under guarded().
template <class T>
struct Trampolines {
    static T& self(void* instance) noexcept { return *static_cast<T*>(instance); }
    static Context make_context(mph_agent_ctx* ctx) noexcept { return Context(ctx, this_plugin.api()); }

    static mph_status create(mph_agent_ctx* ctx, void** instance) noexcept {
        *instance = nullptr;
        Context context = make_context(ctx);
        return guarded(context, [&]() { *instance = construct_agent<T>(context); });
    }

    static void destroy(void* instance) noexcept {
        try {
            delete static_cast<T*>(instance);
        } catch (const std::exception& error) { // only a destructor declared noexcept(false) gets here
            log_destructor_failure(error.what());
        } catch (...) {
            log_destructor_failure("unknown exception");
        }
    }

    static mph_status on_event(void* instance, mph_agent_ctx* ctx,
                               const mph_event* event) noexcept requires HasOnEvent<T> {
        Context context = make_context(ctx);
        return guarded(context, [&]() { return self(instance).on_event(context, Event(*event)); });
    }

    static mph_status on_batch(void* instance, mph_agent_ctx* ctx, const mph_event* const* events,
                               size_t count) noexcept requires HasOnBatch<T> {
        Context context = make_context(ctx);
        return guarded(context, [&]() { return self(instance).on_batch(context, Batch(events, count)); });
    }

    static mph_status on_timer(void* instance, mph_agent_ctx* ctx, const char* timer,
                               int64_t now_ms) noexcept requires HasOnTimer<T> {
        Context context = make_context(ctx);
        const std::string_view timer_name = timer ? std::string_view(timer) : std::string_view();
        return guarded(context, [&]() { return self(instance).on_timer(context, timer_name, now_ms); });
    }

    static mph_status on_assigned(void* instance, mph_agent_ctx* ctx,
                                  int32_t partition) noexcept requires HasOnAssigned<T> {
        Context context = make_context(ctx);
        return guarded(context, [&]() { return self(instance).on_assigned(context, partition); });
    }

    static mph_status on_revoked(void* instance, mph_agent_ctx* ctx,
                                 int32_t partition) noexcept requires HasOnRevoked<T> {
        Context context = make_context(ctx);
        return guarded(context, [&]() { return self(instance).on_revoked(context, partition); });
    }

    static mph_status on_window_close(void* instance, mph_agent_ctx* ctx, const char* table, const void* key,
                                      size_t key_len, const mph_window* window, const void* value,
                                      size_t value_len) noexcept requires HasOnWindowClose<T> {
        Context context = make_context(ctx);
        const std::string_view table_name = table ? std::string_view(table) : std::string_view();
        return guarded(context, [&]() {
            return self(instance).on_window_close(context, table_name, bytes_view(key, key_len),
                                                  Window{window->start_ms, window->end_ms}, bytes_view(value, value_len));
        });
    }

    static mph_status on_reply(void* instance, mph_agent_ctx* ctx, uint64_t request, mph_status status,
                               const mph_event* reply) noexcept requires HasOnReply<T> {
        Context context = make_context(ctx);
        const Reply answer(request, status, reply);
        return guarded(context, [&]() { return self(instance).on_reply(context, answer); });
    }

private:
    // Plugin-level (NULL ctx): destroy has no ctx. A fixed buffer, because allocating here could throw again.
    static void log_destructor_failure(const char* what) noexcept {
        const mph_host_api* api = this_plugin.api();
        if (api == nullptr) return;
        char message[512];
        const int length = std::snprintf(message, sizeof message, "agent destructor threw: %s", what);
        if (length > 0)
            api->log(nullptr, MPH_LOG_ERROR, message, std::min(static_cast<size_t>(length), sizeof message - 1));
    }
};

} // namespace mephisto::detail

// Declares the plugin: its name, version, an optional mephisto::description("..."), and what it provides:
// agents (mephisto::agent), and since ABI 1.2 value codecs (mephisto::codec) and table aggregators
// (mephisto::aggregator), in any order. Use once per plugin, at global scope, in one .cpp file:
//     MEPHISTO_PLUGIN("transfer_branch", "1.0.0", mephisto::description("routes transfers by amount"),
//                     mephisto::agent<Branch>("branch", "...", {{.name = "tiny_below", .default_value = "100"}}));
//     MEPHISTO_PLUGIN("stats", "1.0.0", mephisto::aggregator<Max>("max", "the largest int64 seen"));
#define MEPHISTO_PLUGIN(plugin_name, plugin_version, ...)                                                              \
    ::mephisto::detail::Plugin mephisto::detail::this_plugin{plugin_name, plugin_version, __VA_ARGS__};                \
    extern "C" MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(                                          \
        uint32_t host_abi_major, uint32_t host_abi_minor, const mph_host_api* api, char* errbuf, size_t errbuf_size) { \
        return ::mephisto::detail::this_plugin.enter(host_abi_major, host_abi_minor, api, errbuf, errbuf_size);        \
    }                                                                                                                  \
    static_assert(true, "MEPHISTO_PLUGIN(...) is used as a declaration: end it with a semicolon")

#endif // MEPHISTO_MEPHISTO_HPP
