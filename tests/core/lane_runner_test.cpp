// The lane runner in-process (engine/lane_runner): the real runner, scheduler, lanes and ledger on a worker
// thread; an agent made of C callbacks that follows a script of verdicts. Its events come from a channel (a
// PartitionState without a consumer), so no broker and no plugin is needed. What each test checks is what the
// agent saw, in order, and what became of each event in the ledger.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/logging.hpp"
#include "engine/agent_runtime.hpp"
#include "engine/lane_runner.hpp"

using namespace mephisto;
using namespace std::chrono_literals;

namespace {

// What the agent does and what it saw. One script per test (the callbacks are plain C functions).
struct Script {
    std::mutex mu;
    std::vector<std::string> seen;             // "create", "on_event 3", "destroy"...
    std::map<int64_t, std::vector<mph_status>> verdicts;  // offset -> its verdicts, in order (then OK)
    std::vector<int64_t> keep_only;            // the filter keeps these offsets (empty: all)
    void record(std::string s) {
        std::lock_guard lock(mu);
        seen.push_back(std::move(s));
    }
    std::vector<std::string> calls() {
        std::lock_guard lock(mu);
        return seen;
    }
};
Script* g_script = nullptr;

mph_status create(mph_agent_ctx*, void** instance) {
    g_script->record("create");
    *instance = g_script;
    return MPH_OK;
}
void destroy(void*) { g_script->record("destroy"); }
mph_status on_revoked(void*, mph_agent_ctx*, int32_t) {
    g_script->record("on_revoked");
    return MPH_OK;
}
mph_status on_event(void* instance, mph_agent_ctx*, const mph_event* ev) {
    auto* script = static_cast<Script*>(instance);
    script->record("on_event " + std::to_string(ev->offset));
    std::lock_guard lock(script->mu);
    auto& left = script->verdicts[ev->offset];
    if (left.empty()) return MPH_OK;
    const mph_status verdict = left.front();
    left.erase(left.begin());
    return verdict;
}
int32_t keep(const mph_event* ev, char*, size_t) {
    const auto& only = g_script->keep_only;
    return only.empty() || std::find(only.begin(), only.end(), ev->offset) != only.end() ? 1 : 0;
}

struct Fixture {
    Script script;
    AgentSpec spec = [] {
        AgentSpec s;
        s.name = "scripted";
        s.on_error.retry = 1;  // one retry, then the policy (skip)
        s.on_error.retry_backoff = Millis(1);
        s.supervisor.max_restarts = 2;
        s.supervisor.backoff_initial = Millis(1);
        s.supervisor.backoff_max = Millis(2);
        return s;
    }();
    AgentInfo info;
    AgentRuntime agent{spec};
    PartitionState channel;
    LaneScheduler<Lane> scheduler;
    Channels channels{scheduler, logger("lane_runner_test")};
    DeadLetterQueue dead_letters{[](const std::string&) {}};
    std::atomic<bool> failed{false};
    std::vector<std::string> failures;
    std::shared_ptr<const WindowClosers> closers = std::make_shared<const WindowClosers>();
    std::unique_ptr<LaneRunner> runner;
    std::unique_ptr<Lane> lane;
    std::thread worker;
    std::vector<InFlight*> events;

    Fixture() {
        g_script = &script;
        info.callbacks.create = create;
        info.callbacks.destroy = destroy;
        info.callbacks.on_event = on_event;
        info.callbacks.on_revoked = on_revoked;
        agent.info = &info;
        agent.log = logger("lane_runner_test");
        channel.topic = "ch";
        channel.channel = true;
        LaneRunnerServices s;
        s.app_id = "lane-runner-test";
        s.scheduler = &scheduler;
        s.channels = &channels;
        s.dead_letters = &dead_letters;
        s.failed = &failed;
        s.fail = [this](const std::string& why) { failures.push_back(why); };
        s.echo = [](Lane&, InFlight*) { return MPH_OK; };
        s.window_closers = &closers;
        runner = std::make_unique<LaneRunner>(std::move(s));
        lane = std::make_unique<Lane>();
        lane->agent = &agent;
        lane->partition = &channel;
        lane->scheduler = &scheduler;
        lane->ctx.agent_name = spec.name;
        lane->ctx.log = agent.log;
        lane->ctx.stats = &agent.stats;
        lane->ctx.lane = lane.get();
    }
    ~Fixture() {
        scheduler.stop();
        if (worker.joinable()) worker.join();
        g_script = nullptr;
    }
    void start_worker() {
        worker = std::thread([this] { runner->work(); });
    }
    // `n` events sent to the channel, numbered from 0, handed to the lane as a sender does.
    void send(int n) {
        for (int i = 0; i < n; ++i) {
            ChannelEvent ev;
            ev.bytes = "v" + std::to_string(i);
            ev.value_len = static_cast<int64_t>(ev.bytes.size());
            ev.sequence = static_cast<int64_t>(events.size());
            events.push_back(channel.admit_sent(std::move(ev), nullptr, 1));
            lane->offer(events.back());
        }
    }
    // Awaits `done` (checked every millisecond), at most 10 s.
    template <typename Pred>
    bool await(Pred done) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(1ms);
        }
        return true;
    }
    bool all_finished() { return await([&] { return channel.unfinished() == 0; }); }
};

