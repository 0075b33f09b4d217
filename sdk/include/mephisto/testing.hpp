// testing.hpp — a broker-free test driver for Mephisto agents (the SDK's TopologyTestDriver).
//
// AgentDriver plays the host for one agent of one plugin: it calls the entry function, checks the descriptor
// the way the host does, creates an instance for one partition, feeds it events and records everything the
// agent does through the host table (outputs, logs, errors). Works for plugins in C and C++, compiled into
// the test executable (pass mephisto_plugin_entry) or loaded by the test (pass a dlsym'd mph_entry_fn).
//
//     mephisto::testing::AgentDriver driver(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}});
//     CHECK(driver.send("Hello, world") == MPH_OK);
//     CHECK(driver.values("words") == std::vector<std::string>{"hello", "world"});
//
// Host behaviour it reproduces (the parts a test can observe):
//  - entry is called with this header's ABI version; NULL, another major, a newer minor, a descriptor smaller
//    than 1.0, a missing agent or an agent without on_event/on_batch/on_timer throw std::runtime_error;
//    init failing throws too. fini runs when the driver is destroyed.
//  - one instance for `partition`: create, then on_assigned; on destruction on_revoked, then destroy.
//    A timer gets its own instance (partition -1) on its first fire_timer, as the host creates one per timer.
//  - emit produces to every sink (one output per sink); forward only inside on_event (MPH_ERR_STATE
//    otherwise); host calls outside a callback give MPH_ERR_STATE.
//  - params: `params` plays the agent's YAML `params:`; param() returns it, else the declared default_value.
//    A missing required param, or a param the agent does not declare (when it declares any), throws
//    std::runtime_error at construction, as the host refuses such a configuration at startup.
//  - the driver does not restart an instance on MPH_FATAL; call restart() to do what the supervisor would.
//  - tables (ABI 1.1): `tables` plays the YAML `tables:` entries the agent lists; the host's table() returns
//    NULL for any other name. The driver keeps them in memory, as the shard of `partition`, in key byte order;
//    they are host state, so they survive restart() and revoke(). A timer instance resolves tables but every
//    table call from it is MPH_ERR_STATE, like any host call outside a callback. Puts are checked against the
//    codec (8 bytes for int64 and double, JSON text for json: MPH_ERR_INVALID otherwise), add works on int64
//    tables only (MPH_ERR_UNSUPPORTED), and an int64 table without a default defaults to 0, as in YAML.
//    Views from table_get stay valid until the callback returns, even across a later put of the same key.
//  - aggregation (ABI 1.2): a TableSpec with an `aggregator` (YAML `aggregate:`) takes table_merge: the value
//    becomes merge(stored value, else default, else absent, input), checked against the table's codec like a
//    put. A refusal (by the aggregator or the codec) is MPH_ERR_INVALID, leaves the table unchanged and makes
//    the reason the callback's error text (last_error()); without an aggregator table_merge is
//    MPH_ERR_UNSUPPORTED. A TableSpec may also name a plugin's `codec` (YAML `value: {plugin: P, codec: C}`),
//    whose validate then checks every put and merge. plugin_descriptor(), plugin_codec() and
//    plugin_aggregator() get them from a plugin's entry function; a C++ definition gives its own with
//    mephisto::aggregator<T>(...).descriptor().
//  - agents talking to agents (ABI 1.4): cast and ask are recorded as outputs to the topic "agent:NAME"
//    (an ask's carry the reply-to and correlation-id headers, reply-to "driver-replies"); answer(request,
//    value) and time_out(request) then call on_reply as the host would. reply() inside on_event records an
//    output to the event's reply-to header (MPH_ERR_NOT_FOUND when it has none: send an event with those
//    headers to play an asked agent). ack() accepts the offset of any event sent so far and records it
//    (acked()); the driver does not redeliver unacknowledged events.
//  - descriptors are read as far as their struct_size goes: a plugin built against an older ABI (a shorter
//    mph_plugin_descriptor) works unchanged, and its newer members read as zero.
//
// THREAD: a driver is single-threaded. Several drivers may coexist in one test.
#ifndef MEPHISTO_TESTING_HPP
#define MEPHISTO_TESTING_HPP

#include <mephisto/mephisto.h>
#include <mephisto/mephisto.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mephisto::testing {

// An owned header, as recorded in outputs and accepted in events.
struct Header {
    std::string name;
    std::optional<std::string> value; // nullopt: a header without a value

    bool operator==(const Header&) const = default;
};

// One event to feed to the agent. Unset offset: the driver numbers events 0, 1, 2, ...
struct TestEvent {
    std::optional<std::string> value;              // nullopt: a tombstone
    std::optional<std::string> key = std::nullopt; // nullopt: no key
    std::vector<Header> headers = {};
    int64_t timestamp_ms = -1; // -1: the message has no timestamp
    std::optional<int64_t> offset = std::nullopt;
};

// One message the agent produced through emit (once per sink), send or forward.
struct Output {
    std::string topic;
    std::optional<std::string> key;
    std::optional<std::string> value; // nullopt: a tombstone
    std::vector<Header> headers;
    int32_t partition;    // as requested: MPH_PARTITION_ANY when the partitioner would choose
    int64_t timestamp_ms; // as requested (0: the host would stamp the current time)
};

// One line the agent logged. plugin_level: logged with a NULL ctx (not tied to an instance).
struct LogLine {
    int32_t level;
    std::string message;
    bool plugin_level = false;
};

// A table the agent uses: an entry of the YAML `tables:` that the agent also lists under its own `tables:`.
//     {.name = "counts", .value = "int64"}
//     {.name = "scores", .value = "double", .default_value = mephisto::testing::double_value(0.5)}
struct TableSpec {
    std::string name;
    std::string value = "raw"; // the value codec, as in YAML: "raw" (or "bytes"), "int64", "double" or "json"
    // What table_get returns for an absent key (and what table_add starts from), already encoded in the codec:
    // int64_value(5), double_value(0.5), "{}". nullopt: no default (table_get says MPH_ERR_NOT_FOUND), except
    // that an int64 table defaults to 0, as the host's YAML loader does (Faust's Table(default=int)).
    std::optional<std::string> default_value = std::nullopt;
    // The table's aggregator (YAML `aggregate: {plugin: P, name: NAME}`, ABI 1.2), used by table_merge; nullptr:
    // none (table_merge is MPH_ERR_UNSUPPORTED). From plugin_aggregator(entry, "name"), or from a C++
    // definition: `const auto max = mephisto::aggregator<Max>("max").descriptor();` then `&max`. The
    // descriptor must outlive the driver.
    const mph_aggregator_descriptor* aggregator = nullptr;
    // A plugin's value codec (YAML `value: {plugin: P, codec: NAME}`, ABI 1.2), from plugin_codec(entry, "name")
    // or mephisto::codec<T>(...).descriptor(); it replaces `value`, which must then stay "raw". Its validate
    // checks the default, every put and every merge result. The descriptor must outlive the driver.
    const mph_codec_descriptor* codec = nullptr;
};

// A value in the int64 / double table codecs, as bytes: for TableSpec::default_value and seeding table().
inline std::string int64_value(int64_t value) {
    const std::array<char, 8> bytes = encode_int64(value);
    return std::string(bytes.data(), bytes.size());
}
inline std::string double_value(double value) {
    const std::array<char, 8> bytes = encode_double(value);
    return std::string(bytes.data(), bytes.size());
}

namespace detail {

// Checks JSON text the way the host's json codec accepts it: one RFC 8259 value with optional surrounding
// whitespace, in well-formed UTF-8. Built in, so that plugin tests need no JSON library.
class JsonCheck {
public:
    static bool valid(std::string_view text) noexcept {
        if (!utf8_valid(text)) return false;
        JsonCheck check(text);
        check.skip_space();
        if (!check.value(0)) return false;
        check.skip_space();
        return check.at_ == text.size();
    }

private:
    // Deeper nesting is refused rather than risking the test's stack (the recursion is one frame per level).
    static constexpr int max_depth = 512;

    explicit JsonCheck(std::string_view text) noexcept : text_(text) {}

