// The `throws` loader fixture (tests/abi/fixtures/throws.cpp) behaves as its comment says: the loader and
// supervisor tests that load it as a .so rely on this.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <mephisto/testing.hpp>

using mephisto::testing::AgentDriver;
using mephisto::testing::TestEvent;

TEST_CASE("fixture throws: forwards offsets 0..8, throws on 9 and 19 with the offset in the error") {
    AgentDriver thrower(mephisto_plugin_entry, "thrower", {}, {.sinks = {"out"}});
    for (int offset = 0; offset < 9; ++offset) CHECK(thrower.send("v") == MPH_OK);
    CHECK(thrower.outputs().size() == 9);

    CHECK(thrower.send("v") == MPH_FATAL); // offset 9
    CHECK(thrower.last_error() == "boom on event 9");
    CHECK(thrower.send(TestEvent{.value = "v", .offset = 19}) == MPH_FATAL);
    CHECK(thrower.last_error() == "boom on event 19");
    CHECK(thrower.send(TestEvent{.value = "v", .offset = 20}) == MPH_OK);
    CHECK(thrower.outputs().size() == 10);
}
