// Codecs and aggregators (ABI 1.2): mephisto::codec / mephisto::aggregator and Table::merge in the C++ wrapper,
// and table_merge in the test driver. One plugin (this file's MEPHISTO_PLUGIN) provides both, and agents that
// merge; a hand-written C-style plugin built against ABI 1.1 checks that older plugins keep working.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using mephisto::testing::AgentDriver;
using mephisto::testing::int64_value;
using mephisto::testing::TableSpec;

namespace {

// --- codecs -------------------------------------------------------------------------------------------------

// Kafka's LongSerializer, with both members.
struct Int64Codec {
    static void validate(std::string_view value) {
        if (value.size() != 8) throw mephisto::Error("an int64 is 8 bytes, not " + std::to_string(value.size()));
    }
    static std::string to_json(std::string_view value) {
        validate(value);
        return std::to_string(*mephisto::decode_int64(value));
    }
};

// validate only, refusing with a std::exception that is not a mephisto::Error.
struct AsciiCodec {
    static void validate(std::string_view value) {
        for (size_t i = 0; i < value.size(); ++i)
            if (static_cast<unsigned char>(value[i]) > 0x7f)
                throw std::invalid_argument("byte " + std::to_string(i) + " is not ASCII");
    }
};

// to_json only: any bytes, shown as a JSON string of hex digits.
struct HexCodec {
    static std::string to_json(std::string_view value) {
        constexpr std::string_view digits = "0123456789abcdef";
        std::string json = "\"";
        for (const char byte : value) {
            json += digits[static_cast<unsigned char>(byte) >> 4];
            json += digits[static_cast<unsigned char>(byte) & 0xf];
        }
        return json + "\"";
    }
};

// --- aggregators -------------------------------------------------------------------------------------------

// The largest int64 seen per key; refuses anything that is not an int64.
struct Max {
    static std::string merge(std::optional<std::string_view> current, std::string_view input) {
        const std::optional<int64_t> candidate = mephisto::decode_int64(input);
        if (!candidate)
            throw mephisto::Error("max: the input is " + std::to_string(input.size()) + " bytes, an int64 is 8");
        if (current) {
            const std::optional<int64_t> best = mephisto::decode_int64(*current);
            if (!best) throw mephisto::Error("max: the current value is not an int64");
            if (*best >= *candidate) return std::string(*current);
        }
        return std::string(input);
    }
};

// "current,input", so that a test sees what current was: an absent current is not an empty one.
struct Join {
    static std::string merge(std::optional<std::string_view> current, std::string_view input) {
        if (input == "throw 42") throw 42; // not a std::exception
        if (!current) return "<absent>+" + std::string(input);
        return std::string(*current) + "," + std::string(input);
    }
};

// --- agents ------------------------------------------------------------------------------------------------

// Merges each event's value into its key's value of table "t" and emits the new value, keyed by the key.
struct Merger {
    explicit Merger(mephisto::Context& ctx) : table(ctx.table("t")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        const std::string key(event.key().value_or(""));
        ctx.emit(table.merge(key, event.value()), key);
    }

    mephisto::Table table;
};

// Like Merger, but catches what the table throws and logs its type, status and text; the key "put" puts
// instead, and the key "probe" calls the C function directly.
struct CatchingMerger {
    explicit CatchingMerger(mephisto::Context& ctx) : table(ctx.table("t")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        const std::string key(event.key().value_or(""));
        if (key == "probe") return probe(ctx, event.value());
        try {
            if (key == "put") {
                table.put(key, event.value());
            } else {
                ctx.emit(table.merge(key, event.value()), key);
            }
        } catch (const mephisto::MergeRefused& error) {
            ctx.log_warn("refused ", mephisto::status_name(error.status()), ": ", error.what());
        } catch (const mephisto::Error& error) {
            ctx.log_warn("error ", mephisto::status_name(error.status()), ": ", error.what());
        }
    }

    void probe(mephisto::Context& ctx, std::string_view input) {
        const mph_host_api& api = ctx.api();
        const void* value = nullptr;
        size_t value_len = 0;
        auto log = [&](const char* what, mph_status status) {
            ctx.log_info(what, ": ", mephisto::status_name(status));
        };
        log("merge without out-params",
            api.table_merge(ctx.raw(), table.raw(), "p", 1, input.data(), input.size(), nullptr, nullptr));
        log("merge a NULL input with a length",
            api.table_merge(ctx.raw(), table.raw(), "p", 1, nullptr, 8, &value, &value_len));
        log("merge with a NULL key and a length",
            api.table_merge(ctx.raw(), table.raw(), nullptr, 1, input.data(), input.size(), &value, &value_len));
        log("merge through a foreign handle", api.table_merge(ctx.raw(), reinterpret_cast<mph_table*>(&value), "p",
                                                              1, input.data(), input.size(), &value, &value_len));
    }