    bool value(int depth) noexcept {
        if (depth > max_depth || at_ >= text_.size()) return false;
        switch (text_[at_]) {
        case '{':
            return object(depth);
        case '[':
            return array(depth);
        case '"':
            return string();
        case 't':
            return literal("true");
        case 'f':
            return literal("false");
        case 'n':
            return literal("null");
        default:
            return number();
        }
    }
    bool object(int depth) noexcept {
        ++at_; // '{'
        skip_space();
        if (take('}')) return true;
        for (;;) {
            skip_space();
            if (at_ >= text_.size() || text_[at_] != '"' || !string()) return false;
            skip_space();
            if (!take(':')) return false;
            skip_space();
            if (!value(depth + 1)) return false;
            skip_space();
            if (take('}')) return true;
            if (!take(',')) return false;
        }
    }
    bool array(int depth) noexcept {
        ++at_; // '['
        skip_space();
        if (take(']')) return true;
        for (;;) {
            skip_space();
            if (!value(depth + 1)) return false;
            skip_space();
            if (take(']')) return true;
            if (!take(',')) return false;
        }
    }
    bool string() noexcept {
        ++at_; // '"'
        while (at_ < text_.size()) {
            const auto c = static_cast<unsigned char>(text_[at_++]);
            if (c == '"') return true;
            if (c < 0x20) return false; // control characters must be escaped
            if (c != '\\') continue;
            if (at_ >= text_.size()) return false;
            const char escape = text_[at_++];
            if (escape == 'u') {
                for (int i = 0; i < 4; ++i, ++at_)
                    if (at_ >= text_.size() || !is_hex(text_[at_])) return false;
            } else if (std::string_view("\"\\/bfnrt").find(escape) == std::string_view::npos) {
                return false;
            }
        }
        return false;
    }
    bool number() noexcept { // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        take('-');
        if (!take('0') && !digits()) return false;
        if (take('.') && !digits()) return false;
        if (take('e') || take('E')) {
            if (!take('+')) take('-');
            if (!digits()) return false;
        }
        return true;
    }
    bool literal(std::string_view word) noexcept {
        if (text_.substr(at_, word.size()) != word) return false;
        at_ += word.size();
        return true;
    }
    bool digits() noexcept {
        const size_t start = at_;
        while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
        return at_ > start;
    }
    bool take(char expected) noexcept {
        if (at_ >= text_.size() || text_[at_] != expected) return false;
        ++at_;
        return true;
    }
    void skip_space() noexcept {
        while (at_ < text_.size() && std::string_view(" \t\n\r").find(text_[at_]) != std::string_view::npos) ++at_;
    }
    static bool is_hex(char c) noexcept {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }

    // Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
    static bool utf8_valid(std::string_view text) noexcept {
        for (size_t i = 0; i < text.size();) {
            const auto lead = static_cast<unsigned char>(text[i]);
            size_t length = 0;
            uint32_t low = 0; // the smallest code point this length may encode
            uint32_t code = 0;
            if (lead < 0x80) {
                ++i;
                continue;
            } else if ((lead & 0xe0) == 0xc0) {
                length = 2, low = 0x80, code = lead & 0x1fu;
            } else if ((lead & 0xf0) == 0xe0) {
                length = 3, low = 0x800, code = lead & 0x0fu;
            } else if ((lead & 0xf8) == 0xf0) {
                length = 4, low = 0x10000, code = lead & 0x07u;
            } else {
                return false;
            }
            if (i + length > text.size()) return false;
            for (size_t k = 1; k < length; ++k) {
                const auto next = static_cast<unsigned char>(text[i + k]);
                if ((next & 0xc0) != 0x80) return false;
                code = (code << 6) | (next & 0x3fu);
            }
            if (code < low || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
            i += length;
        }
        return true;
    }

    std::string_view text_;
    size_t at_ = 0;
};

} // namespace detail

// --- a plugin's codecs and aggregators (ABI 1.2) ---------------------------------------------------------
// Calls entry the way the host loads a plugin (this header's ABI version, and a host table that stays valid for
// the rest of the test), checks the descriptor as AgentDriver does and returns a copy of it: members its
// struct_size does not cover are zero (a 1.1 plugin has no codecs or aggregators). init is not called (an
// AgentDriver of the plugin calls it). Throws std::runtime_error when the plugin refuses or is malformed.
mph_plugin_descriptor plugin_descriptor(mph_entry_fn entry);
// The plugin's codec / aggregator called `name`, as the plugin holds it (valid as long as the plugin is
// loaded: for a plugin compiled into the test, for the whole test). Throws std::runtime_error when the plugin
// has none of that name, naming those it has.
const mph_codec_descriptor& plugin_codec(mph_entry_fn entry, std::string_view name);
const mph_aggregator_descriptor& plugin_aggregator(mph_entry_fn entry, std::string_view name);

struct DriverOptions {
    std::vector<std::string> sinks = {}; // the agent's `sinks:` in YAML
    std::vector<TableSpec> tables = {};  // the tables the agent lists under `tables:` in YAML (ABI 1.1)
    int32_t partition = 0;               // the partition the instance serves (and that events come from)
    std::string from = "input";          // the topic of the events fed to the agent
    std::string agent_name = {};         // the YAML name; empty: the plugin's agent name
    // When set, explicit output partitions >= this count fail with MPH_ERR_INVALID, like an unknown partition
    // on a real topic. Unset: any partition >= 0 is accepted.
    std::optional<int32_t> partition_count = std::nullopt;
    bool print_logs = false; // also echo the agent's log lines to stderr, for debugging a test
};

class AgentDriver {
public:
    using Params = std::map<std::string, std::string>;

    AgentDriver(mph_entry_fn entry, std::string agent, Params params = {}, DriverOptions options = {})
        : agent_(std::move(agent)), params_(std::move(params)), options_(std::move(options)),
          api_(host_functions()) {
        if (options_.agent_name.empty()) options_.agent_name = agent_;
        declare_tables();
        load(entry);
        apply_declared_params();
        partition_instance_ = std::make_unique<InstanceContext>(this, options_.partition);
        start(*partition_instance_);
    }

    ~AgentDriver() {
        for (auto& [name, timer] : timer_instances_) stop(*timer, /*revoke=*/false);
        if (partition_instance_) stop(*partition_instance_, /*revoke=*/true);
        if (plugin_.fini != nullptr) {
            CurrentDriver guard(this);
            plugin_.fini();
        }
    }

    AgentDriver(const AgentDriver&) = delete;
    AgentDriver& operator=(const AgentDriver&) = delete;

    // --- feeding the agent ------------------------------------------------------------------------------
    // One event through on_event (or a one-event on_batch when the agent only has on_batch). The verdict.
    mph_status send(std::optional<std::string_view> value, std::optional<std::string_view> key = std::nullopt) {
        TestEvent event{.value = to_owned(value), .key = to_owned(key)};
        return send(event);
    }
    mph_status send(const TestEvent& event) { return send_batch({event}); }

    // Consecutive events: one on_batch call when the agent has on_batch, else on_event for each until the
    // first verdict other than MPH_OK (which is returned; the rest are not delivered, as on the host).
    mph_status send_batch(const std::vector<TestEvent>& events) {
        InstanceContext& instance = running_partition_instance();
        if (events.empty()) return MPH_OK;
        // Filled in place and never moved afterwards: each mph_event points into its own StoredEvent.
        std::vector<StoredEvent> stored(events.size());
        for (size_t i = 0; i < events.size(); ++i) store(events[i], stored[i]);

        if (agent_descriptor_.on_event == nullptr) {
            std::vector<const mph_event*> pointers;
            for (const StoredEvent& event : stored) pointers.push_back(&event.event);
            return call(instance, Phase::on_batch, [&]() {
                return agent_descriptor_.on_batch(instance.instance, instance.handle(), pointers.data(),
                                                  pointers.size());
            });
        }
        for (const StoredEvent& event : stored) {
            instance.current_event = &event;
            const mph_status verdict = call(instance, Phase::on_event, [&]() {
                return agent_descriptor_.on_event(instance.instance, instance.handle(), &event.event);
            });
            instance.current_event = nullptr;
            if (verdict != MPH_OK) return verdict;
        }
        return MPH_OK;
    }

