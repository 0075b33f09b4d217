// The C++ wrapper (mephisto.hpp): trampolines, exception handling, Context, params and the descriptor.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

using mephisto::testing::AgentDriver;

namespace {

// Throws a plain std::exception from on_event on every event.
struct ThrowsOnEvent {
    void on_event(mephisto::Context&, const mephisto::Event& event) {
        throw std::runtime_error("cannot handle offset " + std::to_string(event.offset()));
    }
};

struct ThrowsInConstructor {
    explicit ThrowsInConstructor(mephisto::Context&) { throw std::runtime_error("connection refused"); }
    void on_event(mephisto::Context&, const mephisto::Event&) {}
};

// Asks for its verdict by throwing mephisto::Error or by returning it.
struct ChoosesVerdict {
    mph_status on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        const std::string_view value = event.value();
        if (value == "throw retry") throw mephisto::Error("database timed out", MPH_RETRY);
        if (value == "return retry") {
            ctx.set_error("not yet");
            return MPH_RETRY;
        }
        if (value == "return host status") return MPH_ERR_NOT_FOUND;
        if (value == "throw int") throw 42;
        if (value == "emit") ctx.emit("out"); // fails with MPH_ERR_FULL when the driver injects it
        return MPH_OK;
    }
};

// Records what forward() says in every callback where it can be called.
struct Forwarder {
    void on_event(mephisto::Context& ctx, const mephisto::Event&) { ctx.forward(); }
    mph_status on_timer(mephisto::Context& ctx, std::string_view timer, int64_t now_ms) {
        ctx.log_info("timer ", timer, " at ", now_ms, " on partition ", ctx.partition());
        // The raw host call, to see its status code without the wrapper's exception.
        const mph_status raw = ctx.api().forward(ctx.raw());
        ctx.log_info("raw forward in on_timer: ", mephisto::status_name(raw));
        ctx.forward(); // throws mephisto::Error(MPH_ERR_STATE): the verdict becomes FATAL
        return MPH_OK;
    }
    void on_assigned(mephisto::Context& ctx, int32_t partition) {
        try {
            ctx.forward();
        } catch (const mephisto::Error& error) {
            ctx.log_info("assigned ", partition, ", forward: ", mephisto::status_name(error.status()));
        }
    }
    void on_revoked(mephisto::Context& ctx, int32_t partition) { ctx.log_info("revoked ", partition); }
};

// Reads params: declared defaults, YAML values, parsing, a required param.
struct Configured {
    explicit Configured(mephisto::Context& ctx)
        : greeting(ctx.param_or("greeting", "unused fallback")), repeat(ctx.param_as<int>("repeat")),
          loud(ctx.param_as<bool>("loud", false)), secret(ctx.require_param("secret")),
          undeclared(ctx.param("undeclared").has_value()) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event&) {
        ctx.log_info("greeting=", greeting, " repeat=", repeat, " loud=", loud, " secret=", secret,
                     " undeclared=", undeclared, " agent=", ctx.agent_name());
    }

    std::string greeting;
    int repeat;
    bool loud;
    std::string secret;
    bool undeclared;
};

// Builds messages with every field, and reads every field of the event it got.
struct Echo {
    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        ctx.log_info("topic=", event.topic(), " partition=", event.partition(), " offset=", event.offset(),
                     " ts=", event.timestamp_ms(), " key=", event.key().value_or("<none>"),
                     " tombstone=", event.is_tombstone(), " headers=", event.headers().size());
        for (const mephisto::Header& header : event.headers())
            ctx.log_info("header ", header.name, "=", header.value.value_or("<no value>"));
        const std::array headers{mephisto::Header{"origin", "echo"}, mephisto::Header{"flag", std::nullopt}};
        ctx.emit({.value = event.value_or_tombstone(),
                  .key = event.key(),
                  .headers = headers,
                  .partition = 2,
                  .timestamp_ms = 7});
        ctx.send("side", "side value", "side key", 1);
        ctx.send("tombstones", {.value = std::nullopt, .key = "gone"});
    }
};

// Only on_batch: the verdict covers the whole batch.
struct Batcher {
    mph_status on_batch(mephisto::Context& ctx, mephisto::Batch batch) {
        std::string joined;
        for (const mephisto::Event& event : batch) joined += std::string(event.value()) + ";";
        ctx.emit(joined);
        return batch.size() == 3 ? MPH_OK : MPH_RETRY;
    }
};

} // namespace

