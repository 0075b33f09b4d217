// Tables (ABI 1.1): mephisto::Table in the C++ wrapper, and the in-memory tables of the test driver.
// The agents below are small on purpose: each one exercises one part of the contract in mephisto.h.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using mephisto::testing::AgentDriver;
using mephisto::testing::TableSpec;

namespace {

// Faust's word count: `counts[word] += 1`, one host call per word, and the new count emitted keyed by the word.
struct WordCount {
    explicit WordCount(mephisto::Context& ctx) : counts(ctx.table("counts")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        const std::string_view text = event.value();
        size_t start = 0;
        while (start < text.size()) {
            const size_t end = std::min(text.find(' ', start), text.size());
            if (end > start) {
                const std::string_view word = text.substr(start, end - start);
                ctx.emit(std::to_string(counts.add(word)), word);
            }
            start = end + 1;
        }
    }

    mephisto::Table counts;
};

// The last value seen per key: put on a value, erase on a tombstone, and the previous value emitted.
struct LastValue {
    explicit LastValue(mephisto::Context& ctx) : last(ctx.table("last")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        const std::optional<std::string_view> key = event.key();
        if (!key) throw mephisto::Error("an event without a key");
        const std::optional<std::string_view> previous = last.get(*key);
        if (event.is_tombstone()) {
            last.erase(*key);
        } else {
            last.put(*key, event.value());
        }
        // `previous` is used after the put of the same key on purpose: a get's view lasts until the callback
        // returns (mephisto.h, convention 6), whatever is written meanwhile.
        ctx.emit(previous ? *previous : "<none>", *key);
    }

    mephisto::Table last;
};

// Keyed events are stored; the value of an event without a key is a command about the whole table.
struct Lister {
    explicit Lister(mephisto::Context& ctx) : items(ctx.table("items")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        if (const std::optional<std::string_view> key = event.key()) {
            items.put(*key, event.value());
            return;
        }
        const std::string_view command = event.value();
        std::string listed;
        if (command == "list") {
            items.for_each([&](std::string_view key, std::string_view value) {
                listed += std::string(key) + "=" + std::string(value) + ";";
            });
        } else if (command == "first two") {
            int left = 2;
            items.for_each([&](std::string_view key, std::string_view) {
                listed += std::string(key) + ";";
                return --left > 0;
            });
        } else if (command == "write while listing") {
            items.for_each([&](std::string_view key, std::string_view) {
                items.put(std::string(key) + "+", "new"); // not seen by this iteration
                listed += std::string(key) + ";";
            });
        } else if (command == "throw while listing") {
            items.for_each([&](std::string_view key, std::string_view) {
                ctx.log_info("visiting ", key);
                if (key == "b") throw std::runtime_error("cannot list '" + std::string(key) + "'");
            });
        }
        ctx.emit(listed);
    }

    mephisto::Table items;
};

// Every codec and the mistakes an agent can make with one; the event value is the command.
struct Misuse {
    explicit Misuse(mephisto::Context& ctx)
        : names(ctx.table("names")), counts(ctx.table("counts")), scores(ctx.table("scores")), docs(ctx.table("docs")) {
    }

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        const std::string_view command = event.value();
        if (command == "add on raw") names.add("x");
        if (command == "short int64") counts.put("x", "abc");
        if (command == "bad json") docs.put("x", "{\"open\": ");
        if (command == "good json") docs.put("x", " {\"a\": [1, -2.5e3, true, null, \"\\u00e9\"]} ");
        if (command == "int64 of raw") {
            names.put("x", "abc");
            ctx.log_info("int64 of raw: ", counts.get_int64("x").value_or(-1), names.get_int64("x").value_or(-1));
        }
        if (command == "doubles") {
            ctx.log_info("default score ", scores.get_double("nobody").value_or(-1));
            scores.put_double("alice", 2.5);
            ctx.log_info("alice ", scores.get_double("alice").value_or(-1));
        }
        if (command == "int64") {
            counts.put_int64("big", 1'000'000'000'000);
            ctx.log_info("big+1 ", counts.add("big"), " absent ", counts.get_int64("absent").value_or(-1), " minus ",
                         counts.add("negative", -3));
        }
        if (command == "raw absent") ctx.log_info("raw absent: ", names.get("nobody").has_value());
    }