    // Fires the timer `name` (its YAML name) on the timer's own instance, created on the first fire.
    mph_status fire_timer(std::string_view name, std::optional<int64_t> now_ms = std::nullopt) {
        if (agent_descriptor_.on_timer == nullptr)
            throw std::logic_error("agent '" + agent_ + "' has no on_timer callback");
        auto found = timer_instances_.find(std::string(name));
        if (found == timer_instances_.end()) {
            auto timer = std::make_unique<InstanceContext>(this, -1);
            create(*timer);
            found = timer_instances_.emplace(std::string(name), std::move(timer)).first;
        }
        InstanceContext& timer = *found->second;
        if (!timer.created)
            throw std::logic_error("timer instance of agent '" + agent_ + "' failed to create: " + last_error_);
        const std::string timer_name(name);
        const int64_t now = now_ms.value_or(wall_clock_ms());
        return call(timer, Phase::on_timer, [&]() {
            return agent_descriptor_.on_timer(timer.instance, timer.handle(), timer_name.c_str(), now);
        });
    }

    // What the supervisor does after MPH_FATAL: destroy the partition instance, create it again, assign it.
    // Returns create's status (also available as create_status()).
    mph_status restart() {
        stop(*partition_instance_, /*revoke=*/false);
        start(*partition_instance_);
        return create_status_;
    }

    // Answers an ask the agent made (its request id, as returned by ask): on_reply with `value` as the reply.
    mph_status answer(uint64_t request, std::string_view value) { return deliver_reply(request, value); }
    // Lets an ask time out: on_reply with MPH_ERR_TIMEOUT.
    mph_status time_out(uint64_t request) { return deliver_reply(request, std::nullopt); }
    // Requests the agent asked that were not answered yet, oldest first.
    std::vector<uint64_t> pending_asks() const { return std::vector<uint64_t>(asks_.begin(), asks_.end()); }
    // Offsets the agent acknowledged with ack(), in order.
    const std::vector<int64_t>& acked() const noexcept { return acked_; }

    // What a rebalance does: on_revoked, then destroy. send() throws afterwards until restart().
    void revoke() { stop(*partition_instance_, /*revoke=*/true); }

    // Makes the next `count` emit/send/forward calls fail with `status` (e.g. MPH_ERR_FULL) without output.
    void fail_next_outputs(mph_status status, int count = 1) {
        injected_failure_ = status;
        injected_failures_left_ = count;
    }

    // --- what happened ----------------------------------------------------------------------------------
    const std::vector<Output>& outputs() const noexcept { return outputs_; }
    std::vector<Output> outputs(std::string_view topic) const {
        std::vector<Output> selected;
        for (const Output& output : outputs_)
            if (output.topic == topic) selected.push_back(output);
        return selected;
    }
    // The values produced to `topic`, in order ("" for a tombstone).
    std::vector<std::string> values(std::string_view topic) const {
        std::vector<std::string> selected;
        for (const Output& output : outputs_)
            if (output.topic == topic) selected.push_back(output.value.value_or(""));
        return selected;
    }
    const std::vector<LogLine>& logs() const noexcept { return logs_; }
    // True when some log line contains `fragment`.
    bool logged(std::string_view fragment) const {
        for (const LogLine& line : logs_)
            if (line.message.find(fragment) != std::string::npos) return true;
        return false;
    }
    // The text of the last set_error, reset at the start of every callback ("" if the last one set none).
    const std::string& last_error() const noexcept { return last_error_; }
    // The status of the last create of the partition instance (MPH_OK when it is running).
    mph_status create_status() const noexcept { return create_status_; }
    bool running() const noexcept { return partition_instance_ && partition_instance_->created; }
    void clear() {
        outputs_.clear();
        logs_.clear();
        last_error_.clear();
    }

    // The plugin's descriptor as far as its struct_size goes (newer members zero: a 1.1 plugin has no codecs).
    const mph_plugin_descriptor& plugin() const noexcept { return plugin_; }
    const mph_agent_descriptor& agent() const noexcept { return agent_descriptor_; }

    // --- tables -------------------------------------------------------------------------------------------
    // The entries of table `name` (the shard of options.partition), in key byte order, as stored (encoded).
    // Not reset by clear(), restart() or revoke(): tables are host state. Writing through the non-const
    // overload seeds state, as if recovered from the changelog; it bypasses the codec check.
    // Both throw std::logic_error for a table not in options.tables.
    std::map<std::string, std::string>& table(std::string_view name) { return declared_table(name).entries; }
    const std::map<std::string, std::string>& table(std::string_view name) const {
        return declared_table(name).entries;
    }
    // The value stored under key, decoded; nullopt when the key is absent (the default is not applied: this
    // inspects the store). Throws std::logic_error when the stored value is not 8 bytes.
    std::optional<int64_t> table_int64(std::string_view name, std::string_view key) const {
        const std::optional<std::string> stored = stored_value(name, key);
        if (!stored) return std::nullopt;
        if (const std::optional<int64_t> number = decode_int64(*stored)) return number;
        throw std::logic_error(size_mismatch(name, *stored, "int64"));
    }
    std::optional<double> table_double(std::string_view name, std::string_view key) const {
        const std::optional<std::string> stored = stored_value(name, key);
        if (!stored) return std::nullopt;
        if (const std::optional<double> number = decode_double(*stored)) return number;
        throw std::logic_error(size_mismatch(name, *stored, "double"));
    }

private:
    friend mph_plugin_descriptor plugin_descriptor(mph_entry_fn entry);

    enum class Phase { idle, create, on_event, on_batch, on_timer, on_assigned, on_revoked, on_reply };

    mph_status deliver_reply(uint64_t request, std::optional<std::string_view> value) {
        auto pending = std::find(asks_.begin(), asks_.end(), request);
        if (pending == asks_.end())
            throw std::logic_error("request " + std::to_string(request) + " is not an unanswered ask of agent '" + agent_ + "'");
        asks_.erase(pending);
        InstanceContext& instance = running_partition_instance();
        if (agent_descriptor_.on_reply == nullptr) return MPH_OK; // the host drops it too
        const std::string correlation = std::to_string(request);
        const std::string body(value.value_or(""));
        const mph_header header{"mephisto-correlation-id", 23, correlation.data(), correlation.size()};
        mph_event reply{};
        reply.struct_size = sizeof reply;
        reply.topic = "driver-replies";
        reply.timestamp_ms = wall_clock_ms();
        reply.key = correlation.data();
        reply.key_len = correlation.size();
        reply.value = body.data();
        reply.value_len = body.size();
        reply.headers = &header;
        reply.header_count = 1;
        return call(instance, Phase::on_reply, [&]() {
            return agent_descriptor_.on_reply(instance.instance, instance.handle(), request,
                                              value ? MPH_OK : MPH_ERR_TIMEOUT, value ? &reply : nullptr);
        });
    }

    struct StoredEvent;

    enum class Codec { raw, int64, dbl, json };

    // One declared table. Its address is the mph_table* handed to the plugin (tables_ never moves its nodes).
    struct TableState {
        Codec codec = Codec::raw;
        std::optional<std::string> default_value;
        std::map<std::string, std::string> entries;
        std::string name;
        std::string codec_name;                                // "int64" as in YAML, or the plugin codec's name
        const mph_codec_descriptor* plugin_codec = nullptr;    // replaces `codec` when set
        const mph_aggregator_descriptor* aggregator = nullptr; // table_merge's, if any

        mph_table* handle() noexcept { return reinterpret_cast<mph_table*>(this); }
    };

    // The host table every driver offers: the functions find their driver through the ctx (or, for a NULL ctx,
    // the driver calling into the plugin), so any number of copies of it behave the same.
    static mph_host_api host_functions() noexcept {
        mph_host_api api{};
        api.struct_size = sizeof(mph_host_api);
        api.abi_major = MPH_ABI_VERSION_MAJOR;
        api.abi_minor = MPH_ABI_VERSION_MINOR;
        api.log = &host_log;
        api.set_error = &host_set_error;
        api.param = &host_param;
        api.emit = &host_emit;
        api.send = &host_send;
        api.forward = &host_forward;
        api.partition = &host_partition;
        api.agent_name = &host_agent_name;
        api.table = &host_table;
        api.table_get = &host_table_get;
        api.table_put = &host_table_put;
        api.table_delete = &host_table_delete;
        api.table_add = &host_table_add;
        api.table_iterate = &host_table_iterate;
        api.table_merge = &host_table_merge;
        api.window_get = &host_window_unsupported_get;
        api.window_iterate = &host_window_unsupported_iterate;
        api.cast = &host_cast;
        api.ask = &host_ask;
        api.reply = &host_reply;
        api.ack = &host_ack;
        return api;
    }