MEPHISTO_PLUGIN(
    "wrapper_test", "0.1.0", mephisto::description("agents that exercise the C++ wrapper"),
    mephisto::agent<ThrowsOnEvent>("throws_on_event"), mephisto::agent<ThrowsInConstructor>("throws_in_constructor"),
    mephisto::agent<ChoosesVerdict>("chooses_verdict"), mephisto::agent<Forwarder>("forwarder", "forwards every event"),
    mephisto::agent<Configured>("configured", "reads params",
                                {
                                    {.name = "greeting", .description = "what to say", .default_value = "hello"},
                                    {.name = "repeat", .default_value = "3"},
                                    {.name = "loud"},
                                    {.name = "secret", .description = "no default", .required = true},
                                }),
    mephisto::agent<Echo>("echo"), mephisto::agent<Batcher>("batcher"));

TEST_CASE("wrapper: an exception in on_event becomes MPH_FATAL with its text through set_error") {
    AgentDriver driver(mephisto_plugin_entry, "throws_on_event");
    CHECK(driver.send(mephisto::testing::TestEvent{.value = "x", .offset = 41}) == MPH_FATAL);
    CHECK(driver.last_error() == "cannot handle offset 41");
    CHECK(driver.running()); // the driver leaves restarting to the test, like the supervisor would
}

TEST_CASE("wrapper: an exception in the constructor makes create fail with MPH_FATAL and the text") {
    AgentDriver driver(mephisto_plugin_entry, "throws_in_constructor");
    CHECK_FALSE(driver.running());
    CHECK(driver.create_status() == MPH_FATAL);
    CHECK(driver.last_error() == "connection refused");
    CHECK(driver.restart() == MPH_FATAL);
}

TEST_CASE("wrapper: verdicts from thrown mephisto::Error, returned statuses and foreign exceptions") {
    AgentDriver driver(mephisto_plugin_entry, "chooses_verdict", {}, {.sinks = {"out"}});
    CHECK(driver.send("fine") == MPH_OK);
    CHECK(driver.last_error().empty());

    CHECK(driver.send("throw retry") == MPH_RETRY);
    CHECK(driver.last_error() == "database timed out");

    CHECK(driver.send("return retry") == MPH_RETRY);
    CHECK(driver.last_error() == "not yet");

    CHECK(driver.send("return host status") == MPH_FATAL);
    CHECK(driver.last_error() == "the agent returned MPH_ERR_NOT_FOUND (-2) as its verdict");

    CHECK(driver.send("throw int") == MPH_FATAL);
    CHECK(driver.last_error() == "unknown exception (not derived from std::exception)");

    driver.fail_next_outputs(MPH_ERR_FULL);
    CHECK(driver.send("emit") == MPH_RETRY); // a full queue is transient
    CHECK(driver.last_error() == "emit failed: MPH_ERR_FULL");
    driver.fail_next_outputs(MPH_ERR_INVALID);
    CHECK(driver.send("emit") == MPH_FATAL);
    CHECK(driver.last_error() == "emit failed: MPH_ERR_INVALID");
    CHECK(driver.send("emit") == MPH_OK);
    CHECK(driver.values("out") == std::vector<std::string>{"out"});
}

TEST_CASE("wrapper: forward works in on_event and is MPH_ERR_STATE everywhere else") {
    AgentDriver driver(mephisto_plugin_entry, "forwarder", {}, {.sinks = {"a", "b"}, .partition = 3});
    CHECK(driver.logged("assigned 3, forward: MPH_ERR_STATE"));

    CHECK(driver.send(mephisto::testing::TestEvent{
              .value = "v", .key = "k", .headers = {{"h", "1"}}, .timestamp_ms = 1234}) == MPH_OK);
    REQUIRE(driver.outputs().size() == 2);
    CHECK(driver.outputs()[0].topic == "a");
    CHECK(driver.outputs()[1].topic == "b");
    for (const auto& output : driver.outputs()) {
        CHECK(output.key == "k");
        CHECK(output.value == "v");
        CHECK(output.timestamp_ms == 1234);
        CHECK(output.headers == std::vector<mephisto::testing::Header>{{"h", "1"}});
    }

    CHECK(driver.fire_timer("flush", 99) == MPH_FATAL);
    CHECK(driver.logged("timer flush at 99 on partition -1")); // a timer has its own instance
    CHECK(driver.logged("raw forward in on_timer: MPH_ERR_STATE"));
    CHECK(driver.last_error() == "forward failed: MPH_ERR_STATE");
    CHECK(driver.outputs().size() == 2);
}

