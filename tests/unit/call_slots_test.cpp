// The calls in progress a worker shares with its supervisor (common/call_slots.hpp): what a thread publishes is
// what the supervisor reads back, a fault marks the failing thread's slot only, and a name freed and replaced
// at the same address is never reported under its old text.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <thread>

#include "common/call_slots.hpp"
#include "temp_dir.hpp"

using namespace mephisto;

TEST_CASE("call slots: published calls are read back, a fault names its thread, and freed names are copied afresh") {
    mephisto::test::TempDir dir;
    const auto file = dir.path() / "calls";
    REQUIRE(call_slots::share(file));

    char topic[32] = "orders";  // one buffer, as a name freed and reused at the same address would be
    PluginCallRecord r;
    r.pipeline = "shop";
    r.agent = "count";
    r.plugin = "counter";
    r.sha1 = "0123456789abcdef0123456789abcdef01234567";
    r.callback = "on_event";
    r.topic = topic;
    r.partition = 3;
    r.offset = 42;
    call_slots::publish(r);

    std::thread other([&] {  // another thread in a call of its own, then failing
        PluginCallRecord o = r;
        o.agent = "other";
        o.offset = 7;
        call_slots::publish(o);
        call_slots::mark_fault(11);
    });
    other.join();  // its slot is released when it ends: it no longer counts as in progress

    auto calls = call_slots::read(file);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].pipeline == "shop");
    CHECK(calls[0].agent == "count");
    CHECK(calls[0].plugin == "counter");
    CHECK(calls[0].sha1 == r.sha1);
    CHECK(calls[0].callback == "on_event");
    CHECK(calls[0].topic == "orders");
    CHECK(calls[0].partition == 3);
    CHECK(calls[0].offset == 42);
    CHECK(calls[0].about_an_event());
    CHECK_FALSE(call_slots::culprit(calls).has_value());  // no fault, and no hang asked about

    // The same address now holds another name: once the old one is said freed, the slot has the new text.
    std::strcpy(topic, "payments");
    call_slots::names_freed();
    r.offset = 43;
    call_slots::publish(r);
    call_slots::mark_fault(6);
    calls = call_slots::read(file);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].topic == "payments");
    auto culprit = call_slots::culprit(calls);
    REQUIRE(culprit.has_value());
    CHECK(culprit->fault == 6);
    CHECK(culprit->offset == 43);

    // Leaving the call: nothing in progress.
    call_slots::publish(PluginCallRecord{});
    CHECK(call_slots::read(file).empty());
    // A file that is not a calls page reads as no calls.
    CHECK(call_slots::read(dir.path() / "missing").empty());
}
