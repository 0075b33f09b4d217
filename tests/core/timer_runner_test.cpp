// The timer runner in-process (engine/timer_runner): its thread fires a timer on its schedule, supervises a timer
// whose callback fails the way it supervises agents (restart with backoff, quarantine past the restart intensity,
// RETRY keeps the instance), and an on_leader timer fires only while the host leads.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "common/logging.hpp"
#include "engine/timer_runner.hpp"

using namespace std::chrono_literals;
using mephisto::TimerRunner;
using mephisto::TimerRuntime;

namespace {

// What the timer's plugin saw, and what its on_timer answers.
struct Plugin {
    std::atomic<int> creates{0}, destroys{0}, fires{0};
    std::atomic<int> verdict{MPH_OK};
};
Plugin* g_plugin = nullptr;

mph_status create(mph_agent_ctx*, void** instance) {
    *instance = g_plugin;
    g_plugin->creates++;
    return MPH_OK;
}
void destroy(void*) { g_plugin->destroys++; }
mph_status on_timer(void*, mph_agent_ctx*, const char*, int64_t) {
    g_plugin->fires++;
    return static_cast<mph_status>(g_plugin->verdict.load());
}

bool await(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);  // the polling interval of the observation
    }
    return true;
}

struct Fixture {
    Plugin plugin;
    mephisto::AgentInfo info;
    mephisto::TimerSpec spec;
    std::atomic<bool> leader{true};
    std::unique_ptr<TimerRunner> runner;
    TimerRuntime* timer = nullptr;

    Fixture() {
        g_plugin = &plugin;
        info.name = "ticker";
        info.callbacks.create = create;
        info.callbacks.destroy = destroy;
        info.callbacks.on_timer = on_timer;
        spec.name = "tick";
        spec.every = mephisto::Millis(2);
        spec.supervisor.max_restarts = 2;
        spec.supervisor.within = mephisto::Millis(60'000);
        spec.supervisor.backoff_initial = mephisto::Millis(1);
        spec.supervisor.backoff_max = mephisto::Millis(2);
    }
    void start() {
        runner = std::make_unique<TimerRunner>(TimerRunner::Services{
            [this] { return leader.load(); }, "timer-test"});
        auto t = std::make_unique<TimerRuntime>(spec);
        t->info = &info;
        t->ctx.agent_name = spec.name;
        t->ctx.log = mephisto::logger("tick");
        timer = t.get();
        runner->timers().push_back(std::move(t));
        runner->start();
    }
    // Stops the thread; the timer's fields may be read after.
    void stop() {
        runner->request_stop();
        REQUIRE(runner->join_until(std::chrono::steady_clock::now() + 10s));
    }
};

}  // namespace

TEST_CASE("a timer fires on its schedule, with one instance created at its first tick") {
    Fixture f;
    f.start();
    REQUIRE(await([&] { return f.plugin.fires >= 5; }));
    f.stop();
    CHECK(f.plugin.creates == 1);
    CHECK(f.plugin.destroys == 0);
    CHECK(f.timer->created);
    CHECK_FALSE(f.timer->quarantined);
}

TEST_CASE("a failing timer is restarted, then quarantined past its restart intensity, and fires no more") {
    Fixture f;
    f.plugin.verdict = MPH_FATAL;
    f.start();
    // max_restarts 2: the first two failures restart it, the third quarantines it.
    REQUIRE(await([&] { return f.plugin.destroys >= 3; }));
    f.stop();
    CHECK(f.timer->quarantined);
    CHECK(f.plugin.creates == 3);
    CHECK(f.plugin.destroys == 3);
    CHECK(f.plugin.fires == 3);  // not one more once quarantined
}

TEST_CASE("a host status returned as the verdict restarts the timer like MPH_FATAL, and RETRY keeps its instance") {
    Fixture f;
    f.plugin.verdict = MPH_RETRY;
    f.spec.supervisor.max_restarts = 100;
    f.start();
    REQUIRE(await([&] { return f.plugin.fires >= 3; }));
    CHECK(f.plugin.destroys == 0);  // retried at its next tick, on the same instance
    f.plugin.verdict = MPH_ERR_FULL;
    REQUIRE(await([&] { return f.plugin.destroys >= 1 && f.plugin.creates >= 2; }));
    f.stop();
}

TEST_CASE("an on_leader timer fires only while this host leads") {
    Fixture f;
    f.spec.on_leader = true;
    f.leader = false;
    f.start();
    // An observation window, not a synchronisation: about 25 ticks come due while another host leads, and none
    // fires here. Then this host leads.
    std::this_thread::sleep_for(50ms);
    CHECK(f.plugin.fires == 0);
    f.leader = true;
    REQUIRE(await([&] { return f.plugin.fires >= 2; }));
    f.stop();
    CHECK(f.plugin.creates == 1);
}
