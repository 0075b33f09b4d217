// The transfer_branch example: `branch` routes transfers by amount, keyed by account.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <string>

using mephisto::testing::AgentDriver;
using mephisto::testing::Output;

TEST_CASE("transfer_branch: 50, 500 and 50000 go to tiny, small and large transfers, keyed by account") {
    AgentDriver branch(mephisto_plugin_entry, "branch", {}, {.from = "transfers"});
    const std::string tiny = R"({"account":"a1","amount":50.0})";
    const std::string small = R"({"account":"a2","amount":500})";
    const std::string large = R"({"account":"a3","amount":50000.0})";

    CHECK(branch.send(tiny) == MPH_OK);
    CHECK(branch.send(small) == MPH_OK);
    CHECK(branch.send(large) == MPH_OK);

    REQUIRE(branch.outputs().size() == 3);
    const Output& first = branch.outputs()[0];
    CHECK(first.topic == "tiny_transfers");
    CHECK(first.key == "a1");
    CHECK(first.value == tiny);
    CHECK(first.partition == MPH_PARTITION_ANY);
    CHECK(branch.outputs()[1].topic == "small_transfers");
    CHECK(branch.outputs()[1].key == "a2");
    CHECK(branch.outputs()[1].value == small);
    CHECK(branch.outputs()[2].topic == "large_transfers");
    CHECK(branch.outputs()[2].key == "a3");
    CHECK(branch.outputs()[2].value == large);
}

TEST_CASE("transfer_branch: the thresholds are exclusive upper bounds") {
    AgentDriver branch(mephisto_plugin_entry, "branch");
    CHECK(branch.send(R"({"account":"a","amount":100})") == MPH_OK);
    CHECK(branch.send(R"({"account":"a","amount":10000})") == MPH_OK);
    CHECK(branch.send(R"({"account":"a","amount":99.99})") == MPH_OK);
    REQUIRE(branch.outputs().size() == 3);
    CHECK(branch.outputs()[0].topic == "small_transfers");
    CHECK(branch.outputs()[1].topic == "large_transfers");
    CHECK(branch.outputs()[2].topic == "tiny_transfers");
}

TEST_CASE("transfer_branch: params from YAML replace the declared defaults") {
    AgentDriver branch(mephisto_plugin_entry, "branch", {{"tiny_below", "10"}, {"small_below", "1000"}});
    CHECK(branch.send(R"({"account":"a","amount":50})") == MPH_OK);
    CHECK(branch.send(R"({"account":"a","amount":5000})") == MPH_OK);
    REQUIRE(branch.outputs().size() == 2);
    CHECK(branch.outputs()[0].topic == "small_transfers");
    CHECK(branch.outputs()[1].topic == "large_transfers");
}

TEST_CASE("transfer_branch: the params and their defaults are declared for `plugin inspect`") {
    AgentDriver branch(mephisto_plugin_entry, "branch");
    REQUIRE(branch.agent().param_count == 2);
    CHECK(std::string(branch.agent().params[0]->name) == "tiny_below");
    CHECK(std::string(branch.agent().params[0]->default_value) == "100");
    CHECK_FALSE(branch.agent().params[0]->required);
    CHECK(std::string(branch.agent().params[1]->name) == "small_below");
    CHECK(std::string(branch.agent().params[1]->default_value) == "10000");
}

TEST_CASE("transfer_branch: a transfer without an amount is FATAL with the reason, and produces nothing") {
    AgentDriver branch(mephisto_plugin_entry, "branch");
    CHECK(branch.send(R"({"account":"a1"})", "a1") == MPH_FATAL);
    CHECK(branch.last_error() == R"(transfer has no numeric "amount": {"account":"a1"})");
    CHECK(branch.outputs().empty());

    CHECK(branch.send(R"({"account":"a1","amount":"12"})") == MPH_FATAL);
    CHECK(branch.last_error().find("no numeric \"amount\"") != std::string::npos);

    CHECK(branch.send(R"({"amount":12})") == MPH_FATAL);
    CHECK(branch.last_error().find("no string \"account\"") != std::string::npos);

    // Defensive only: the host rejects undecodable values of a `value: json` topic before the agent.
    CHECK(branch.send("not json") == MPH_FATAL);
    CHECK(branch.last_error().find("not a JSON object") != std::string::npos);

    CHECK(branch.outputs().empty());
}

TEST_CASE("transfer_branch: inconsistent or non-numeric thresholds make create fail with the reason") {
    AgentDriver inverted(mephisto_plugin_entry, "branch", {{"tiny_below", "500"}, {"small_below", "100"}});
    CHECK_FALSE(inverted.running());
    CHECK(inverted.create_status() == MPH_FATAL);
    CHECK(inverted.last_error().find("must be less than small_below") != std::string::npos);
    CHECK_THROWS_AS(inverted.send(R"({"account":"a","amount":1})"), std::logic_error);

    AgentDriver garbled(mephisto_plugin_entry, "branch", {{"tiny_below", "ten"}});
    CHECK(garbled.create_status() == MPH_FATAL);
    CHECK(garbled.last_error() == "param 'tiny_below' = 'ten' is not a valid number");
}