    mephisto::Table table;
};

// The detection the static_asserts of mephisto::codec / mephisto::aggregator rest on.
struct NotStatic {
    void validate(std::string_view) {}
    std::string merge(std::optional<std::string_view>, std::string_view) { return {}; }
};
struct WrongReturn {
    static bool validate(std::string_view) { return true; }
    static int merge(std::optional<std::string_view>, std::string_view) { return 0; }
};
static_assert(mephisto::detail::HasValidate<Int64Codec> && mephisto::detail::HasToJson<Int64Codec>);
static_assert(mephisto::detail::HasValidate<AsciiCodec> && !mephisto::detail::HasToJson<AsciiCodec>);
static_assert(!mephisto::detail::HasValidate<NotStatic> && mephisto::detail::NamesValidate<NotStatic>);
static_assert(!mephisto::detail::HasMerge<NotStatic> && mephisto::detail::NamesMerge<NotStatic>);
static_assert(mephisto::detail::HasValidate<WrongReturn> && !mephisto::detail::ValidateReturnsVoid<WrongReturn>);
static_assert(mephisto::detail::HasMerge<WrongReturn> && !mephisto::detail::MergeReturnsValue<WrongReturn>);
static_assert(mephisto::detail::HasMerge<Max> && mephisto::detail::MergeReturnsValue<Max>);

// A write sink that appends to a std::string, as the host's output does.
void append(void* sink, const void* data, size_t len) {
    static_cast<std::string*>(sink)->append(static_cast<const char*>(data), len);
}

std::optional<int64_t> decoded(const std::string& value) { return mephisto::decode_int64(value); }

std::vector<int64_t> decoded_values(const AgentDriver& driver, std::string_view topic) {
    std::vector<int64_t> numbers;
    for (const std::string& value : driver.values(topic)) numbers.push_back(decoded(value).value_or(-999));
    return numbers;
}

// ---------------------------------------------------------------------------------------------------------
// A plugin built against ABI 1.1, in the C style: its mph_plugin_descriptor ends at fini (struct_size), and it
// counts through table_add. The 1.2 members of the object it returns hold garbage that a reader ignoring
// struct_size would take for codecs and aggregators. Not exported (its own entry name).
// ---------------------------------------------------------------------------------------------------------
const mph_host_api* v11_host = nullptr;

mph_status v11_create(mph_agent_ctx* ctx, void** instance) {
    *instance = v11_host->table(ctx, "counts");
    return *instance != nullptr ? MPH_OK : MPH_FATAL;
}

mph_status v11_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* event) {
    int64_t count = 0;
    const mph_status added =
        v11_host->table_add(ctx, static_cast<mph_table*>(instance), event->value, event->value_len, 1, &count);
    if (added != MPH_OK) return MPH_FATAL;
    const std::string text = std::to_string(count);
    mph_message message{};
    message.struct_size = sizeof message; // unchanged since 1.0
    message.value = text.data();
    message.value_len = text.size();
    message.partition = MPH_PARTITION_ANY;
    return v11_host->emit(ctx, &message);
}

const mph_agent_descriptor v11_agent = [] {
    mph_agent_descriptor agent{};
    agent.struct_size = sizeof agent; // unchanged since 1.0
    agent.name = "count";
    agent.create = v11_create;
    agent.on_event = v11_on_event;
    return agent;
}();
const mph_agent_descriptor* const v11_agents[] = {&v11_agent};

const mph_plugin_descriptor v11_plugin = [] {
    mph_plugin_descriptor plugin{};
    plugin.struct_size = offsetof(mph_plugin_descriptor, codecs); // the 1.1 descriptor ends at fini
    plugin.abi_major = 1;
    plugin.abi_minor = 1;
    plugin.name = "v11";
    plugin.version = "1.1.0";
    plugin.agents = v11_agents;
    plugin.agent_count = 1;
    // Not the plugin's: in a real 1.1 plugin, whatever follows its descriptor in memory.
    plugin.codecs = reinterpret_cast<const mph_codec_descriptor* const*>(uintptr_t{0xabababab});
    plugin.codec_count = 7;
    plugin.aggregators = reinterpret_cast<const mph_aggregator_descriptor* const*>(uintptr_t{0xabababab});
    plugin.aggregator_count = 3;
    return plugin;
}();

