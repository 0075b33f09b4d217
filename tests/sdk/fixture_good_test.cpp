// The `good` loader fixture (tests/abi/fixtures/good.c) behaves as its comment says: the loader tests that
// load it as a .so rely on this.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <string>

using mephisto::testing::AgentDriver;

TEST_CASE("fixture good: echo forwards every event unchanged to every sink") {
    AgentDriver echo(mephisto_plugin_entry, "echo", {}, {.sinks = {"a", "b"}});
    CHECK(echo.send(mephisto::testing::TestEvent{.value = "v", .key = "k", .headers = {{"h", "1"}}}) == MPH_OK);
    REQUIRE(echo.outputs().size() == 2);
    CHECK(echo.outputs()[0].topic == "a");
    CHECK(echo.outputs()[1].topic == "b");
    CHECK(echo.outputs()[1].key == "k");
    CHECK(echo.outputs()[1].value == "v");
    CHECK(echo.outputs()[1].headers.size() == 1);
    CHECK(echo.logs().empty()); // log_events defaults to false
}

TEST_CASE("fixture good: the log_events param, declared with its default") {
    AgentDriver echo(mephisto_plugin_entry, "echo", {{"log_events", "true"}},
                     {.sinks = {"out"}, .partition = 2, .from = "in"});
    CHECK(echo.send(mephisto::testing::TestEvent{.value = "v", .offset = 17}) == MPH_OK);
    CHECK(echo.logged("echo: event in/2@17"));

    REQUIRE(echo.agent().param_count == 1);
    CHECK(std::string(echo.agent().params[0]->name) == "log_events");
    CHECK(std::string(echo.agent().params[0]->default_value) == "false");
    CHECK((echo.plugin().init != nullptr));
    CHECK((echo.plugin().fini != nullptr));
}

TEST_CASE("fixture good: without sinks the verdict is FATAL with a reason") {
    AgentDriver echo(mephisto_plugin_entry, "echo");
    CHECK(echo.send("v") == MPH_FATAL);
    CHECK(echo.last_error() == "echo: forward failed (does the agent have sinks?)");
}