    // What the driver hands the plugin as mph_agent_ctx*: one per instance.
    struct InstanceContext {
        InstanceContext(AgentDriver* owner, int32_t instance_partition)
            : driver(owner), partition(instance_partition) {}

        mph_agent_ctx* handle() noexcept { return reinterpret_cast<mph_agent_ctx*>(this); }
        static InstanceContext* from(mph_agent_ctx* ctx) noexcept { return reinterpret_cast<InstanceContext*>(ctx); }

        AgentDriver* driver;
        int32_t partition;
        void* instance = nullptr;
        bool created = false;
        Phase phase = Phase::idle;
        const StoredEvent* current_event = nullptr;
    };

    // An event and the storage its views point into.
    struct StoredEvent {
        std::string topic;
        TestEvent source;
        std::vector<mph_header> headers;
        mph_event event{};
    };

    // The driver a NULL-ctx log belongs to: whichever driver is calling into the plugin right now.
    struct CurrentDriver {
        explicit CurrentDriver(AgentDriver* driver) : previous(current()) { current() = driver; }
        ~CurrentDriver() { current() = previous; }
        CurrentDriver(const CurrentDriver&) = delete;
        CurrentDriver& operator=(const CurrentDriver&) = delete;
        static AgentDriver*& current() noexcept {
            // Test-executable only (never in a plugin), so a function-local static is harmless here.
            thread_local AgentDriver* driver = nullptr;
            return driver;
        }
        AgentDriver* previous;
    };

    // --- loading ----------------------------------------------------------------------------------------
    void load(mph_entry_fn entry) {
        {
            CurrentDriver guard(this);
            plugin_ = enter(entry, &api_);
        }
        find_agent();
        if (plugin_.init != nullptr) {
            char init_errbuf[512] = {};
            CurrentDriver guard(this);
            const mph_status status = plugin_.init(init_errbuf, sizeof init_errbuf);
            if (status != MPH_OK)
                throw std::runtime_error(plugin_label() + " init failed with " + std::string(status_name(status)) +
                                         ": " + init_errbuf);
        }
    }

    // The entry call and the descriptor checks, shared with plugin_descriptor(). A copy of what struct_size covers.
    static mph_plugin_descriptor enter(mph_entry_fn entry, const mph_host_api* api) {
        if (entry == nullptr) throw std::runtime_error("AgentDriver: the entry function is NULL");
        char errbuf[512] = {};
        const mph_plugin_descriptor* plugin =
            entry(MPH_ABI_VERSION_MAJOR, MPH_ABI_VERSION_MINOR, api, errbuf, sizeof errbuf);
        if (plugin == nullptr) throw std::runtime_error(std::string("plugin refused to load: ") + errbuf);
        check_plugin(*plugin);
        const mph_plugin_descriptor copy = copy_plugin(plugin);
        check_provided(copy);
        return copy;
    }

    static void check_plugin(const mph_plugin_descriptor& plugin) {
        constexpr size_t version_end = offsetof(mph_plugin_descriptor, abi_minor) + sizeof(uint32_t);
        constexpr size_t size_1_0 = offsetof(mph_plugin_descriptor, fini) + sizeof(plugin.fini);
        if (plugin.struct_size < version_end)
            throw std::runtime_error("plugin descriptor struct_size " + std::to_string(plugin.struct_size) +
                                     " is too small to hold the ABI version");
        const std::string built_for = std::to_string(plugin.abi_major) + "." + std::to_string(plugin.abi_minor);
        const std::string offered = std::to_string(MPH_ABI_VERSION_MAJOR) + "." + std::to_string(MPH_ABI_VERSION_MINOR);
        if (plugin.abi_major != MPH_ABI_VERSION_MAJOR)
            throw std::runtime_error("plugin was built for ABI " + built_for + ", the host has ABI " + offered +
                                     " (major versions differ)");
        if (plugin.abi_minor > MPH_ABI_VERSION_MINOR)
            throw std::runtime_error("plugin was built for ABI " + built_for + ", newer than the host's ABI " +
                                     offered);
        if (plugin.struct_size < size_1_0)
            throw std::runtime_error("plugin descriptor struct_size " + std::to_string(plugin.struct_size) +
                                     " is smaller than the ABI 1.0 descriptor (" + std::to_string(size_1_0) +
                                     " bytes)");
        if (plugin.name == nullptr) throw std::runtime_error("plugin descriptor has no name");
        if (plugin.agent_count > 0 && plugin.agents == nullptr)
            throw std::runtime_error("plugin descriptor has agent_count " + std::to_string(plugin.agent_count) +
                                     " but no agents array");
    }

    // The codecs and aggregators (1.2), checked the way the host's loader checks them.
    static void check_provided(const mph_plugin_descriptor& plugin) {
        const std::string label = std::string("plugin '") + plugin.name + "'";
        if (plugin.codec_count > 0 && plugin.codecs == nullptr)
            throw std::runtime_error(label + " descriptor lists codecs but gives no array");
        for (size_t i = 0; i < plugin.codec_count; ++i) {
            const mph_codec_descriptor* codec = plugin.codecs[i];
            check_item(label, "codec", i, codec, codec_min_size);
            for (size_t k = 0; k < i; ++k)
                if (std::strcmp(plugin.codecs[k]->name, codec->name) == 0)
                    throw std::runtime_error(label + " codec '" + codec->name + "' is declared twice");
        }
        if (plugin.aggregator_count > 0 && plugin.aggregators == nullptr)
            throw std::runtime_error(label + " descriptor lists aggregators but gives no array");
        for (size_t i = 0; i < plugin.aggregator_count; ++i) {
            const mph_aggregator_descriptor* aggregator = plugin.aggregators[i];
            check_item(label, "aggregator", i, aggregator, aggregator_min_size);
            if (aggregator->merge == nullptr)
                throw std::runtime_error(label + " aggregator '" + aggregator->name + "' has no merge");
            for (size_t k = 0; k < i; ++k)
                if (std::strcmp(plugin.aggregators[k]->name, aggregator->name) == 0)
                    throw std::runtime_error(label + " aggregator '" + aggregator->name + "' is declared twice");
        }
    }

    // Every member of the 1.2 codec and aggregator descriptors is 1.2: a shorter one is malformed.
    static constexpr size_t codec_min_size =
        offsetof(mph_codec_descriptor, to_json) + sizeof(mph_codec_descriptor::to_json);
    static constexpr size_t aggregator_min_size =
        offsetof(mph_aggregator_descriptor, merge) + sizeof(mph_aggregator_descriptor::merge);

    template <class Descriptor>
    static void check_item(const std::string& label, const char* kind, size_t index, const Descriptor* item,
                           size_t min_size) {
        const std::string which = label + " " + kind + " #" + std::to_string(index);
        if (item == nullptr || item->struct_size < min_size)
            throw std::runtime_error(which + " is NULL or shorter than ABI 1.2's " + std::to_string(min_size) +
                                     " bytes");
        if (item->name == nullptr || *item->name == '\0') throw std::runtime_error(which + " has no name");
    }

    void find_agent() {
        std::string available;
        for (size_t i = 0; i < plugin_.agent_count; ++i) {
            const mph_agent_descriptor* candidate = plugin_.agents[i];
            if (candidate == nullptr || !MPH_HAS_MEMBER(mph_agent_descriptor, candidate, name) ||
                candidate->name == nullptr)
                throw std::runtime_error(plugin_label() + " has an agent descriptor without a name at index " +
                                         std::to_string(i));
            if (candidate->name == agent_) {
                agent_descriptor_ = copy_agent(candidate);
                if (agent_descriptor_.on_event == nullptr && agent_descriptor_.on_batch == nullptr &&
                    agent_descriptor_.on_timer == nullptr)
                    throw std::runtime_error(plugin_label() + " agent '" + agent_ +
                                             "' sets none of on_event, on_batch, on_timer");
                return;
            }
            available += (available.empty() ? "" : ", ") + std::string(candidate->name);
        }
        throw std::runtime_error(plugin_label() + " has no agent '" + agent_ +
                                 "' (it has: " + (available.empty() ? "none" : available) + ")");
    }