const mph_plugin_descriptor* v11_entry(uint32_t major, uint32_t, const mph_host_api* api, char* errbuf,
                                       size_t errbuf_size) {
    // What a 1.1 plugin checks: the major and the 1.1 members it uses, nothing newer.
    if (major != 1 || !MPH_HAS_MEMBER(mph_host_api, api, table_iterate)) {
        std::snprintf(errbuf, errbuf_size, "needs ABI 1.1");
        return nullptr;
    }
    v11_host = api;
    return &v11_plugin;
}

} // namespace

// A filter predicate: keeps events with a non-empty value; a tombstone is refused.
struct NotEmpty {
    static bool keep(const mephisto::Event& event) {
        if (event.is_tombstone()) throw std::runtime_error("a tombstone has no value to judge");
        return !event.value().empty();
    }
};

// A group_by key function: the event's key upper-cased; an event without a key is refused.
struct UpperKey {
    static std::string key(const mephisto::Event& event) {
        if (!event.key()) throw std::runtime_error("no key to group by");
        std::string key(*event.key());
        for (char& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return key;
    }
};

MEPHISTO_PLUGIN("aggregate_test", "0.1.0", mephisto::description("codecs, aggregators and agents that merge"),
                mephisto::codec<Int64Codec>("int64_be", "8 bytes big-endian"), mephisto::codec<AsciiCodec>("ascii"),
                mephisto::agent<Merger>("merger", "merges every event into its key"),
                mephisto::aggregator<Max>("max", "the largest int64"), mephisto::codec<HexCodec>("hex"),
                mephisto::aggregator<Join>("join"), mephisto::agent<CatchingMerger>("catching_merger"),
                mephisto::key_function<UpperKey>("upper_key", "the key, upper-cased"),
                mephisto::predicate<NotEmpty>("not_empty", "events with a value"));

TEST_CASE("aggregate: a predicate keeps, filters out, or refuses an event with its reason (ABI 1.3)") {
    const mph_plugin_descriptor plugin = mephisto::testing::plugin_descriptor(mephisto_plugin_entry);
    REQUIRE(plugin.predicate_count == 1);
    const mph_predicate_descriptor& p = *plugin.predicates[0];
    CHECK(p.struct_size == sizeof(mph_predicate_descriptor));
    CHECK(std::string(p.name) == "not_empty");
    mph_event ev{};
    ev.struct_size = sizeof ev;
    ev.value = "x";
    ev.value_len = 1;
    char errbuf[128] = {};
    CHECK(p.keep(&ev, errbuf, sizeof errbuf) == 1);
    ev.value_len = 0;
    CHECK(p.keep(&ev, errbuf, sizeof errbuf) == 0);
    ev.value = nullptr;  // a tombstone: the predicate throws
    CHECK(p.keep(&ev, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(std::string(errbuf) == "a tombstone has no value to judge");
}

TEST_CASE("aggregate: a key function writes the event's grouping key, or refuses the event with its reason") {
    const mph_plugin_descriptor plugin = mephisto::testing::plugin_descriptor(mephisto_plugin_entry);
    REQUIRE(plugin.key_function_count == 1);
    const mph_key_fn_descriptor& fn = *plugin.key_functions[0];
    CHECK(fn.struct_size == sizeof(mph_key_fn_descriptor));
    CHECK(std::string(fn.name) == "upper_key");
    auto append = [](void* sink, const void* data, size_t len) {
        static_cast<std::string*>(sink)->append(static_cast<const char*>(data), len);
    };
    mph_event event{};
    event.struct_size = sizeof event;
    event.topic = "t";
    event.key = "page-7";
    event.key_len = 6;
    std::string key;
    char errbuf[64] = {};
    CHECK(fn.key(&event, append, &key, errbuf, sizeof errbuf) == MPH_OK);
    CHECK(key == "PAGE-7");
    event.key = nullptr;
    event.key_len = 0;
    key.clear();
    CHECK(fn.key(&event, append, &key, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(key.empty());
    CHECK(std::string(errbuf) == "no key to group by");
}

TEST_CASE("aggregate: the descriptor lists the wrapper's codecs and aggregators in order, with their names") {
    const mph_plugin_descriptor plugin = mephisto::testing::plugin_descriptor(mephisto_plugin_entry);
    CHECK(plugin.struct_size == sizeof(mph_plugin_descriptor));
    CHECK(plugin.abi_major == MPH_ABI_VERSION_MAJOR);
    CHECK(plugin.abi_minor == MPH_ABI_VERSION_MINOR);
    CHECK(plugin.agent_count == 2);

    REQUIRE(plugin.codec_count == 3);
    const char* codec_names[] = {"int64_be", "ascii", "hex"};
    for (size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        REQUIRE(plugin.codecs[i] != nullptr);
        CHECK(plugin.codecs[i]->struct_size == sizeof(mph_codec_descriptor));
        CHECK(std::string(plugin.codecs[i]->name) == codec_names[i]);
    }
    CHECK(std::string(plugin.codecs[0]->description) == "8 bytes big-endian");
    CHECK(plugin.codecs[1]->description == nullptr);
    // Exactly the members the class has; the host treats a NULL one as "accept everything" / "show as a string".
    CHECK((plugin.codecs[0]->validate != nullptr && plugin.codecs[0]->to_json != nullptr));
    CHECK((plugin.codecs[1]->validate != nullptr && plugin.codecs[1]->to_json == nullptr));
    CHECK((plugin.codecs[2]->validate == nullptr && plugin.codecs[2]->to_json != nullptr));

    REQUIRE(plugin.aggregator_count == 2);
    for (size_t i = 0; i < 2; ++i) {
        CAPTURE(i);
        REQUIRE(plugin.aggregators[i] != nullptr);
        CHECK(plugin.aggregators[i]->struct_size == sizeof(mph_aggregator_descriptor));
        CHECK((plugin.aggregators[i]->merge != nullptr));
    }
    CHECK(std::string(plugin.aggregators[0]->name) == "max");
    CHECK(std::string(plugin.aggregators[0]->description) == "the largest int64");
    CHECK(std::string(plugin.aggregators[1]->name) == "join");
    CHECK(plugin.aggregators[1]->description == nullptr);

    // The helpers return the plugin's own descriptors, and name what there is when asked for something else.
    CHECK(&mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "join") == plugin.aggregators[1]);
    CHECK(&mephisto::testing::plugin_codec(mephisto_plugin_entry, "hex") == plugin.codecs[2]);
    CHECK_THROWS_WITH_AS(mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "min"),
                         "plugin 'aggregate_test' has no aggregator 'min' (it has: max, join)", std::runtime_error);
    CHECK_THROWS_WITH_AS(mephisto::testing::plugin_codec(mephisto_plugin_entry, "max"),
                         "plugin 'aggregate_test' has no codec 'max' (it has: int64_be, ascii, hex)",
                         std::runtime_error);

    // The driver sees the same descriptor.
    AgentDriver driver(mephisto_plugin_entry, "merger", {}, {.tables = {{.name = "t"}}});
    CHECK(driver.plugin().codec_count == 3);
    CHECK(driver.plugin().aggregator_count == 2);
}

TEST_CASE("aggregate: a codec's validate accepts, or refuses with the exception's text in errbuf") {
    const mph_codec_descriptor& int64 = mephisto::testing::plugin_codec(mephisto_plugin_entry, "int64_be");
    char errbuf[128];
    std::memset(errbuf, 'x', sizeof errbuf);
    const std::string forty_two = int64_value(42);
    CHECK(int64.validate(forty_two.data(), forty_two.size(), errbuf, sizeof errbuf) == MPH_OK);
    CHECK(int64.validate("abc", 3, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(std::string(errbuf) == "an int64 is 8 bytes, not 3"); // mephisto::Error

    char small[6];
    CHECK(int64.validate("abc", 3, small, sizeof small) == MPH_ERR_INVALID);
    CHECK(std::string(small) == "an in"); // truncated to the buffer, still terminated
    CHECK(int64.validate("abc", 3, nullptr, 0) == MPH_ERR_INVALID); // no buffer: still refused

    const mph_codec_descriptor& ascii = mephisto::testing::plugin_codec(mephisto_plugin_entry, "ascii");
    CHECK(ascii.validate("plain text", 10, errbuf, sizeof errbuf) == MPH_OK);
    CHECK(ascii.validate(nullptr, 0, errbuf, sizeof errbuf) == MPH_OK); // an empty value
    CHECK(ascii.validate("caf\xc3\xa9", 5, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(std::string(errbuf) == "byte 3 is not ASCII"); // std::invalid_argument
}

TEST_CASE("aggregate: a codec's to_json writes through the sink, and a throw is MPH_ERR_INVALID and writes nothing") {
    const mph_codec_descriptor& int64 = mephisto::testing::plugin_codec(mephisto_plugin_entry, "int64_be");
    std::string json;
    CHECK(int64.to_json(int64_value(-5).data(), 8, append, &json) == MPH_OK);
    CHECK(json == "-5");
    CHECK(int64.to_json(int64_value(1'000'000'000'000).data(), 8, append, &json) == MPH_OK);
    CHECK(json == "-51000000000000"); // several calls append to one sink

    json.clear();
    CHECK(int64.to_json("abc", 3, append, &json) == MPH_ERR_INVALID);
    CHECK(json.empty());
    CHECK(int64.to_json(int64_value(1).data(), 8, nullptr, &json) == MPH_ERR_INVALID); // no write function

    const mph_codec_descriptor& hex = mephisto::testing::plugin_codec(mephisto_plugin_entry, "hex");
    CHECK(hex.to_json("\x01\xff", 2, append, &json) == MPH_OK);
    CHECK(json == "\"01ff\"");
    json.clear();
    CHECK(hex.to_json(nullptr, 0, append, &json) == MPH_OK);
    CHECK(json == "\"\"");
}

TEST_CASE("aggregate: merge called directly: absent current is nullopt, empty current is not, a throw refuses") {
    const mph_aggregator_descriptor& join = mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "join");
    std::string out;
    char errbuf[128] = {};
    CHECK(join.merge(nullptr, 0, "a", 1, append, &out, errbuf, sizeof errbuf) == MPH_OK);
    CHECK(out == "<absent>+a");
    out.clear();
    CHECK(join.merge("", 0, "b", 1, append, &out, errbuf, sizeof errbuf) == MPH_OK);
    CHECK(out == ",b");
    out.clear();
    CHECK(join.merge("x", 1, "throw 42", 8, append, &out, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(std::string(errbuf) == "unknown exception (not derived from std::exception)");
    CHECK(out.empty());

    const mph_aggregator_descriptor& max = mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "max");
    CHECK(max.merge(nullptr, 0, "abc", 3, append, &out, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(std::string(errbuf) == "max: the input is 3 bytes, an int64 is 8");
    CHECK(out.empty());
    const std::string three = int64_value(3), seven = int64_value(7);
    CHECK(max.merge(seven.data(), 8, three.data(), 8, append, &out, errbuf, sizeof errbuf) == MPH_OK);
    CHECK(out == seven);
    CHECK(max.merge(nullptr, 0, three.data(), 8, nullptr, &out, errbuf, sizeof errbuf) == MPH_ERR_INVALID);
    CHECK(std::string(errbuf) == "merge was given no write function");
}

TEST_CASE("aggregate: Table::merge folds with the table's aggregator: a max over int64, from the default, per key") {
    const TableSpec highs{.name = "t",
                          .value = "int64",
                          .aggregator = &mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "max")};
    AgentDriver driver(mephisto_plugin_entry, "merger", {}, {.sinks = {"out"}, .tables = {highs}});
    REQUIRE(driver.running());
    CHECK(driver.send(int64_value(5), "a") == MPH_OK);
    CHECK(driver.send(int64_value(-3), "b") == MPH_OK); // an int64 table defaults to 0: max(0, -3)
    CHECK(driver.send(int64_value(3), "a") == MPH_OK);
    CHECK(driver.send(int64_value(9), "a") == MPH_OK);
    CHECK(decoded_values(driver, "out") == std::vector<int64_t>{5, 0, 5, 9});
    CHECK(driver.table_int64("t", "a") == 9);
    CHECK(driver.table_int64("t", "b") == 0);

    CHECK(driver.restart() == MPH_OK); // host state: the merged values survive a restart
    CHECK(driver.send(int64_value(7), "a") == MPH_OK);
    CHECK(decoded_values(driver, "out").back() == 9);
}

TEST_CASE("aggregate: current is the stored value, else the default, else absent") {
    const mph_aggregator_descriptor* join = &mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "join");
    AgentDriver without_default(mephisto_plugin_entry, "merger", {},
                                {.sinks = {"out"}, .tables = {{.name = "t", .aggregator = join}}});
    CHECK(without_default.send("x", "k") == MPH_OK);
    CHECK(without_default.send("y", "k") == MPH_OK);
    CHECK(without_default.send("z", "") == MPH_OK); // the empty key is a key
    CHECK(without_default.values("out") == std::vector<std::string>{"<absent>+x", "<absent>+x,y", "<absent>+z"});
    CHECK(without_default.table("t").at("k") == "<absent>+x,y");

    AgentDriver with_default(mephisto_plugin_entry, "merger", {},
                             {.sinks = {"out"}, .tables = {{.name = "t", .default_value = "d", .aggregator = join}}});
    with_default.table("t")["seeded"] = ""; // a stored empty value is present
    CHECK(with_default.send("x", "k") == MPH_OK);
    CHECK(with_default.send("x", "seeded") == MPH_OK);
    CHECK(with_default.values("out") == std::vector<std::string>{"d,x", ",x"});
}

TEST_CASE("aggregate: a refused input is MPH_ERR_INVALID, the table unchanged, the aggregator's reason the error") {
    const TableSpec highs{.name = "t",
                          .value = "int64",
                          .aggregator = &mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "max")};
    AgentDriver driver(mephisto_plugin_entry, "merger", {}, {.sinks = {"out"}, .tables = {highs}});
    CHECK(driver.send(int64_value(7), "a") == MPH_OK);
    // Uncaught, MergeRefused becomes MPH_FATAL and the host's reason stays the callback's error text.
    CHECK(driver.send("abc", "a") == MPH_FATAL);
    CHECK(driver.last_error() == "table 't': aggregator 'max' refused the input: max: the input is 3 bytes, an int64 "
                                 "is 8");
    CHECK(driver.table_int64("t", "a") == 7);
    CHECK(driver.values("out").size() == 1);

    AgentDriver catching(mephisto_plugin_entry, "catching_merger", {}, {.sinks = {"out"}, .tables = {highs}});
    CHECK(catching.send("abc", "a") == MPH_OK);
    CHECK(catching.logged("refused MPH_ERR_INVALID: table 't': merge failed: MPH_ERR_INVALID (the aggregator "
                          "refused the input, or the table's value codec refused its result; the host's reason is "
                          "the callback's error text)"));
    CHECK(catching.last_error() == "table 't': aggregator 'max' refused the input: max: the input is 3 bytes, an "
                                   "int64 is 8");
    CHECK(catching.table("t").empty());
}

TEST_CASE("aggregate: a result the table's codec refuses is MPH_ERR_INVALID and changes nothing") {
    const mph_aggregator_descriptor* join = &mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "join");
    AgentDriver int64_table(mephisto_plugin_entry, "merger", {},
                            {.sinks = {"out"}, .tables = {{.name = "t", .value = "int64", .aggregator = join}}});
    CHECK(int64_table.send("x", "k") == MPH_FATAL); // 8 default bytes + ",x" is no int64
    CHECK(int64_table.last_error() == "table 't': aggregator 'join' produced a value the table's value codec 'int64' "
                                      "refuses");
    CHECK(int64_table.table("t").empty());

    // A plugin codec gives its reason.
    const mph_codec_descriptor* ascii = &mephisto::testing::plugin_codec(mephisto_plugin_entry, "ascii");
    AgentDriver ascii_table(mephisto_plugin_entry, "catching_merger", {},
                            {.sinks = {"out"}, .tables = {{.name = "t", .aggregator = join, .codec = ascii}}});
    CHECK(ascii_table.send("caf\xc3\xa9", "k") == MPH_OK);
    CHECK(ascii_table.last_error() ==
          "table 't': aggregator 'join' produced a value the table's value codec 'ascii' refuses: byte 12 is not ASCII");
    CHECK(ascii_table.logged("refused MPH_ERR_INVALID"));
    CHECK(ascii_table.send("cafe", "k") == MPH_OK);
    CHECK(ascii_table.values("out") == std::vector<std::string>{"<absent>+cafe"});

    // The plugin codec checks puts too.
    CHECK(ascii_table.send("\xff", "put") == MPH_OK);
    CHECK(ascii_table.logged("error MPH_ERR_INVALID: table 't': put failed: MPH_ERR_INVALID"));
    CHECK(ascii_table.send("fine", "put") == MPH_OK);
    CHECK(ascii_table.table("t").at("put") == "fine");
}

TEST_CASE("aggregate: merge on a table without an aggregator is an Error with MPH_ERR_UNSUPPORTED") {
    AgentDriver driver(mephisto_plugin_entry, "merger", {}, {.sinks = {"out"}, .tables = {{.name = "t"}}});
    CHECK(driver.send("x", "k") == MPH_FATAL);
    CHECK(driver.last_error() == "table 't': merge failed: MPH_ERR_UNSUPPORTED (the table has no aggregator: give it "
                                 "`aggregate: {plugin: P, name: NAME}` in YAML)");

    AgentDriver catching(mephisto_plugin_entry, "catching_merger", {}, {.tables = {{.name = "t"}}});
    CHECK(catching.send("x", "k") == MPH_OK);
    CHECK(catching.logged("error MPH_ERR_UNSUPPORTED: table 't': merge failed"));
    CHECK(catching.table("t").empty());
}

TEST_CASE("aggregate: the C table_merge returns the statuses mephisto.h documents") {
    const TableSpec highs{.name = "t",
                          .value = "int64",
                          .aggregator = &mephisto::testing::plugin_aggregator(mephisto_plugin_entry, "max")};
    AgentDriver driver(mephisto_plugin_entry, "catching_merger", {}, {.tables = {highs}});
    CHECK(driver.send(int64_value(4), "probe") == MPH_OK);
    for (const char* line : {"merge without out-params: MPH_OK", "merge a NULL input with a length: MPH_ERR_INVALID",
                             "merge with a NULL key and a length: MPH_ERR_INVALID",
                             "merge through a foreign handle: MPH_ERR_INVALID"}) {
        CAPTURE(line);
        CHECK(driver.logged(line));
    }
    CHECK(driver.table_int64("t", "p") == 4);
}

TEST_CASE("aggregate: Table::merge refuses a host older than ABI 1.2") {
    mph_host_api old_host{};
    old_host.struct_size = offsetof(mph_host_api, table_merge); // a 1.1 host table ends at table_iterate
    old_host.abi_major = 1;
    old_host.abi_minor = 1;
    old_host.table = [](mph_agent_ctx*, const char*) { return reinterpret_cast<mph_table*>(uintptr_t{16}); };
    const mephisto::Context ctx(nullptr, &old_host);
    const mephisto::Table table = ctx.table("t");
    CHECK_THROWS_WITH_AS(table.merge("k", "v"), "table 't': merge needs Mephisto ABI 1.2, the host offers 1.1",
                         mephisto::Error);
    try {
        table.merge("k", "v");
    } catch (const mephisto::Error& error) {
        CHECK(error.status() == MPH_ERR_UNSUPPORTED);
        CHECK(error.verdict() == MPH_FATAL);
    }
}

TEST_CASE("aggregate: a C++ definition gives its descriptor directly, for a table without a plugin") {
    const mph_aggregator_descriptor max = mephisto::aggregator<Max>("max").descriptor();
    const mph_codec_descriptor int64 = mephisto::codec<Int64Codec>("int64_be").descriptor();
    CHECK(max.struct_size == sizeof max);
    CHECK(std::string(max.name) == "max");
    CHECK(max.description == nullptr);
    AgentDriver driver(mephisto_plugin_entry, "merger", {},
                       {.sinks = {"out"},
                        .tables = {{.name = "t", .default_value = int64_value(10), .aggregator = &max, .codec = &int64}}});
    CHECK(driver.send(int64_value(3), "a") == MPH_OK);
    CHECK(driver.send(int64_value(12), "a") == MPH_OK);
    CHECK(decoded_values(driver, "out") == std::vector<int64_t>{10, 12});
}

TEST_CASE("aggregate: two codecs or two aggregators of one name are refused at entry") {
    mph_host_api api{};
    api.struct_size = sizeof api;
    char errbuf[256] = {};

    mephisto::detail::Plugin codecs("dup", "1", mephisto::codec<Int64Codec>("x"), mephisto::codec<AsciiCodec>("x"));
    CHECK(codecs.enter(1, 2, &api, errbuf, sizeof errbuf) == nullptr);
    CHECK(std::string(errbuf) == "plugin 'dup': two codecs are named 'x'");

    mephisto::detail::Plugin aggregators("dup", "1", mephisto::aggregator<Max>("x"), mephisto::aggregator<Join>("x"));
    CHECK(aggregators.enter(1, 2, &api, errbuf, sizeof errbuf) == nullptr);
    CHECK(std::string(errbuf) == "plugin 'dup': two aggregators are named 'x'");

    // Codecs and aggregators have names of their own; a plugin may provide no agent at all.
    mephisto::detail::Plugin only("only", "1", mephisto::codec<Int64Codec>("x"), mephisto::aggregator<Max>("x"));
    const mph_plugin_descriptor* descriptor = only.enter(1, 2, &api, errbuf, sizeof errbuf);
    REQUIRE(descriptor != nullptr);
    CHECK(descriptor->agent_count == 0);
    CHECK(descriptor->codec_count == 1);
    CHECK(descriptor->aggregator_count == 1);

    // Without codecs or aggregators, the arrays are NULL.
    mephisto::detail::Plugin agents_only("agents", "1", mephisto::agent<Merger>("m"));
    descriptor = agents_only.enter(1, 2, &api, errbuf, sizeof errbuf);
    REQUIRE(descriptor != nullptr);
    CHECK(descriptor->codecs == nullptr);
    CHECK(descriptor->codec_count == 0);
    CHECK(descriptor->aggregators == nullptr);
    CHECK(descriptor->aggregator_count == 0);
}

TEST_CASE("aggregate: the driver refuses codec and aggregator declarations the host would refuse") {
    mph_aggregator_descriptor no_merge{};
    no_merge.struct_size = sizeof no_merge;
    no_merge.name = "nothing";
    const std::string no_merge_error =
        "table 't' has an aggregator descriptor without merge (struct_size " + std::to_string(sizeof no_merge) + ")";
    CHECK_THROWS_WITH_AS(
        AgentDriver(mephisto_plugin_entry, "merger", {}, {.tables = {{.name = "t", .aggregator = &no_merge}}}),
        no_merge_error.c_str(), std::runtime_error);

    const mph_codec_descriptor* ascii = &mephisto::testing::plugin_codec(mephisto_plugin_entry, "ascii");
    CHECK_THROWS_WITH_AS(
        AgentDriver(mephisto_plugin_entry, "merger", {}, {.tables = {{.name = "t", .value = "int64", .codec = ascii}}}),
        "table 't' has both value codec 'int64' and a plugin codec; YAML gives a table one `value:`",
        std::runtime_error);
    CHECK_THROWS_WITH_AS(AgentDriver(mephisto_plugin_entry, "merger", {},
                                     {.tables = {{.name = "t", .default_value = "\xff", .codec = ascii}}}),
                         "table 't' has a default_value its codec 'ascii' refuses: byte 0 is not ASCII",
                         std::runtime_error);
}

TEST_CASE("aggregate: a plugin built against ABI 1.1 runs unchanged on the 1.2 driver") {
    AgentDriver driver(v11_entry, "count", {}, {.sinks = {"out"}, .tables = {{.name = "counts", .value = "int64"}}});
    CHECK(driver.plugin().abi_minor == 1);
    CHECK(driver.plugin().struct_size == offsetof(mph_plugin_descriptor, codecs));
    // Not read: beyond the plugin's struct_size.
    CHECK(driver.plugin().codecs == nullptr);
    CHECK(driver.plugin().codec_count == 0);
    CHECK(driver.plugin().aggregators == nullptr);
    CHECK(driver.plugin().aggregator_count == 0);
    CHECK(driver.send("a") == MPH_OK);
    CHECK(driver.send("b") == MPH_OK);
    CHECK(driver.send("a") == MPH_OK);
    CHECK(driver.values("out") == std::vector<std::string>{"1", "1", "2"});
    CHECK(driver.table_int64("counts", "a") == 2);

    CHECK(mephisto::testing::plugin_descriptor(v11_entry).aggregator_count == 0);
    CHECK_THROWS_WITH_AS(mephisto::testing::plugin_aggregator(v11_entry, "max"),
                         "plugin 'v11' has no aggregator 'max' (it has: none)", std::runtime_error);
    // The plugin kept the helper's host table; the driver's agent still runs through it.
    CHECK(driver.send("a") == MPH_OK);
    CHECK(driver.values("out").back() == "3");
}
