// The test driver (testing.hpp) acting as a host: descriptor checks, the host table, lifecycle order.
// The plugins here are hand-written descriptors, so each test controls exactly what the driver sees.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

using mephisto::testing::AgentDriver;

namespace {

// What the fake plugin saw, in order, across all callbacks.
std::vector<std::string> calls;
const mph_host_api* host = nullptr;
mph_agent_ctx* kept_ctx = nullptr; // a ctx kept past its callback, which the host must refuse

void host_log(mph_agent_ctx* ctx, const std::string& text) { host->log(ctx, MPH_LOG_WARN, text.data(), text.size()); }

mph_status fake_create(mph_agent_ctx* ctx, void** instance) {
    calls.push_back("create " + std::to_string(host->partition(ctx)));
    *instance = &calls;
    return MPH_OK;
}
void fake_destroy(void* instance) {
    calls.push_back(instance == &calls ? "destroy" : "destroy with a foreign instance");
    host_log(nullptr, "destroyed"); // plugin-level: no ctx
}
mph_status fake_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* event) {
    calls.push_back(std::string("event ") + event->topic + " " + std::to_string(event->offset) +
                    (instance == &calls ? "" : " with a foreign instance"));
    kept_ctx = ctx;
    const std::string_view value(static_cast<const char*>(event->value), event->value_len);
    if (value == "emit partition 4") {
        mph_message message{};
        message.struct_size = sizeof message;
        message.value = "x";
        message.value_len = 1;
        message.partition = 4;
        return host->emit(ctx, &message) == MPH_ERR_INVALID ? MPH_OK : MPH_FATAL;
    }
    if (value == "malformed messages") {
        mph_message message{};
        message.struct_size = sizeof message;
        message.header_count = 1; // but no headers array
        const bool all_invalid = host->emit(ctx, nullptr) == MPH_ERR_INVALID &&
                                 host->emit(ctx, &message) == MPH_ERR_INVALID &&
                                 host->send(ctx, "t", 0, &message) == MPH_ERR_INVALID &&
                                 host->send(ctx, nullptr, 1, &message) == MPH_ERR_INVALID;
        return all_invalid ? MPH_OK : MPH_FATAL;
    }
    if (value == "short message") {
        // A plugin built against a (hypothetical) header whose mph_message ended at value_len.
        mph_message message{};
        message.struct_size = offsetof(mph_message, value_len) + sizeof(size_t);
        message.value = "short";
        message.value_len = 5;
        message.partition = 3;     // not covered by struct_size: the host must not read it
        message.timestamp_ms = 55; // likewise
        return host->send(ctx, "t", 1, &message);
    }
    return MPH_OK;
}
mph_status fake_on_assigned(void*, mph_agent_ctx*, int32_t partition) {
    calls.push_back("assigned " + std::to_string(partition));
    return MPH_OK;
}
mph_status fake_on_revoked(void*, mph_agent_ctx*, int32_t partition) {
    calls.push_back("revoked " + std::to_string(partition));
    return MPH_OK;
}
mph_status fake_init(char*, size_t) {
    calls.push_back("init");
    return MPH_OK;
}
void fake_fini() { calls.push_back("fini"); }

mph_agent_descriptor make_agent() {
    mph_agent_descriptor agent{};
    agent.struct_size = sizeof agent;
    agent.name = "echo";
    agent.create = fake_create;
    agent.destroy = fake_destroy;
    agent.on_event = fake_on_event;
    agent.on_assigned = fake_on_assigned;
    agent.on_revoked = fake_on_revoked;
    return agent;
}

mph_agent_descriptor agent = make_agent();
const mph_agent_descriptor* agent_list[] = {&agent};

mph_plugin_descriptor make_plugin() {
    mph_plugin_descriptor plugin{};
    plugin.struct_size = sizeof plugin;
    plugin.abi_major = MPH_ABI_VERSION_MAJOR;
    plugin.abi_minor = MPH_ABI_VERSION_MINOR;
    plugin.name = "fake";
    plugin.version = "1";
    plugin.agents = agent_list;
    plugin.agent_count = 1;
    plugin.init = fake_init;
    plugin.fini = fake_fini;
    return plugin;
}