    // YAML params checked against the declaration, then the declared defaults filled in, as the host does.
    void apply_declared_params() {
        std::vector<const mph_param_spec*> declared;
        for (size_t i = 0; agent_descriptor_.params != nullptr && i < agent_descriptor_.param_count; ++i) {
            const mph_param_spec* spec = agent_descriptor_.params[i];
            if (spec == nullptr || !MPH_HAS_MEMBER(mph_param_spec, spec, required) || spec->name == nullptr)
                throw std::runtime_error(plugin_label() + " agent '" + agent_ +
                                         "' has a malformed param spec at index " + std::to_string(i));
            declared.push_back(spec);
        }
        for (const auto& [name, value] : params_) {
            const bool known = declared.empty() || std::any_of(declared.begin(), declared.end(),
                                                               [&](auto* spec) { return name == spec->name; });
            if (!known)
                throw std::runtime_error("agent '" + agent_ + "' of " + plugin_label() + " has no param '" + name +
                                         "'");
        }
        for (const mph_param_spec* spec : declared) {
            if (params_.count(spec->name) != 0) continue;
            if (spec->required)
                throw std::runtime_error("param '" + std::string(spec->name) + "' is required by agent '" + agent_ +
                                         "'");
            if (spec->default_value != nullptr) params_.emplace(spec->name, spec->default_value);
        }
    }

    // options.tables checked the way the host's YAML loader checks `tables:`, before the plugin is loaded.
    void declare_tables() {
        for (const TableSpec& spec : options_.tables) {
            const std::string what = "table '" + spec.name + "'";
            if (spec.name.empty()) throw std::runtime_error("a table in DriverOptions::tables has no name");
            TableState state{Codec::raw, spec.default_value, {}, spec.name, spec.value};
            if (spec.aggregator != nullptr) {
                if (spec.aggregator->struct_size < aggregator_min_size || spec.aggregator->merge == nullptr)
                    throw std::runtime_error(what + " has an aggregator descriptor without merge (struct_size " +
                                             std::to_string(spec.aggregator->struct_size) + ")");
                state.aggregator = spec.aggregator;
            }
            if (spec.codec != nullptr) {
                if (spec.codec->struct_size < codec_min_size)
                    throw std::runtime_error(what + " has a codec descriptor shorter than ABI 1.2's (struct_size " +
                                             std::to_string(spec.codec->struct_size) + ")");
                if (spec.value != "raw")
                    throw std::runtime_error(what + " has both value codec '" + spec.value +
                                             "' and a plugin codec; YAML gives a table one `value:`");
                state.plugin_codec = spec.codec;
                state.codec_name = spec.codec->name ? spec.codec->name : "?";
            } else if (spec.value == "raw" || spec.value == "bytes") {
                state.codec = Codec::raw;
            } else if (spec.value == "int64") {
                state.codec = Codec::int64;
            } else if (spec.value == "double") {
                state.codec = Codec::dbl;
            } else if (spec.value == "json") {
                state.codec = Codec::json;
            } else {
                throw std::runtime_error(what + " has value codec '" + spec.value +
                                         "'; expected raw, bytes, int64, double or json");
            }
            if (!state.default_value && state.codec == Codec::int64 && !state.plugin_codec)
                state.default_value = int64_value(0);
            std::string reason;
            if (state.default_value && !valid_for(state, *state.default_value, &reason)) {
                if (state.plugin_codec)
                    throw std::runtime_error(what + " has a default_value its codec '" + state.codec_name +
                                             "' refuses: " + reason);
                throw std::runtime_error(what + " has a default_value that is not a valid " + spec.value +
                                         " value (int64 and double: 8 encoded bytes, see int64_value/double_value)");
            }
            if (!tables_.emplace(spec.name, std::move(state)).second)
                throw std::runtime_error(what + " is declared twice in DriverOptions::tables");
        }
    }

    const TableState& declared_table(std::string_view name) const {
        const auto found = tables_.find(name);
        if (found == tables_.end())
            throw std::logic_error("table '" + std::string(name) + "' is not in DriverOptions::tables");
        return found->second;
    }
    TableState& declared_table(std::string_view name) {
        return const_cast<TableState&>(std::as_const(*this).declared_table(name));
    }

    std::optional<std::string> stored_value(std::string_view name, std::string_view key) const {
        const auto& entries = declared_table(name).entries;
        const auto found = entries.find(std::string(key));
        return found == entries.end() ? std::nullopt : std::optional<std::string>(found->second);
    }

    static std::string size_mismatch(std::string_view name, const std::string& stored, const char* codec) {
        return "table '" + std::string(name) + "' holds a " + std::to_string(stored.size()) + "-byte value; an " +
               codec + " is 8 bytes";
    }

    // The table's codec check; a plugin codec's refusal leaves its reason in *reason (when given).
    static bool valid_for(const TableState& table, std::string_view value, std::string* reason = nullptr) {
        if (table.plugin_codec == nullptr) return valid_for(table.codec, value);
        if (table.plugin_codec->validate == nullptr) return true; // a codec without validate accepts everything
        char errbuf[512] = {};
        const mph_status status =
            table.plugin_codec->validate(value.data() ? value.data() : "", value.size(), errbuf, sizeof errbuf);
        errbuf[sizeof errbuf - 1] = '\0';
        if (status == MPH_OK) return true;
        if (reason != nullptr)
            *reason = status == MPH_ERR_INVALID ? std::string(errbuf)
                                                : "validate returned " + std::string(status_name(status));
        return false;
    }

    static bool valid_for(Codec codec, std::string_view value) noexcept {
        switch (codec) {
        case Codec::int64:
        case Codec::dbl:
            return value.size() == 8;
        case Codec::json:
            return detail::JsonCheck::valid(value);
        case Codec::raw:
            return true;
        }
        return false;
    }

    // Reads only the members the plugin's struct_size covers (convention 3); the rest stay NULL.
    // Pointers, not references: MPH_HAS_MEMBER tests for NULL, which GCC flags on the address of a reference.
    static mph_agent_descriptor copy_agent(const mph_agent_descriptor* source) {
        mph_agent_descriptor copy{};
        copy.struct_size = sizeof copy;
#define MEPHISTO_TESTING_COPY_MEMBER(member)                                                                           \
    if (MPH_HAS_MEMBER(mph_agent_descriptor, source, member)) copy.member = source->member
        MEPHISTO_TESTING_COPY_MEMBER(name);
        MEPHISTO_TESTING_COPY_MEMBER(description);
        MEPHISTO_TESTING_COPY_MEMBER(params);
        MEPHISTO_TESTING_COPY_MEMBER(param_count);
        MEPHISTO_TESTING_COPY_MEMBER(create);
        MEPHISTO_TESTING_COPY_MEMBER(destroy);
        MEPHISTO_TESTING_COPY_MEMBER(on_event);
        MEPHISTO_TESTING_COPY_MEMBER(on_batch);
        MEPHISTO_TESTING_COPY_MEMBER(on_timer);
        MEPHISTO_TESTING_COPY_MEMBER(on_assigned);
        MEPHISTO_TESTING_COPY_MEMBER(on_revoked);
        MEPHISTO_TESTING_COPY_MEMBER(on_window_close);
        MEPHISTO_TESTING_COPY_MEMBER(on_reply);
#undef MEPHISTO_TESTING_COPY_MEMBER
        return copy;
    }

    // Reads only the members the plugin's struct_size covers: a plugin built against an older ABI has a shorter
    // descriptor, and reading past it would read whatever follows it in the plugin's memory.
    static mph_plugin_descriptor copy_plugin(const mph_plugin_descriptor* source) {
        mph_plugin_descriptor copy{};
        copy.struct_size = source->struct_size; // as the plugin gave it: tells which ABI its descriptor has
#define MEPHISTO_TESTING_COPY_MEMBER(member)                                                                           \
    if (MPH_HAS_MEMBER(mph_plugin_descriptor, source, member)) copy.member = source->member
        MEPHISTO_TESTING_COPY_MEMBER(abi_major);
        MEPHISTO_TESTING_COPY_MEMBER(abi_minor);
        MEPHISTO_TESTING_COPY_MEMBER(name);
        MEPHISTO_TESTING_COPY_MEMBER(version);
        MEPHISTO_TESTING_COPY_MEMBER(description);
        MEPHISTO_TESTING_COPY_MEMBER(agents);
        MEPHISTO_TESTING_COPY_MEMBER(agent_count);
        MEPHISTO_TESTING_COPY_MEMBER(init);
        MEPHISTO_TESTING_COPY_MEMBER(fini);
        MEPHISTO_TESTING_COPY_MEMBER(codecs);
        MEPHISTO_TESTING_COPY_MEMBER(codec_count);
        MEPHISTO_TESTING_COPY_MEMBER(aggregators);
        MEPHISTO_TESTING_COPY_MEMBER(aggregator_count);
        MEPHISTO_TESTING_COPY_MEMBER(key_functions);
        MEPHISTO_TESTING_COPY_MEMBER(key_function_count);
        MEPHISTO_TESTING_COPY_MEMBER(predicates);
        MEPHISTO_TESTING_COPY_MEMBER(predicate_count);
#undef MEPHISTO_TESTING_COPY_MEMBER
        return copy;
    }

