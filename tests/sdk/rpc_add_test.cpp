// The rpc_add example through the SDK's test driver: adding answers what it is asked and logs what it is cast;
// summing asks about each pair and emits the answer from on_reply (ABI 1.4).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

#include <string>

using mephisto::testing::AgentDriver;
using mephisto::testing::Header;
using mephisto::testing::TestEvent;

TEST_CASE("rpc_add: adding replies to an ask, logs a cast, and refuses what is not two numbers") {
    AgentDriver adding(mephisto_plugin_entry, "adding", {}, {.from = "adding"});
    TestEvent asked{.value = "2 3", .key = "k"};
    asked.headers = {Header{"mephisto-reply-to", "replies"}, Header{"mephisto-correlation-id", "7"}};
    CHECK(adding.send(asked) == MPH_OK);
    REQUIRE(adding.outputs("replies").size() == 1);
    CHECK(adding.outputs("replies")[0].value == "5");
    CHECK(adding.outputs("replies")[0].key == "7");

    CHECK(adding.send("40 2") == MPH_OK);  // no reply-to: a cast
    CHECK(adding.logged("cast: 40 + 2 = 42"));
    CHECK(adding.outputs().size() == 1);

    CHECK(adding.send("forty two") == MPH_FATAL);
    CHECK(adding.last_error() == "expected two integers \"A B\", got \"forty two\"");
}

TEST_CASE("rpc_add: summing asks adding about a pair and emits its answer, or logs the timeout") {
    AgentDriver summing(mephisto_plugin_entry, "summing", {{"timeout_ms", "250"}}, {.sinks = {"sums"}, .from = "pairs"});
    CHECK(summing.send("20 22", "k1") == MPH_OK);
    CHECK(summing.send("1 1", "k2") == MPH_OK);
    const auto requests = summing.outputs("agent:adding");
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].value == "20 22");
    CHECK(requests[0].key == "k1");
    const auto pending = summing.pending_asks();
    REQUIRE(pending.size() == 2);

    CHECK(summing.answer(pending[0], "42") == MPH_OK);
    CHECK(summing.values("sums") == std::vector<std::string>{"20 + 22 = 42"});
    CHECK(summing.time_out(pending[1]) == MPH_OK);
    CHECK(summing.logged("asked adding about 1 1: no answer within 250 ms"));
    CHECK(summing.values("sums").size() == 1);
    CHECK(summing.pending_asks().empty());

    CHECK(summing.send("not a pair") == MPH_FATAL);  // refused before anything is asked
    CHECK(summing.outputs("agent:adding").size() == 2);
}