// The descriptor the next entry call returns; each test case edits it.
mph_plugin_descriptor plugin = make_plugin();
std::string refusal; // when non-empty, the entry returns NULL with this text

const mph_plugin_descriptor* fake_entry(uint32_t major, uint32_t minor, const mph_host_api* api, char* errbuf,
                                        size_t errbuf_size) {
    calls.push_back("entry " + std::to_string(major) + "." + std::to_string(minor));
    host = api;
    if (!refusal.empty()) {
        std::snprintf(errbuf, errbuf_size, "%s", refusal.c_str());
        return nullptr;
    }
    return &plugin;
}

void reset() {
    calls.clear();
    agent = make_agent();
    plugin = make_plugin();
    refusal.clear();
    kept_ctx = nullptr;
}

std::string load_error(const std::string& agent_name = "echo") {
    try {
        AgentDriver driver(fake_entry, agent_name);
    } catch (const std::runtime_error& error) {
        return error.what();
    }
    return "(loaded)";
}

// The version this SDK's header declares and the driver offers, as "1.1".
std::string abi_version(uint32_t major = MPH_ABI_VERSION_MAJOR, uint32_t minor = MPH_ABI_VERSION_MINOR) {
    return std::to_string(major) + "." + std::to_string(minor);
}

} // namespace

TEST_CASE("driver: the lifecycle runs in host order: entry, init, create, assigned ... revoked, destroy, fini") {
    reset();
    {
        AgentDriver driver(fake_entry, "echo", {}, {.partition = 2, .from = "in"});
        CHECK(driver.send("a") == MPH_OK);
        CHECK(driver.send(mephisto::testing::TestEvent{.value = "b", .offset = 40}) == MPH_OK);
        CHECK(driver.send("c") == MPH_OK);
    }
    CHECK(calls == std::vector<std::string>{"entry " + abi_version(), "init", "create 2", "assigned 2", "event in 0",
                                            "event in 40", "event in 41", "revoked 2", "destroy", "fini"});
}

TEST_CASE("driver: the host table is a complete 1.2 table") {
    reset();
    AgentDriver driver(fake_entry, "echo");
    REQUIRE(host != nullptr);
    CHECK(host->struct_size == sizeof(mph_host_api));
    CHECK(host->abi_major == MPH_ABI_VERSION_MAJOR);
    CHECK(host->abi_minor == MPH_ABI_VERSION_MINOR);
    CHECK(MPH_HAS_MEMBER(mph_host_api, host, agent_name));
    CHECK((host->log != nullptr));
    CHECK((host->set_error != nullptr));
    CHECK((host->param != nullptr));
    CHECK((host->emit != nullptr));
    CHECK((host->send != nullptr));
    CHECK((host->forward != nullptr));
    CHECK((host->partition != nullptr));
    CHECK((host->agent_name != nullptr));
    CHECK(MPH_HAS_MEMBER(mph_host_api, host, table_iterate));
    CHECK((host->table != nullptr));
    CHECK((host->table_get != nullptr));
    CHECK((host->table_put != nullptr));
    CHECK((host->table_delete != nullptr));
    CHECK((host->table_add != nullptr));
    CHECK((host->table_iterate != nullptr));
    CHECK(MPH_HAS_MEMBER(mph_host_api, host, table_merge));
    CHECK((host->table_merge != nullptr));
}

TEST_CASE("driver: refuses plugins the way the host does, with a clear message") {
    reset();
    refusal = "this plugin refuses to load";
    CHECK(load_error() == "plugin refused to load: this plugin refuses to load");

    reset();
    plugin.abi_major = 2;
    CHECK(load_error() == "plugin was built for ABI " + abi_version(2) + ", the host has ABI " + abi_version() +
                              " (major versions differ)");

    reset();
    plugin.abi_minor = MPH_ABI_VERSION_MINOR + 1;
    CHECK(load_error() == "plugin was built for ABI " + abi_version(1, MPH_ABI_VERSION_MINOR + 1) +
                              ", newer than the host's ABI " + abi_version());

    reset();
    plugin.struct_size = offsetof(mph_plugin_descriptor, name);
    CHECK(load_error() == "plugin descriptor struct_size " + std::to_string(offsetof(mph_plugin_descriptor, name)) +
                              " is smaller than the ABI 1.0 descriptor (" +
                              std::to_string(offsetof(mph_plugin_descriptor, fini) + sizeof plugin.fini) + " bytes)");

    reset();
    CHECK(load_error("nope") == "plugin 'fake' has no agent 'nope' (it has: echo)");

    reset();
    agent.on_event = nullptr;
    CHECK(load_error() == "plugin 'fake' agent 'echo' sets none of on_event, on_batch, on_timer");

    reset();
    plugin.init = [](char* errbuf, size_t size) -> mph_status {
        std::snprintf(errbuf, size, "database unreachable");
        return MPH_FATAL;
    };
    CHECK(load_error() == "plugin 'fake' init failed with MPH_FATAL: database unreachable");
}