    mephisto::Table names, counts, scores, docs;
};

// Counts in on_event, reads its table in on_timer: a timer instance has no shard.
struct TimerUser {
    explicit TimerUser(mephisto::Context& ctx) : counts(ctx.table("counts")) {}

    void on_event(mephisto::Context&, const mephisto::Event& event) { counts.add(event.value()); }
    void on_timer(mephisto::Context& ctx, std::string_view, int64_t) {
        ctx.log_info("partition ", ctx.partition(), ": ", counts.get_int64("x").value_or(-1));
    }

    mephisto::Table counts;
};

// Calls the C table functions directly, to see their statuses without the wrapper, and keeps its ctx.
struct ProbeCapture {
    const mph_host_api* api = nullptr;
    mph_agent_ctx* ctx = nullptr;
    mph_table* table = nullptr;
} probe;

struct Probe {
    explicit Probe(mephisto::Context& ctx) : items(ctx.table("items")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event&) {
        const mph_host_api& api = ctx.api();
        mph_agent_ctx* raw = ctx.raw();
        mph_table* table = items.raw();
        const void* value = nullptr;
        size_t value_len = 0;
        auto log = [&](const char* what, mph_status status) {
            ctx.log_info(what, ": ", mephisto::status_name(status));
        };
        ctx.log_info("undeclared table is NULL: ", api.table(raw, "nope") == nullptr);
        log("get absent", api.table_get(raw, table, "k", 1, &value, &value_len));
        log("get with a NULL key and a length", api.table_get(raw, table, nullptr, 1, &value, &value_len));
        log("get without out-params", api.table_get(raw, table, "k", 1, nullptr, nullptr));
        log("put through a foreign handle", api.table_put(raw, reinterpret_cast<mph_table*>(&value), "k", 1, "v", 1));
        log("put an empty key", api.table_put(raw, table, nullptr, 0, "v", 1));
        const mph_status got = api.table_get(raw, table, nullptr, 0, &value, &value_len);
        ctx.log_info("get the empty key: ", mephisto::status_name(got), " ",
                     std::string_view(static_cast<const char*>(value), value_len));
        log("iterate without a visitor", api.table_iterate(raw, table, nullptr, nullptr));
        const mph_table_visit_fn stop = [](void*, const void*, size_t, const void*, size_t) -> mph_status {
            return MPH_RETRY;
        };
        log("iterate returns the visit's stop", api.table_iterate(raw, table, stop, nullptr));
        log("add with a NULL result", api.table_add(raw, table, "k", 1, 1, nullptr));
        probe = {&api, raw, table};
    }

    mephisto::Table items;
};

// Resolves a table its YAML does not give it.
struct Undeclared {
    explicit Undeclared(mephisto::Context& ctx) : missing(ctx.table("missing")) {}
    void on_event(mephisto::Context&, const mephisto::Event&) {}
    mephisto::Table missing;
};

// ---------------------------------------------------------------------------------------------------------
// A plugin written against ABI 1.0, in the C style: it declares 1.0, uses only 1.0 members and knows nothing
// of tables. Not exported (its own entry name), so it coexists with this file's MEPHISTO_PLUGIN.
// ---------------------------------------------------------------------------------------------------------
const mph_host_api* legacy_host = nullptr;

mph_status legacy_on_event(void*, mph_agent_ctx* ctx, const mph_event* event) {
    const char* prefix = "seen: ";
    std::string value = prefix + std::string(static_cast<const char*>(event->value), event->value_len);
    mph_message message{};
    message.struct_size = offsetof(mph_message, timestamp_ms) + sizeof(int64_t); // the 1.0 mph_message
    message.value = value.data();
    message.value_len = value.size();
    message.partition = MPH_PARTITION_ANY;
    return legacy_host->emit(ctx, &message);
}

const mph_agent_descriptor legacy_agent = [] {
    mph_agent_descriptor agent{};
    agent.struct_size = sizeof agent;
    agent.name = "legacy";
    agent.on_event = legacy_on_event;
    return agent;
}();
const mph_agent_descriptor* const legacy_agents[] = {&legacy_agent};