std::vector<std::string> list(std::initializer_list<const char*> items) { return {items.begin(), items.end()}; }

}  // namespace

TEST_CASE_FIXTURE(Fixture, "lane runner: each event goes to on_event once, in order, after one create") {
    start_worker();
    send(3);
    REQUIRE(all_finished());
    CHECK(script.calls() == list({"create", "on_event 0", "on_event 1", "on_event 2"}));
    CHECK(agent.stats.processed == 3);
    CHECK(agent.stats.failures == 0);
}

TEST_CASE_FIXTURE(Fixture, "lane runner: RETRY delivers the same event again, and the events after it wait for it") {
    script.verdicts[1] = {MPH_RETRY};
    start_worker();
    send(3);
    REQUIRE(all_finished());
    CHECK(script.calls() == list({"create", "on_event 0", "on_event 1", "on_event 1", "on_event 2"}));
    CHECK(agent.stats.processed == 3);
    CHECK(agent.stats.failures == 1);
    CHECK(agent.stats.restarts == 0);  // a retry keeps the instance
}

TEST_CASE_FIXTURE(Fixture, "lane runner: out of retries, the skip policy finishes the event uncounted as processed") {
    script.verdicts[0] = {MPH_RETRY, MPH_RETRY};  // retry: 1 -> two attempts, then skip
    start_worker();
    send(2);
    REQUIRE(all_finished());
    CHECK(script.calls() == list({"create", "on_event 0", "on_event 0", "on_event 1"}));
    CHECK(agent.stats.skipped == 1);
    CHECK(agent.stats.processed == 1);
    CHECK(failures.empty());
}

TEST_CASE_FIXTURE(Fixture, "lane runner: any other verdict restarts the instance, which gets the event again") {
    script.verdicts[0] = {MPH_FATAL};
    start_worker();
    send(2);
    REQUIRE(all_finished());
    CHECK(script.calls() == list({"create", "on_event 0", "destroy", "create", "on_event 0", "on_event 1"}));
    CHECK(agent.stats.restarts == 1);
    CHECK_FALSE(agent.stats.quarantined.load());
}

TEST_CASE_FIXTURE(Fixture, "lane runner: a host status returned as a verdict restarts the instance too") {
    script.verdicts[0] = {MPH_ERR_FULL};
    start_worker();
    send(1);
    REQUIRE(all_finished());
    CHECK(script.calls() == list({"create", "on_event 0", "destroy", "create", "on_event 0"}));
    CHECK(agent.stats.restarts == 1);
}

TEST_CASE_FIXTURE(Fixture, "lane runner: more restarts than the supervisor allows quarantine the agent, its event unfinished") {
    AgentSpec patient = spec;
    patient.on_error.retry = 10;  // the supervisor's limit comes first
    agent.set_spec(patient);
    script.verdicts[0] = {MPH_FATAL, MPH_FATAL, MPH_FATAL, MPH_FATAL};  // max_restarts 2
    start_worker();
    send(2);
    REQUIRE(await([&] { return agent.stats.quarantined.load(); }));
    // The lane parked: nothing more is delivered, and both events stay unfinished (uncommitted).
    REQUIRE(await([&] {
        std::lock_guard lock(lane->mu);
        return !lane->scheduled;
    }));
    CHECK(channel.unfinished() == 2);
    const auto calls = script.calls();
    CHECK(std::count(calls.begin(), calls.end(), "on_event 0") == 3);
    CHECK(std::count(calls.begin(), calls.end(), "on_event 1") == 0);
    runner->release_lane(*lane, 0);
    CHECK(channel.unfinished() == 0);
}

TEST_CASE_FIXTURE(Fixture, "lane runner: the filter finishes the events it rejects without the agent seeing them") {
    mph_predicate_descriptor predicate{};
    predicate.keep = keep;
    agent.filter = &predicate;
    script.keep_only = {1, 3};
    start_worker();
    send(5);
    REQUIRE(all_finished());
    CHECK(script.calls() == list({"create", "on_event 1", "on_event 3"}));
    CHECK(agent.stats.filtered == 3);
    CHECK(agent.stats.processed == 2);
}

TEST_CASE_FIXTURE(Fixture, "lane runner: a revoked lane says goodbye, then finishes what it still holds as abandoned") {
    send(1);
    REQUIRE(scheduler.pop() == lane.get());
    runner->run(*lane);  // this test's thread is the worker: the instance is created and takes event 0
    CHECK(channel.unfinished() == 0);
    agent.stats.quarantined = true;  // from now on its turns park: what comes stays queued
    send(2);
    REQUIRE(scheduler.pop() == lane.get());
    runner->run(*lane);
    CHECK(channel.unfinished() == 2);
    runner->revoke_instance(*lane);
    runner->release_lane(*lane, 0);
    CHECK(script.calls() == list({"create", "on_event 0", "on_revoked", "destroy"}));
    CHECK(channel.unfinished() == 0);
    CHECK(lane->queue.empty());
    CHECK(lane->local.empty());
}