TEST_CASE("wrapper: on_assigned and on_revoked get the partition, and a restart does not revoke") {
    AgentDriver driver(mephisto_plugin_entry, "forwarder", {}, {.partition = 5});
    CHECK(driver.logged("assigned 5"));
    CHECK(driver.restart() == MPH_OK); // the supervisor's restart: destroy and create, no revocation
    CHECK_FALSE(driver.logged("revoked"));
    driver.revoke();
    CHECK(driver.logged("revoked 5"));
    CHECK_FALSE(driver.running());
    CHECK_THROWS_AS(driver.send("x"), std::logic_error);
}

TEST_CASE("wrapper: params come from YAML, else from the declared defaults") {
    SUBCASE("defaults") {
        AgentDriver driver(mephisto_plugin_entry, "configured", {{"secret", "s3"}});
        REQUIRE(driver.running());
        CHECK(driver.send("x") == MPH_OK);
        CHECK(driver.logged("greeting=hello repeat=3 loud=0 secret=s3 undeclared=0 agent=configured"));
    }
    SUBCASE("YAML values win over defaults") {
        AgentDriver driver(mephisto_plugin_entry, "configured",
                           {{"secret", "s3"}, {"greeting", "hi"}, {"repeat", "5"}, {"loud", "true"}},
                           {.agent_name = "configured_in_yaml"});
        CHECK(driver.send("x") == MPH_OK);
        CHECK(driver.logged("greeting=hi repeat=5 loud=1 secret=s3 undeclared=0 agent=configured_in_yaml"));
    }
    SUBCASE("a missing required or an undeclared param is refused before create, as the host does at startup") {
        CHECK_THROWS_WITH_AS(AgentDriver(mephisto_plugin_entry, "configured"),
                             "param 'secret' is required by agent 'configured'", std::runtime_error);
        CHECK_THROWS_WITH_AS(AgentDriver(mephisto_plugin_entry, "configured", {{"secret", "s"}, {"bogus", "1"}}),
                             "agent 'configured' of plugin 'wrapper_test' has no param 'bogus'", std::runtime_error);
    }
    SUBCASE("a param that does not parse fails create") {
        AgentDriver driver(mephisto_plugin_entry, "configured", {{"secret", "s"}, {"repeat", "3x"}});
        CHECK(driver.create_status() == MPH_FATAL);
        CHECK(driver.last_error() == "param 'repeat' = '3x' is not a valid number");
    }
    SUBCASE("declared for plugin inspect") {
        AgentDriver driver(mephisto_plugin_entry, "configured", {{"secret", "s"}});
        const mph_agent_descriptor& agent = driver.agent();
        REQUIRE(agent.param_count == 4);
        CHECK(agent.params[0]->struct_size == sizeof(mph_param_spec));
        CHECK(std::string(agent.params[0]->name) == "greeting");
        CHECK(std::string(agent.params[0]->description) == "what to say");
        CHECK(std::string(agent.params[0]->default_value) == "hello");
        CHECK(agent.params[2]->default_value == nullptr);
        CHECK(agent.params[3]->required);
        CHECK(agent.params[3]->default_value == nullptr);
    }
}

TEST_CASE("wrapper: Event exposes every field and Message carries every field to the host") {
    AgentDriver driver(mephisto_plugin_entry, "echo", {}, {.sinks = {"out"}, .partition = 1, .from = "in"});
    CHECK(driver.send(mephisto::testing::TestEvent{.value = std::string("a\0b", 3),
                                                   .headers = {{"h1", "v1"}, {"h2", std::nullopt}},
                                                   .timestamp_ms = 77,
                                                   .offset = 10}) == MPH_OK);
    CHECK(driver.logged("topic=in partition=1 offset=10 ts=77 key=<none> tombstone=0 headers=2"));
    CHECK(driver.logged("header h1=v1"));
    CHECK(driver.logged("header h2=<no value>"));

    REQUIRE(driver.outputs().size() == 3);
    const auto& emitted = driver.outputs()[0];
    CHECK(emitted.topic == "out");
    CHECK(emitted.value == std::string("a\0b", 3)); // bytes, not C strings
    CHECK_FALSE(emitted.key.has_value());
    CHECK(emitted.partition == 2);
    CHECK(emitted.timestamp_ms == 7);
    CHECK(emitted.headers == std::vector<mephisto::testing::Header>{{"origin", "echo"}, {"flag", std::nullopt}});
    const auto& sent = driver.outputs()[1];
    CHECK(sent.topic == "side");
    CHECK(sent.key == "side key");
    CHECK(sent.value == "side value");
    CHECK(sent.partition == 1);
    const auto& tombstone = driver.outputs()[2];
    CHECK(tombstone.topic == "tombstones");
    CHECK(tombstone.key == "gone");
    CHECK_FALSE(tombstone.value.has_value());

    // Offsets continue from the last one; a tombstone has an empty value and an empty key is still a key.
    driver.clear();
    CHECK(driver.send(std::nullopt, "") == MPH_OK);
    CHECK(driver.logged("offset=11 ts=-1 key= tombstone=1 headers=0"));
    CHECK(driver.outputs()[0].key == "");
    CHECK_FALSE(driver.outputs()[0].value.has_value());
}