    std::string plugin_label() const { return std::string("plugin '") + (plugin_.name ? plugin_.name : "?") + "'"; }

    // --- instance lifecycle -----------------------------------------------------------------------------
    void create(InstanceContext& instance) {
        instance.instance = nullptr;
        if (agent_descriptor_.create == nullptr) { // a stateless agent: the instance stays NULL
            instance.created = true;
            if (&instance == partition_instance_.get()) create_status_ = MPH_OK;
            return;
        }
        const mph_status status = call(
            instance, Phase::create, [&]() { return agent_descriptor_.create(instance.handle(), &instance.instance); });
        instance.created = status == MPH_OK;
        if (&instance == partition_instance_.get()) create_status_ = status;
    }

    void start(InstanceContext& instance) {
        create(instance);
        if (instance.created && agent_descriptor_.on_assigned != nullptr) {
            call(instance, Phase::on_assigned, [&]() {
                return agent_descriptor_.on_assigned(instance.instance, instance.handle(), instance.partition);
            });
        }
    }

    void stop(InstanceContext& instance, bool revoke) noexcept {
        if (!instance.created) return;
        if (revoke && agent_descriptor_.on_revoked != nullptr) {
            call(instance, Phase::on_revoked, [&]() {
                return agent_descriptor_.on_revoked(instance.instance, instance.handle(), instance.partition);
            });
        }
        if (agent_descriptor_.destroy != nullptr) {
            CurrentDriver guard(this);
            agent_descriptor_.destroy(instance.instance);
        }
        instance.instance = nullptr;
        instance.created = false;
    }

    InstanceContext& running_partition_instance() {
        if (!running())
            throw std::logic_error("agent '" + agent_ + "' has no running instance: create returned " +
                                   std::string(status_name(create_status_)) + " (" + last_error_ + ")");
        return *partition_instance_;
    }

    template <class Callback>
    mph_status call(InstanceContext& instance, Phase phase, Callback&& callback) noexcept {
        CurrentDriver guard(this);
        last_error_.clear();
        instance.phase = phase;
        const mph_status verdict = callback();
        instance.phase = Phase::idle;
        table_views_.clear(); // table_get views end with the callback (convention 6)
        return verdict;
    }

    void store(const TestEvent& source, StoredEvent& stored) {
        stored.topic = options_.from;
        stored.source = source;
        for (const Header& header : stored.source.headers) {
            stored.headers.push_back(mph_header{header.name.data(), header.name.size(),
                                                header.value ? header.value->data() : nullptr,
                                                header.value ? header.value->size() : 0});
        }
        mph_event& event = stored.event;
        event.struct_size = sizeof(mph_event);
        event.topic = stored.topic.c_str();
        event.partition = options_.partition;
        event.offset = source.offset.value_or(next_offset_);
        next_offset_ = event.offset + 1;
        event.timestamp_ms = source.timestamp_ms;
        if (stored.source.key) {
            event.key = stored.source.key->data();
            event.key_len = stored.source.key->size();
        }
        if (stored.source.value) {
            event.value = stored.source.value->data();
            event.value_len = stored.source.value->size();
        }
        event.headers = stored.headers.empty() ? nullptr : stored.headers.data();
        event.header_count = stored.headers.size();
    }

    // --- the host table ---------------------------------------------------------------------------------
    // Called from plugin code, so nothing may throw out of them: noexcept turns an out-of-memory in a test
    // into an immediate, visible termination instead of undefined behaviour in C frames.
    static AgentDriver* driver_of(mph_agent_ctx* ctx) noexcept {
        return ctx ? InstanceContext::from(ctx)->driver : CurrentDriver::current();
    }

    static void host_log(mph_agent_ctx* ctx, int32_t level, const char* msg, size_t msg_len) noexcept {
        AgentDriver* driver = driver_of(ctx);
        const std::string message = msg ? std::string(msg, msg_len) : std::string();
        if (driver == nullptr) {
            std::fprintf(stderr, "[mephisto test, no driver] %s\n", message.c_str());
            return;
        }
        if (driver->options_.print_logs)
            std::fprintf(stderr, "[%s level %d] %s\n", driver->options_.agent_name.c_str(), level, message.c_str());
        driver->logs_.push_back(LogLine{level, message, ctx == nullptr});
    }

    static void host_set_error(mph_agent_ctx* ctx, const char* msg, size_t msg_len) noexcept {
        if (AgentDriver* driver = driver_of(ctx)) driver->last_error_ = msg ? std::string(msg, msg_len) : std::string();
    }

    static const char* host_param(mph_agent_ctx* ctx, const char* name) noexcept {
        if (ctx == nullptr || name == nullptr) return nullptr;
        const Params& params = InstanceContext::from(ctx)->driver->params_;
        const auto found = params.find(name);
        return found == params.end() ? nullptr : found->second.c_str();
    }

    static mph_status host_emit(mph_agent_ctx* ctx, const mph_message* msg) noexcept {
        if (ctx == nullptr || msg == nullptr) return MPH_ERR_INVALID;
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.phase == Phase::idle) return MPH_ERR_STATE;
        if (driver.options_.sinks.empty()) return MPH_ERR_UNSUPPORTED;
        std::optional<Output> output = driver.read_message(msg);
        if (!output) return MPH_ERR_INVALID;
        if (const mph_status injected = driver.take_injected_failure(); injected != MPH_OK) return injected;
        for (const std::string& sink : driver.options_.sinks) {
            output->topic = sink;
            driver.outputs_.push_back(*output);
        }
        return MPH_OK;
    }