TEST_CASE("driver: reads only the agent members the plugin's struct_size covers") {
    reset();
    agent.struct_size = offsetof(mph_agent_descriptor, on_assigned); // an agent from before on_assigned existed
    {
        AgentDriver driver(fake_entry, "echo");
        CHECK((driver.agent().on_event != nullptr));
        CHECK((driver.agent().on_assigned == nullptr));
        CHECK((driver.agent().on_revoked == nullptr));
    }
    CHECK(calls == std::vector<std::string>{"entry " + abi_version(), "init", "create 0", "destroy", "fini"});
}

namespace {

mph_status accept_all(const void*, size_t, char*, size_t) { return MPH_OK; }
mph_status keep_input(const void*, size_t, const void* input, size_t input_len, mph_write_fn write, void* sink, char*,
                      size_t) {
    write(sink, input, input_len);
    return MPH_OK;
}

mph_codec_descriptor make_codec(const char* name) {
    mph_codec_descriptor codec{};
    codec.struct_size = sizeof codec;
    codec.name = name;
    codec.validate = accept_all;
    return codec;
}

mph_aggregator_descriptor make_aggregator(const char* name) {
    mph_aggregator_descriptor aggregator{};
    aggregator.struct_size = sizeof aggregator;
    aggregator.name = name;
    aggregator.merge = keep_input;
    return aggregator;
}

} // namespace

TEST_CASE("driver: checks a plugin's codecs and aggregators the way the host's loader does") {
    mph_codec_descriptor codecs[2] = {make_codec("c"), make_codec("d")};
    const mph_codec_descriptor* codec_list[2] = {&codecs[0], &codecs[1]};
    mph_aggregator_descriptor aggregators[1] = {make_aggregator("last")};
    const mph_aggregator_descriptor* aggregator_list[1] = {&aggregators[0]};
    const auto provide = [&]() {
        plugin.codecs = codec_list;
        plugin.codec_count = 2;
        plugin.aggregators = aggregator_list;
        plugin.aggregator_count = 1;
    };

    reset();
    provide();
    {
        AgentDriver driver(fake_entry, "echo");
        CHECK(driver.plugin().codec_count == 2);
        CHECK(driver.plugin().codecs[1] == &codecs[1]);
        CHECK(driver.plugin().aggregator_count == 1);
    }
    CHECK(&mephisto::testing::plugin_aggregator(fake_entry, "last") == &aggregators[0]);
    CHECK(&mephisto::testing::plugin_codec(fake_entry, "d") == &codecs[1]);

    reset();
    provide();
    plugin.codecs = nullptr;
    CHECK(load_error() == "plugin 'fake' descriptor lists codecs but gives no array");

    reset();
    provide();
    plugin.aggregators = nullptr;
    CHECK(load_error() == "plugin 'fake' descriptor lists aggregators but gives no array");

    reset();
    provide();
    codecs[1].struct_size = offsetof(mph_codec_descriptor, to_json);
    CHECK(load_error() == "plugin 'fake' codec #1 is NULL or shorter than ABI 1.2's " +
                              std::to_string(sizeof(mph_codec_descriptor)) + " bytes");
    codecs[1] = make_codec("c");
    CHECK(load_error() == "plugin 'fake' codec 'c' is declared twice");
    codecs[1] = make_codec("");
    CHECK(load_error() == "plugin 'fake' codec #1 has no name");
    codecs[1] = make_codec("d");

    aggregators[0].merge = nullptr;
    CHECK(load_error() == "plugin 'fake' aggregator 'last' has no merge");
    aggregator_list[0] = nullptr;
    const std::string null_aggregator = "plugin 'fake' aggregator #0 is NULL or shorter than ABI 1.2's " +
                                        std::to_string(sizeof(mph_aggregator_descriptor)) + " bytes";
    CHECK(load_error() == null_aggregator);
    CHECK_THROWS_WITH_AS(mephisto::testing::plugin_descriptor(fake_entry), null_aggregator.c_str(),
                         std::runtime_error);
}