TEST_CASE("wrapper: an on_batch agent gets the whole batch and its verdict covers it") {
    AgentDriver driver(mephisto_plugin_entry, "batcher", {}, {.sinks = {"out"}});
    CHECK((driver.agent().on_event == nullptr));
    CHECK(driver.send_batch({{.value = "a"}, {.value = "b"}, {.value = "c"}}) == MPH_OK);
    CHECK(driver.send("d") == MPH_RETRY); // a single event is a batch of one
    CHECK(driver.values("out") == std::vector<std::string>{"a;b;c;", "d;"});
}

TEST_CASE("wrapper: the descriptor sets exactly the callbacks the class has") {
    AgentDriver forwarder(mephisto_plugin_entry, "forwarder");
    CHECK((forwarder.agent().create != nullptr));
    CHECK((forwarder.agent().destroy != nullptr));
    CHECK((forwarder.agent().on_event != nullptr));
    CHECK((forwarder.agent().on_batch == nullptr));
    CHECK((forwarder.agent().on_timer != nullptr));
    CHECK((forwarder.agent().on_assigned != nullptr));
    CHECK((forwarder.agent().on_revoked != nullptr));
    CHECK(std::string(forwarder.agent().description) == "forwards every event");

    AgentDriver throws(mephisto_plugin_entry, "throws_on_event");
    CHECK((throws.agent().on_timer == nullptr));
    CHECK((throws.agent().on_assigned == nullptr));
    CHECK((throws.agent().on_revoked == nullptr));
    CHECK(throws.agent().description == nullptr);

    CHECK(std::string(forwarder.plugin().name) == "wrapper_test");
    CHECK(std::string(forwarder.plugin().description) == "agents that exercise the C++ wrapper");
    CHECK(forwarder.plugin().abi_major == MPH_ABI_VERSION_MAJOR);
    CHECK(forwarder.plugin().abi_minor == MPH_ABI_VERSION_MINOR);
    CHECK(forwarder.plugin().agent_count == 7);
    CHECK((forwarder.plugin().init == nullptr));
    CHECK((forwarder.plugin().fini == nullptr));
}

TEST_CASE("wrapper: the entry function refuses another major version and a short host table") {
    mph_host_api api{};
    api.struct_size = sizeof api;
    char errbuf[256] = {};
    CHECK(mephisto_plugin_entry(2, 0, &api, errbuf, sizeof errbuf) == nullptr);
    CHECK(std::string(errbuf) == "plugin 'wrapper_test' needs Mephisto ABI 1.x, the host offers 2.0");

    api.struct_size = offsetof(mph_host_api, forward);
    CHECK(mephisto_plugin_entry(1, 0, &api, errbuf, sizeof errbuf) == nullptr);
    CHECK(std::string(errbuf) == "plugin 'wrapper_test': the host function table is missing or smaller than ABI 1.0");

    CHECK(mephisto_plugin_entry(1, 0, nullptr, errbuf, 8) == nullptr);
    CHECK(std::string(errbuf) == "plugin "); // truncated to the buffer, still terminated
}

TEST_CASE("wrapper: a definition with two agents of one name is refused at entry") {
    mph_host_api api{};
    api.struct_size = sizeof api;
    char errbuf[256] = {};

    mephisto::detail::Plugin same_name("dup", "1", mephisto::agent<ThrowsOnEvent>("x"), mephisto::agent<Echo>("x"));
    CHECK(same_name.enter(1, 0, &api, errbuf, sizeof errbuf) == nullptr);
    CHECK(std::string(errbuf) == "plugin 'dup': two agents are named 'x'");

    // One class may back several agents: each gets its own params from YAML.
    mephisto::detail::Plugin same_class("shared", "1", mephisto::agent<Echo>("x"), mephisto::agent<Echo>("y"));
    CHECK(same_class.enter(1, 0, &api, errbuf, sizeof errbuf) != nullptr);
}