const mph_plugin_descriptor legacy_plugin = [] {
    mph_plugin_descriptor plugin{};
    plugin.struct_size = sizeof plugin;
    plugin.abi_major = 1;
    plugin.abi_minor = 0;
    plugin.name = "legacy";
    plugin.version = "1.0.0";
    plugin.agents = legacy_agents;
    plugin.agent_count = 1;
    return plugin;
}();

const mph_plugin_descriptor* legacy_entry(uint32_t major, uint32_t, const mph_host_api* api, char* errbuf,
                                          size_t errbuf_size) {
    // What a 1.0 plugin checks: the major and the 1.0 members, nothing newer.
    if (major != 1 || !MPH_HAS_MEMBER(mph_host_api, api, agent_name)) {
        std::snprintf(errbuf, errbuf_size, "needs ABI 1.x");
        return nullptr;
    }
    legacy_host = api;
    return &legacy_plugin;
}

const std::vector<TableSpec> misuse_tables = {
    {.name = "names"},
    {.name = "counts", .value = "int64"},
    {.name = "scores", .value = "double", .default_value = mephisto::testing::double_value(0.5)},
    {.name = "docs", .value = "json"},
};

} // namespace

MEPHISTO_PLUGIN("table_test", "0.1.0", mephisto::description("agents that use tables"),
                mephisto::agent<WordCount>("word_count", "counts words"), mephisto::agent<LastValue>("last_value"),
                mephisto::agent<Lister>("lister"), mephisto::agent<Misuse>("misuse"),
                mephisto::agent<TimerUser>("timer_user"), mephisto::agent<Undeclared>("undeclared"),
                mephisto::agent<Probe>("probe"));

TEST_CASE("tables: a word counter adds per word, and its counts are host state that survives a restart") {
    AgentDriver driver(mephisto_plugin_entry, "word_count", {},
                       {.sinks = {"counts"}, .tables = {{.name = "counts", .value = "int64"}}, .partition = 3});
    REQUIRE(driver.running());
    CHECK(driver.send("the cat and the hat") == MPH_OK);
    CHECK(driver.values("counts") == std::vector<std::string>{"1", "1", "1", "2", "1"});
    CHECK(driver.table_int64("counts", "the") == 2);
    CHECK(driver.table_int64("counts", "cat") == 1);
    CHECK(driver.table_int64("counts", "dog") == std::nullopt); // inspection does not apply the default
    CHECK(driver.table("counts").size() == 4);
    CHECK(driver.table("counts").at("and") == mephisto::testing::int64_value(1)); // stored big-endian

    CHECK(driver.restart() == MPH_OK); // the supervisor's restart: the table is recovered, not reset
    driver.clear();
    CHECK(driver.send("the end") == MPH_OK);
    CHECK(driver.values("counts") == std::vector<std::string>{"3", "1"});
}

TEST_CASE("tables: an int64 default is where add starts") {
    AgentDriver driver(
        mephisto_plugin_entry, "word_count", {},
        {.sinks = {"counts"},
         .tables = {{.name = "counts", .value = "int64", .default_value = mephisto::testing::int64_value(100)}}});
    CHECK(driver.send("a a b") == MPH_OK);
    CHECK(driver.values("counts") == std::vector<std::string>{"101", "102", "101"});
}

TEST_CASE("tables: a last-value table puts, gets and erases, and get's view outlives a put of its key") {
    AgentDriver driver(mephisto_plugin_entry, "last_value", {}, {.sinks = {"previous"}, .tables = {{.name = "last"}}});
    CHECK(driver.send("one", "k") == MPH_OK);
    CHECK(driver.send("two", "k") == MPH_OK);
    CHECK(driver.send(std::string("\0bin", 4), "other") == MPH_OK);
    CHECK(driver.table("last") == std::map<std::string, std::string>{{"k", "two"}, {"other", std::string("\0bin", 4)}});
    CHECK(driver.send(std::nullopt, "k") == MPH_OK); // a tombstone erases
    CHECK(driver.send("three", "k") == MPH_OK);
    CHECK(driver.values("previous") == std::vector<std::string>{"<none>", "one", "<none>", "two", "<none>"});
    CHECK(driver.table("last").at("k") == "three");

    CHECK(driver.send(std::nullopt, "never written") == MPH_OK); // erasing an absent key is fine
    CHECK(driver.send("x") == MPH_FATAL);
    CHECK(driver.last_error() == "an event without a key");
}