    static mph_status host_send(mph_agent_ctx* ctx, const char* topic, size_t topic_len,
                                const mph_message* msg) noexcept {
        if (ctx == nullptr || msg == nullptr || topic == nullptr || topic_len == 0) return MPH_ERR_INVALID;
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.phase == Phase::idle) return MPH_ERR_STATE;
        std::optional<Output> output = driver.read_message(msg);
        if (!output) return MPH_ERR_INVALID;
        if (const mph_status injected = driver.take_injected_failure(); injected != MPH_OK) return injected;
        output->topic.assign(topic, topic_len);
        driver.outputs_.push_back(std::move(*output));
        return MPH_OK;
    }

    static mph_status host_forward(mph_agent_ctx* ctx) noexcept {
        if (ctx == nullptr) return MPH_ERR_INVALID;
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.phase != Phase::on_event || instance.current_event == nullptr) return MPH_ERR_STATE;
        if (driver.options_.sinks.empty()) return MPH_ERR_UNSUPPORTED;
        if (const mph_status injected = driver.take_injected_failure(); injected != MPH_OK) return injected;
        const TestEvent& event = instance.current_event->source;
        for (const std::string& sink : driver.options_.sinks) {
            driver.outputs_.push_back(
                Output{sink, event.key, event.value, event.headers, MPH_PARTITION_ANY, event.timestamp_ms});
        }
        return MPH_OK;
    }

    static mph_status record_to_agent(mph_agent_ctx* ctx, const char* agent, const mph_message* msg,
                                      std::vector<Header> extra) noexcept {
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.phase == Phase::idle) return MPH_ERR_STATE;
        std::optional<Output> output = driver.read_message(msg);
        if (!output) return MPH_ERR_INVALID;
        if (const mph_status injected = driver.take_injected_failure(); injected != MPH_OK) return injected;
        output->topic = std::string("agent:") + agent;
        for (Header& header : extra) output->headers.push_back(std::move(header));
        driver.outputs_.push_back(std::move(*output));
        return MPH_OK;
    }

    static mph_status host_cast(mph_agent_ctx* ctx, const char* agent, const mph_message* msg) noexcept {
        if (ctx == nullptr || msg == nullptr || agent == nullptr || *agent == '\0') return MPH_ERR_INVALID;
        return record_to_agent(ctx, agent, msg, {});
    }

    static mph_status host_ask(mph_agent_ctx* ctx, const char* agent, const mph_message* msg, int64_t timeout_ms,
                               uint64_t* request_id) noexcept {
        if (ctx == nullptr || msg == nullptr || agent == nullptr || *agent == '\0' || timeout_ms <= 0)
            return MPH_ERR_INVALID;
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.partition < 0 || (instance.phase != Phase::on_event && instance.phase != Phase::on_batch &&
                                        instance.phase != Phase::on_reply))
            return MPH_ERR_STATE;
        if (driver.agent_descriptor_.on_reply == nullptr) return MPH_ERR_UNSUPPORTED;
        const uint64_t id = driver.next_request_;
        const mph_status status = record_to_agent(
            ctx, agent, msg, {Header{"mephisto-reply-to", "driver-replies"}, Header{"mephisto-correlation-id", std::to_string(id)}});
        if (status != MPH_OK) return status;
        ++driver.next_request_;
        driver.asks_.push_back(id);
        if (request_id) *request_id = id;
        return MPH_OK;
    }

    static mph_status host_reply(mph_agent_ctx* ctx, const void* value, size_t value_len) noexcept {
        if (ctx == nullptr || (value == nullptr && value_len > 0)) return MPH_ERR_INVALID;
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.phase != Phase::on_event || instance.current_event == nullptr) return MPH_ERR_STATE;
        std::optional<std::string> reply_to, correlation;
        for (const Header& header : instance.current_event->source.headers) {
            if (header.name == "mephisto-reply-to") reply_to = header.value;
            if (header.name == "mephisto-correlation-id") correlation = header.value;
        }
        if (!reply_to || !correlation) return MPH_ERR_NOT_FOUND;
        if (const mph_status injected = driver.take_injected_failure(); injected != MPH_OK) return injected;
        driver.outputs_.push_back(Output{*reply_to, *correlation,
                                         std::string(value ? static_cast<const char*>(value) : "", value_len),
                                         {Header{"mephisto-correlation-id", *correlation}}, 0, 0});
        return MPH_OK;
    }

    static mph_status host_ack(mph_agent_ctx* ctx, int64_t offset) noexcept {
        if (ctx == nullptr) return MPH_ERR_INVALID;
        InstanceContext& instance = *InstanceContext::from(ctx);
        AgentDriver& driver = *instance.driver;
        if (instance.phase == Phase::idle || instance.partition < 0) return MPH_ERR_STATE;
        if (offset < 0 || offset >= driver.next_offset_) return MPH_ERR_NOT_FOUND;
        driver.acked_.push_back(offset);
        return MPH_OK;
    }

    static int32_t host_partition(mph_agent_ctx* ctx) noexcept {
        return ctx ? InstanceContext::from(ctx)->partition : -1;
    }

    static const char* host_agent_name(mph_agent_ctx* ctx) noexcept {
        return ctx ? InstanceContext::from(ctx)->driver->options_.agent_name.c_str() : nullptr;
    }

    // Tables resolve in any callback, timer instances included (an agent resolves its tables in its constructor,
    // which runs for timer instances too); using them is what a timer instance may not do.
    static mph_table* host_table(mph_agent_ctx* ctx, const char* name) noexcept {
        if (ctx == nullptr || name == nullptr) return nullptr;
        InstanceContext& instance = *InstanceContext::from(ctx);
        if (instance.phase == Phase::idle) return nullptr;
        auto& tables = instance.driver->tables_;
        const auto found = tables.find(std::string_view(name));
        return found == tables.end() ? nullptr : found->second.handle();
    }

    // The checks every table call makes, in order: arguments, then the phase and the kind of instance.
    // Returns the table, or nullptr with *status set.
    static TableState* table_access(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                                    mph_status* status) noexcept {
        *status = MPH_ERR_INVALID;
        if (ctx == nullptr || table == nullptr || (key == nullptr && key_len > 0)) return nullptr;
        InstanceContext& instance = *InstanceContext::from(ctx);
        TableState* state = nullptr;
        for (auto& [name, candidate] : instance.driver->tables_)
            if (candidate.handle() == table) state = &candidate;
        if (state == nullptr) return nullptr; // not a handle this driver gave out
        if (instance.phase == Phase::idle || instance.partition < 0) {
            *status = MPH_ERR_STATE;
            return nullptr;
        }
        *status = MPH_OK;
        return state;
    }

    static std::string bytes_of(const void* data, size_t size) {
        return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
    }

    static mph_status host_table_get(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                                     const void** value, size_t* value_len) noexcept {
        mph_status status = MPH_OK;
        TableState* state = table_access(ctx, table, key, key_len, &status);
        if (state == nullptr) return status;
        if (value == nullptr || value_len == nullptr) return MPH_ERR_INVALID;
        const auto found = state->entries.find(bytes_of(key, key_len));
        const std::string* stored = found != state->entries.end() ? &found->second
                                    : state->default_value     ? &*state->default_value
                                                               : nullptr;
        if (stored == nullptr) return MPH_ERR_NOT_FOUND;
        // A copy that lives until the callback returns, as the ABI promises, whatever the agent writes meanwhile.
        const std::string& view = InstanceContext::from(ctx)->driver->table_views_.emplace_back(*stored);
        *value = view.data();
        *value_len = view.size();
        return MPH_OK;
    }

    static mph_status host_table_put(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                                     const void* value, size_t value_len) noexcept {
        mph_status status = MPH_OK;
        TableState* state = table_access(ctx, table, key, key_len, &status);
        if (state == nullptr) return status;
        if (value == nullptr && value_len > 0) return MPH_ERR_INVALID;
        std::string bytes = bytes_of(value, value_len);
        if (!valid_for(*state, bytes)) return MPH_ERR_INVALID;
        state->entries.insert_or_assign(bytes_of(key, key_len), std::move(bytes));
        return MPH_OK;
    }

    static mph_status host_table_delete(mph_agent_ctx* ctx, mph_table* table, const void* key,
                                        size_t key_len) noexcept {
        mph_status status = MPH_OK;
        TableState* state = table_access(ctx, table, key, key_len, &status);
        if (state == nullptr) return status;
        state->entries.erase(bytes_of(key, key_len));
        return MPH_OK;
    }

    // Wraps around on overflow (two's complement), as Java's long arithmetic does.
    static mph_status host_table_add(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                                     int64_t delta, int64_t* result) noexcept {
        mph_status status = MPH_OK;
        TableState* state = table_access(ctx, table, key, key_len, &status);
        if (state == nullptr) return status;
        if (state->codec != Codec::int64) return MPH_ERR_UNSUPPORTED;
        // declare_tables gives every int64 table a default, so an absent key starts from it.
        const std::string* stored = &*state->default_value;
        const auto found = state->entries.find(bytes_of(key, key_len));
        if (found != state->entries.end()) stored = &found->second;
        const std::optional<int64_t> current = decode_int64(*stored);
        if (!current) return MPH_ERR_INVALID; // a malformed value seeded by the test through table()
        const auto sum = static_cast<int64_t>(static_cast<uint64_t>(*current) + static_cast<uint64_t>(delta));
        state->entries.insert_or_assign(bytes_of(key, key_len), int64_value(sum));
        if (result != nullptr) *result = sum;
        return MPH_OK;
    }

    static mph_status host_table_iterate(mph_agent_ctx* ctx, mph_table* table, mph_table_visit_fn visit,
                                         void* user) noexcept {
        mph_status status = MPH_OK;
        TableState* state = table_access(ctx, table, nullptr, 0, &status);
        if (state == nullptr) return status;
        if (visit == nullptr) return MPH_ERR_INVALID;
        // A snapshot: writes made by the visit are not seen by the iteration, and cannot invalidate it.
        const std::vector<std::pair<std::string, std::string>> snapshot(state->entries.begin(), state->entries.end());
        for (const auto& [key, value] : snapshot) {
            const mph_status verdict = visit(user, key.data(), key.size(), value.data(), value.size());
            if (verdict != MPH_OK) return verdict;
        }
        return MPH_OK;
    }

    // The aggregation of ABI 1.2. As on the host, the table is unchanged when the aggregator refuses the input
    // or the codec refuses its result, and the reason becomes the callback's error text; the new value's view
    // lives until the callback returns, like table_get's.
    // Windowed tables (ABI 1.3) are not simulated by the driver: test them against a host (tests/windows).
    static mph_status host_window_unsupported_get(mph_agent_ctx* ctx, mph_table*, const void*, size_t, int32_t, int64_t,
                                                  const void**, size_t*, mph_window*) {
        return unsupported_window(ctx);
    }
    static mph_status host_window_unsupported_iterate(mph_agent_ctx* ctx, mph_table*, const void*, size_t,
                                                      mph_window_visit_fn, void*) {
        return unsupported_window(ctx);
    }
    static mph_status unsupported_window(mph_agent_ctx* ctx) {
        if (AgentDriver* driver = driver_of(ctx))
            driver->last_error_ = "the test driver does not simulate windowed tables; run the agent on a host";
        return MPH_ERR_UNSUPPORTED;
    }

    static mph_status host_table_merge(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                                       const void* input, size_t input_len, const void** value,
                                       size_t* value_len) noexcept {
        mph_status status = MPH_OK;
        TableState* state = table_access(ctx, table, key, key_len, &status);
        if (state == nullptr) return status;
        if (input == nullptr && input_len > 0) return MPH_ERR_INVALID;
        if (state->aggregator == nullptr) return MPH_ERR_UNSUPPORTED;
        AgentDriver& driver = *InstanceContext::from(ctx)->driver;

        std::string key_bytes = bytes_of(key, key_len);
        const auto found = state->entries.find(key_bytes);
        const std::string* current = found != state->entries.end() ? &found->second
                                     : state->default_value     ? &*state->default_value
                                                                : nullptr;
        std::string merged;
        const mph_write_fn append = [](void* sink, const void* data, size_t len) noexcept {
            if (data != nullptr) static_cast<std::string*>(sink)->append(static_cast<const char*>(data), len);
        };
        char errbuf[512] = {};
        const mph_status verdict = state->aggregator->merge(current ? current->data() : nullptr,
                                                            current ? current->size() : 0, input ? input : "",
                                                            input_len, append, &merged, errbuf, sizeof errbuf);
        errbuf[sizeof errbuf - 1] = '\0';

        const std::string aggregator = "table '" + state->name + "': aggregator '" +
                                       (state->aggregator->name ? state->aggregator->name : "?") + "'";
        if (verdict == MPH_ERR_INVALID) {
            driver.last_error_ = aggregator + " refused the input: " + errbuf;
            return MPH_ERR_INVALID;
        }
        if (verdict != MPH_OK) { // outside the contract: treated as a refusal, so the table stays unchanged
            driver.last_error_ = aggregator + " returned " + std::string(status_name(verdict)) +
                                 " (merge returns MPH_OK or MPH_ERR_INVALID)";
            return MPH_ERR_INVALID;
        }
        std::string reason;
        if (!valid_for(*state, merged, &reason)) {
            driver.last_error_ = aggregator + " produced a value the table's value codec '" + state->codec_name +
                                 "' refuses" + (reason.empty() ? "" : ": " + reason);
            return MPH_ERR_INVALID;
        }
        const std::string& view = driver.table_views_.emplace_back(merged);
        state->entries.insert_or_assign(std::move(key_bytes), std::move(merged));
        if (value != nullptr) *value = view.data();
        if (value_len != nullptr) *value_len = view.size();
        return MPH_OK;
    }

    // Copies a plugin's message, honouring its struct_size. nullopt when it is malformed.
    std::optional<Output> read_message(const mph_message* msg) const {
        Output output{{}, std::nullopt, std::nullopt, {}, MPH_PARTITION_ANY, 0};
        if (!MPH_HAS_MEMBER(mph_message, msg, value_len)) return std::nullopt; // key and value are the minimum
        if (msg->key != nullptr) output.key.emplace(static_cast<const char*>(msg->key), msg->key_len);
        if (msg->value != nullptr) output.value.emplace(static_cast<const char*>(msg->value), msg->value_len);
        if (MPH_HAS_MEMBER(mph_message, msg, header_count) && msg->header_count > 0) {
            if (msg->headers == nullptr) return std::nullopt;
            for (size_t i = 0; i < msg->header_count; ++i) {
                const mph_header& header = msg->headers[i];
                if (header.name == nullptr) return std::nullopt;
                Header copy{std::string(header.name, header.name_len), std::nullopt};
                if (header.value != nullptr)
                    copy.value.emplace(static_cast<const char*>(header.value), header.value_len);
                output.headers.push_back(std::move(copy));
            }
        }
        if (MPH_HAS_MEMBER(mph_message, msg, partition)) {
            output.partition = msg->partition;
            if (output.partition < MPH_PARTITION_ANY) return std::nullopt;
            if (options_.partition_count && output.partition >= *options_.partition_count) return std::nullopt;
        }
        if (MPH_HAS_MEMBER(mph_message, msg, timestamp_ms)) output.timestamp_ms = msg->timestamp_ms;
        return output;
    }

    mph_status take_injected_failure() noexcept {
        if (injected_failures_left_ <= 0) return MPH_OK;
        --injected_failures_left_;
        return injected_failure_;
    }

    static std::optional<std::string> to_owned(std::optional<std::string_view> view) {
        return view ? std::optional<std::string>(std::string(*view)) : std::nullopt;
    }

    static int64_t wall_clock_ms() {
        using namespace std::chrono;
        return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    }

    std::string agent_;
    Params params_;
    DriverOptions options_;
    mph_host_api api_{};
    mph_plugin_descriptor plugin_{};
    mph_agent_descriptor agent_descriptor_{};
    std::unique_ptr<InstanceContext> partition_instance_;
    std::map<std::string, std::unique_ptr<InstanceContext>, std::less<>> timer_instances_;
    mph_status create_status_ = MPH_OK;
    std::vector<Output> outputs_;
    std::deque<uint64_t> asks_;  // unanswered asks (ABI 1.4)
    uint64_t next_request_ = 1;
    std::vector<int64_t> acked_;
    std::vector<LogLine> logs_;
    std::string last_error_;
    int64_t next_offset_ = 0;
    mph_status injected_failure_ = MPH_OK;
    int injected_failures_left_ = 0;
    std::map<std::string, TableState, std::less<>> tables_;
    std::deque<std::string> table_views_; // what table_get handed out during the current callback
};

