// The hello_world example: Faust's quick start, where `greet` logs every greeting.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <string>

using mephisto::testing::AgentDriver;

TEST_CASE("hello_world: greet logs each greeting through the host, at info level, and produces nothing") {
    AgentDriver greet(mephisto_plugin_entry, "greet", {}, {.from = "greetings"});

    CHECK(greet.send("Hello Faust") == MPH_OK);
    CHECK(greet.send("Hello Kafka topic", "some-key") == MPH_OK);

    REQUIRE(greet.logs().size() == 2);
    CHECK(greet.logs()[0].message == "Hello Faust");
    CHECK(greet.logs()[0].level == MPH_LOG_INFO);
    CHECK_FALSE(greet.logs()[0].plugin_level);
    CHECK(greet.logs()[1].message == "Hello Kafka topic");
    CHECK(greet.outputs().empty());
    CHECK(greet.last_error().empty());
}

TEST_CASE("hello_world: the descriptor names the plugin and its one agent") {
    AgentDriver greet(mephisto_plugin_entry, "greet");

    CHECK(std::string(greet.plugin().name) == "hello_world");
    CHECK(std::string(greet.plugin().version) == "1.0.0");
    REQUIRE(greet.plugin().agent_count == 1);
    CHECK(std::string(greet.agent().name) == "greet");
    CHECK((greet.agent().on_event != nullptr));
    CHECK((greet.agent().on_batch == nullptr));
    CHECK((greet.agent().on_timer == nullptr));
    CHECK(greet.agent().param_count == 0);
}