TEST_CASE("tables: a raw table with a default returns it for absent keys") {
    AgentDriver driver(mephisto_plugin_entry, "last_value", {},
                       {.sinks = {"previous"}, .tables = {{.name = "last", .default_value = "unset"}}});
    CHECK(driver.send("one", "k") == MPH_OK);
    CHECK(driver.send("two", "k") == MPH_OK);
    CHECK(driver.values("previous") == std::vector<std::string>{"unset", "one"});
}

TEST_CASE("tables: for_each visits in key byte order, can stop, and sees a snapshot") {
    AgentDriver driver(mephisto_plugin_entry, "lister", {}, {.sinks = {"out"}, .tables = {{.name = "items"}}});
    // Byte order, not locale order: "B" < "a" < "aa" < "b" < "\xff" (bytes compare unsigned).
    for (const char* key : {"b", "\xff", "aa", "B", "a"})
        CHECK(driver.send(std::string("v") + key, key) == MPH_OK);
    driver.table("items")["c"] = "seeded"; // as if recovered from the changelog

    CHECK(driver.send("list") == MPH_OK);
    CHECK(driver.send("first two") == MPH_OK);
    CHECK(driver.values("out") == std::vector<std::string>{"B=vB;a=va;aa=vaa;b=vb;c=seeded;\xff=v\xff;", "B;a;"});

    driver.clear();
    CHECK(driver.send("write while listing") == MPH_OK);
    CHECK(driver.values("out") == std::vector<std::string>{"B;a;aa;b;c;\xff;"}); // the new keys were not visited
    CHECK(driver.table("items").size() == 12);
    CHECK(driver.table("items").at("a+") == "new");
}

TEST_CASE("tables: an exception in the visitor stops the iteration and becomes the callback's FATAL") {
    AgentDriver driver(mephisto_plugin_entry, "lister", {}, {.sinks = {"out"}, .tables = {{.name = "items"}}});
    for (const char* key : {"a", "b", "c"})
        CHECK(driver.send("v", key) == MPH_OK);
    CHECK(driver.send("throw while listing") == MPH_FATAL);
    CHECK(driver.last_error() == "cannot list 'b'");
    CHECK(driver.logged("visiting a"));
    CHECK(driver.logged("visiting b"));
    CHECK_FALSE(driver.logged("visiting c")); // stopped at the throw
    CHECK(driver.outputs().empty());
    CHECK(driver.send("list") == MPH_OK); // the instance is still usable
}

TEST_CASE("tables: codec mistakes are mephisto::Error with the host's status, FATAL with a clear message") {
    AgentDriver driver(mephisto_plugin_entry, "misuse", {}, {.tables = misuse_tables});
    REQUIRE(driver.running());

    CHECK(driver.send("add on raw") == MPH_FATAL);
    CHECK(driver.last_error() ==
          "table 'names': add failed: MPH_ERR_UNSUPPORTED (add needs a table whose value codec is int64)");

    CHECK(driver.send("short int64") == MPH_FATAL);
    CHECK(driver.last_error() == "table 'counts': put failed: MPH_ERR_INVALID (the value is not valid for the "
                                 "table's value codec, or an argument is invalid)");
    CHECK(driver.table("counts").empty());

    CHECK(driver.send("bad json") == MPH_FATAL);
    CHECK(driver.last_error().starts_with("table 'docs': put failed: MPH_ERR_INVALID"));
    CHECK(driver.send("good json") == MPH_OK);
    CHECK(driver.table("docs").size() == 1);

    CHECK(driver.send("int64 of raw") == MPH_FATAL);
    CHECK(driver.last_error() ==
          "table 'names': the value is 3 bytes, an int64 is 8: is the table's value codec int64?");

    CHECK(driver.send("raw absent") == MPH_OK);
    CHECK(driver.logged("raw absent: 0")); // no default: get gives nullopt
}