inline mph_plugin_descriptor plugin_descriptor(mph_entry_fn entry) {
    // The plugin keeps the host table it was given (the wrapper does), so it must outlive this call. It is the
    // same table every driver offers, so a driver of the same plugin still works after this call. (A
    // function-local static is fine here: testing.hpp is for test executables, never for plugins.)
    static const mph_host_api api = AgentDriver::host_functions();
    return AgentDriver::enter(entry, &api);
}

namespace detail {

// The item of `items` called `name`, or std::runtime_error naming the ones there are.
template <class Descriptor>
const Descriptor& find_provided(const mph_plugin_descriptor& plugin, const Descriptor* const* items, size_t count,
                                const char* kind, std::string_view name) {
    std::string available;
    for (size_t i = 0; i < count; ++i) {
        if (name == items[i]->name) return *items[i];
        available += (available.empty() ? "" : ", ") + std::string(items[i]->name);
    }
    throw std::runtime_error(std::string("plugin '") + plugin.name + "' has no " + kind + " '" + std::string(name) +
                             "' (it has: " + (available.empty() ? "none" : available) + ")");
}

} // namespace detail

inline const mph_codec_descriptor& plugin_codec(mph_entry_fn entry, std::string_view name) {
    const mph_plugin_descriptor plugin = plugin_descriptor(entry);
    return detail::find_provided(plugin, plugin.codecs, plugin.codec_count, "codec", name);
}

inline const mph_aggregator_descriptor& plugin_aggregator(mph_entry_fn entry, std::string_view name) {
    const mph_plugin_descriptor plugin = plugin_descriptor(entry);
    return detail::find_provided(plugin, plugin.aggregators, plugin.aggregator_count, "aggregator", name);
}

} // namespace mephisto::testing

#endif // MEPHISTO_TESTING_HPP