TEST_CASE("driver: reads only the plugin members its struct_size covers: a 1.1 descriptor has no codecs") {
    reset();
    plugin.struct_size = offsetof(mph_plugin_descriptor, codecs); // built against ABI 1.1
    plugin.abi_minor = 1;
    // Beyond struct_size: not the plugin's, and never read.
    plugin.codecs = reinterpret_cast<const mph_codec_descriptor* const*>(uintptr_t{0xabababab});
    plugin.codec_count = 5;
    plugin.aggregators = reinterpret_cast<const mph_aggregator_descriptor* const*>(uintptr_t{0xabababab});
    plugin.aggregator_count = 5;
    AgentDriver driver(fake_entry, "echo");
    CHECK(driver.plugin().struct_size == offsetof(mph_plugin_descriptor, codecs));
    CHECK(driver.plugin().abi_minor == 1);
    CHECK(driver.plugin().codecs == nullptr);
    CHECK(driver.plugin().codec_count == 0);
    CHECK(driver.plugin().aggregators == nullptr);
    CHECK(driver.plugin().aggregator_count == 0);
    CHECK(driver.send("x") == MPH_OK);
}

TEST_CASE("driver: host calls with a ctx kept past its callback are MPH_ERR_STATE") {
    reset();
    AgentDriver driver(fake_entry, "echo", {}, {.sinks = {"out"}});
    CHECK(driver.send("x") == MPH_OK);
    REQUIRE(kept_ctx != nullptr);
    mph_message message{};
    message.struct_size = sizeof message;
    CHECK(host->emit(kept_ctx, &message) == MPH_ERR_STATE);
    CHECK(host->send(kept_ctx, "t", 1, &message) == MPH_ERR_STATE);
    CHECK(host->forward(kept_ctx) == MPH_ERR_STATE);
    CHECK(driver.outputs().empty());
}

TEST_CASE("driver: validates messages like the host: partitions, NULLs, struct_size") {
    reset();
    AgentDriver driver(fake_entry, "echo", {}, {.sinks = {"out"}, .partition_count = 4});
    CHECK(driver.send("emit partition 4") == MPH_OK); // the plugin checks it got MPH_ERR_INVALID
    CHECK(driver.send("malformed messages") == MPH_OK);
    CHECK(driver.outputs().empty());

    CHECK(driver.send("short message") == MPH_OK);
    REQUIRE(driver.outputs().size() == 1);
    CHECK(driver.outputs()[0].value == "short");
    CHECK(driver.outputs()[0].partition == MPH_PARTITION_ANY);
    CHECK(driver.outputs()[0].timestamp_ms == 0);
}

TEST_CASE("driver: plugin-level logs are recorded as such") {
    reset();
    std::vector<mephisto::testing::LogLine> logs;
    {
        AgentDriver driver(fake_entry, "echo");
        driver.revoke(); // destroy logs with a NULL ctx
        logs = driver.logs();
    }
    REQUIRE(logs.size() == 1);
    CHECK(logs[0].message == "destroyed");
    CHECK(logs[0].level == MPH_LOG_WARN);
    CHECK(logs[0].plugin_level);
}

TEST_CASE("driver: two drivers of one plugin keep separate outputs and instances") {
    reset();
    AgentDriver first(fake_entry, "echo", {}, {.sinks = {"one"}, .partition = 0});
    AgentDriver second(fake_entry, "echo", {}, {.sinks = {"two"}, .partition = 1});
    CHECK(first.send("emit partition 4") == MPH_FATAL); // no partition_count: partition 4 is accepted
    CHECK(second.send("x") == MPH_OK);
    REQUIRE(first.outputs().size() == 1);
    CHECK(first.outputs()[0].topic == "one");
    CHECK(second.outputs().empty());
}