TEST_CASE("tables: int64 and double helpers encode big-endian, and declared defaults apply") {
    AgentDriver driver(mephisto_plugin_entry, "misuse", {}, {.tables = misuse_tables});
    CHECK(driver.send("int64") == MPH_OK);
    // An int64 table without a declared default starts at 0, as the host's YAML loader makes it.
    CHECK(driver.logged("big+1 1000000000001 absent 0 minus -3"));
    CHECK(driver.table("counts").at("big") == std::string("\x00\x00\x00\xe8\xd4\xa5\x10\x01", 8));
    CHECK(driver.table_int64("counts", "negative") == -3);

    CHECK(driver.send("doubles") == MPH_OK);
    CHECK(driver.logged("default score 0.5"));
    CHECK(driver.logged("alice 2.5"));
    CHECK(driver.table("scores").at("alice") == std::string("\x40\x04\x00\x00\x00\x00\x00\x00", 8));
    CHECK(driver.table_double("scores", "alice") == 2.5);
}

TEST_CASE("tables: used from on_timer, a table call is MPH_ERR_STATE, surfaced as FATAL with a clear message") {
    AgentDriver driver(mephisto_plugin_entry, "timer_user", {},
                       {.tables = {{.name = "counts", .value = "int64"}}, .partition = 1});
    CHECK(driver.send("x") == MPH_OK);
    CHECK(driver.fire_timer("report", 1000) == MPH_FATAL); // the timer instance resolved the table in create
    CHECK(driver.last_error() == "table 'counts': get failed: MPH_ERR_STATE (tables are usable only in callbacks of "
                                 "a partition instance, not from a timer instance (partition -1))");
    CHECK_FALSE(driver.logged("partition -1"));
    CHECK(driver.table_int64("counts", "x") == 1);
}

TEST_CASE("tables: a table the agent does not declare fails create with a clear message") {
    AgentDriver driver(mephisto_plugin_entry, "undeclared", {},
                       {.tables = {{.name = "present"}}, .agent_name = "undeclared_in_yaml"});
    CHECK_FALSE(driver.running());
    CHECK(driver.create_status() == MPH_FATAL);
    CHECK(
        driver.last_error() ==
        "table 'missing' is not declared for agent 'undeclared_in_yaml': list it under the agent's `tables:` in YAML");
}

TEST_CASE("tables: the driver refuses table declarations the host's YAML loader would refuse") {
    CHECK_THROWS_WITH_AS(AgentDriver(mephisto_plugin_entry, "lister", {}, {.tables = {{.name = "t", .value = "xml"}}}),
                         "table 't' has value codec 'xml'; expected raw, bytes, int64, double or json",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(
        AgentDriver(mephisto_plugin_entry, "lister", {}, {.tables = {{.name = "items"}, {.name = "items"}}}),
        "table 'items' is declared twice in DriverOptions::tables", std::runtime_error);
    CHECK_THROWS_WITH_AS(AgentDriver(mephisto_plugin_entry, "lister", {},
                                     {.tables = {{.name = "t", .value = "int64", .default_value = "5"}}}),
                         "table 't' has a default_value that is not a valid int64 value (int64 and double: 8 "
                         "encoded bytes, see int64_value/double_value)",
                         std::runtime_error);
    CHECK_THROWS_AS(AgentDriver(mephisto_plugin_entry, "lister", {},
                                {.tables = {{.name = "t", .value = "json", .default_value = "{nope}"}}}),
                    std::runtime_error);

    AgentDriver driver(mephisto_plugin_entry, "lister", {}, {.tables = {{.name = "items"}}});
    CHECK_THROWS_WITH_AS(driver.table("other"), "table 'other' is not in DriverOptions::tables", std::logic_error);
    driver.table("items")["n"] = "abc";
    CHECK_THROWS_WITH_AS(driver.table_int64("items", "n"), "table 'items' holds a 3-byte value; an int64 is 8 bytes",
                         std::logic_error);
}

TEST_CASE("tables: the driver's JSON check accepts RFC 8259 values and refuses the rest") {
    using mephisto::testing::detail::JsonCheck;
    for (const char* good : {"{}", "[]", "0", "-0.5e+10", "\"\"", "true", "null", " [1, {\"a\": \"\\u00e9\\n\"}] ",
                             "\"\xc3\xa9\"", "1E5"}) {
        CAPTURE(good);
        CHECK(JsonCheck::valid(good));
    }
    for (const char* bad :
         {"",    " ",     "{",   "[1,]",   "{\"a\" 1}", "01",        "1.",    ".5",       "+1",
          "tru", "nul",   "'a'", "\"\t\"", "\"\\x\"",   "\"\\u12\"", "{} {}", "\"\xc3\"", "\"\xed\xa0\x80\"",
          "NaN", "{1: 2}"}) {
        CAPTURE(bad);
        CHECK_FALSE(JsonCheck::valid(bad));
    }
    CHECK(JsonCheck::valid(std::string(512, '[') + std::string(512, ']')));
    CHECK_FALSE(JsonCheck::valid(std::string(100'000, '[') + std::string(100'000, ']'))); // refused, no stack overflow
}

TEST_CASE("tables: the C table functions return the statuses mephisto.h documents") {
    AgentDriver driver(mephisto_plugin_entry, "probe", {}, {.tables = {{.name = "items"}}});
    CHECK(driver.send("x") == MPH_OK);
    for (const char* line :
         {"undeclared table is NULL: 1", "get absent: MPH_ERR_NOT_FOUND",
          "get with a NULL key and a length: MPH_ERR_INVALID", "get without out-params: MPH_ERR_INVALID",
          "put through a foreign handle: MPH_ERR_INVALID", "put an empty key: MPH_OK", "get the empty key: MPH_OK v",
          "iterate without a visitor: MPH_ERR_INVALID", "iterate returns the visit's stop: MPH_RETRY",
          "add with a NULL result: MPH_ERR_UNSUPPORTED"}) {
        CAPTURE(line);
        CHECK(driver.logged(line));
    }
    // A ctx kept past its callback: nothing resolves, every call is MPH_ERR_STATE.
    REQUIRE(probe.api != nullptr);
    const void* value = nullptr;
    size_t value_len = 0;
    CHECK(probe.api->table(probe.ctx, "items") == nullptr);
    CHECK(probe.api->table_get(probe.ctx, probe.table, "", 0, &value, &value_len) == MPH_ERR_STATE);
    CHECK(probe.api->table_put(probe.ctx, probe.table, "k", 1, "v", 1) == MPH_ERR_STATE);
    CHECK(probe.api->table_delete(probe.ctx, probe.table, "", 0) == MPH_ERR_STATE);
    CHECK(probe.api->table_add(probe.ctx, probe.table, "k", 1, 1, nullptr) == MPH_ERR_STATE);
    CHECK(driver.table("items") == std::map<std::string, std::string>{{"", "v"}});
}

TEST_CASE("tables: Context::table refuses a host older than ABI 1.1") {
    mph_host_api old_host{};
    old_host.struct_size = offsetof(mph_host_api, table); // a 1.0 host table ends at agent_name
    old_host.abi_major = 1;
    old_host.abi_minor = 0;
    const mephisto::Context ctx(nullptr, &old_host);
    CHECK_THROWS_WITH_AS(ctx.table("counts"), "table 'counts': the host offers Mephisto ABI 1.0, tables need ABI 1.1",
                         mephisto::Error);
    try {
        ctx.table("counts");
    } catch (const mephisto::Error& error) {
        CHECK(error.status() == MPH_ERR_UNSUPPORTED);
        CHECK(error.verdict() == MPH_FATAL);
    }
}

TEST_CASE("tables: a plugin built against ABI 1.0 runs unchanged on the 1.1 driver, tables declared or not") {
    AgentDriver driver(legacy_entry, "legacy", {},
                       {.sinks = {"out"}, .tables = {{.name = "counts", .value = "int64"}}});
    CHECK(driver.plugin().abi_minor == 0);
    CHECK(driver.send("hello") == MPH_OK);
    CHECK(driver.values("out") == std::vector<std::string>{"seen: hello"});
    CHECK(driver.table("counts").empty());

    AgentDriver without_tables(legacy_entry, "legacy", {}, {.sinks = {"out"}});
    CHECK(without_tables.send("again") == MPH_OK);
    CHECK(without_tables.values("out") == std::vector<std::string>{"seen: again"});
}
