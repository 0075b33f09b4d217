// The lane's scheduling state machine in-process (engine/lane.cpp) with the real LaneScheduler: when a lane takes
// a turn, a stop during a callback, a swap's stop and resume, a restart's delay, a recovery, a revoke with work
// queued, and many threads giving work while workers run turns. No broker, no plugin.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common/logging.hpp"
#include "engine/pipeline.hpp"

using namespace mephisto;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Fixture {
    AgentSpec spec = [] {
        AgentSpec s;
        s.name = "counter";
        return s;
    }();
    AgentRuntime agent{spec};
    PartitionState partition;
    LaneScheduler<Lane> scheduler;
    std::vector<InFlight*> events;

    Fixture() {
        agent.log = logger("lane_test");
        partition.topic = "in";
    }
    ~Fixture() {
        scheduler.stop();
        for (InFlight* f : events) finish(f, 0);
    }
    std::unique_ptr<Lane> lane() {
        auto l = std::make_unique<Lane>();
        l->agent = &agent;
        l->partition = &partition;
        l->scheduler = &scheduler;
        return l;
    }
    InFlight* event() {
        const auto offset = static_cast<int64_t>(events.size());
        REQUIRE(partition.fetched(offset));
        events.push_back(partition.admit(nullptr, offset, 1));
        return events.back();
    }
    // What a worker does with its turn: takes every queued event (the callback), then ends the turn; `before_end`
    // runs as the callback's last act.
    template <typename F = void (*)()>
    static size_t run_turn(Lane& l, F before_end = [] {}) {
        size_t n;
        {
            std::lock_guard lock(l.mu);
            n = l.queue.size();
            l.queue.clear();
        }
        before_end();
        l.end_turn(Lane::TurnEnd::done);
        return n;
    }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "lane: work wakes an idle lane once, the turn ends idle, or back in line with more work") {
    auto l = lane();
    l->offer(event());
    l->offer(event());                    // already scheduled: not pushed twice
    CHECK(scheduler.pop() == l.get());
    CHECK(scheduler.remove(l.get()) == false);  // it was in line once
    CHECK(l->scheduled);
    CHECK(run_turn(*l) == 2);
    CHECK_FALSE(l->scheduled);  // nothing left: idle

    l->offer(event());
    CHECK(scheduler.pop() == l.get());
    l->offer(event());  // arrives during the turn
    {
        std::lock_guard lock(l->mu);
        l->queue.pop_front();  // the worker took only the first one
    }
    l->end_turn(Lane::TurnEnd::done);
    CHECK(l->scheduled);                 // more work: back in line
    CHECK(scheduler.pop() == l.get());
    CHECK(run_turn(*l) == 1);
}

TEST_CASE_FIXTURE(Fixture, "lane: a parked lane (quarantined) goes idle with its events, and takes no turn of its own") {
    auto l = lane();
    l->offer(event());
    REQUIRE(scheduler.pop() == l.get());
    l->end_turn(Lane::TurnEnd::park);
    CHECK_FALSE(l->scheduled);
    CHECK(l->queue.size() == 1);  // kept, uncommitted
    l->offer(event());            // new work wakes it again: the runner parks it again at once
    CHECK(scheduler.remove(l.get()));
}

TEST_CASE_FIXTURE(Fixture, "lane: a stop during a callback waits for it, or gives up at its deadline and resume undoes it") {
    auto l = lane();
    l->offer(event());
    REQUIRE(scheduler.pop() == l.get());  // a worker runs it: in its callback
    CHECK_FALSE(l->stop(Clock::now() + 20ms));  // the callback did not return in time
    CHECK(l->stopping);
    l->offer(event());  // events still arrive; the stopped lane keeps them
    CHECK_FALSE(scheduler.remove(l.get()));

    std::mutex m;
    std::condition_variable cv;
    bool waiting = false;
    std::thread stopper([&] {
        {
            std::lock_guard lock(m);
            waiting = true;
        }
        cv.notify_all();
        CHECK(l->stop());  // no deadline: until the callback returns
    });
    {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return waiting; });
    }
    {
        std::lock_guard lock(l->mu);
        l->queue.pop_front();  // the callback in progress returns with its event done
    }
    l->end_turn(Lane::TurnEnd::done);  // stopping: idle, whatever is queued
    stopper.join();
    CHECK_FALSE(l->scheduled);
    CHECK(l->queue.size() == 1);

    l->resume();  // a swap's end: the new code takes what waited
    CHECK(scheduler.pop() == l.get());
    CHECK(run_turn(*l) == 1);
}

TEST_CASE_FIXTURE(Fixture, "lane: a stop takes a lane waiting in line out at once, and a swap resumes it with its events") {
    auto l = lane();
    l->offer(event());
    l->offer(event());
    CHECK(l->stop(Clock::now() + 1h));  // in line, not running: no callback to wait for
    CHECK_FALSE(l->scheduled);
    CHECK_FALSE(scheduler.remove(l.get()));
    CHECK(l->queue.size() == 2);
    l->resume();
    CHECK(scheduler.pop() == l.get());
    CHECK(run_turn(*l) == 2);
}

TEST_CASE_FIXTURE(Fixture, "lane: a restart's delay brings the lane back after it, unless it is stopped meanwhile") {
    auto l = lane();
    l->offer(event());
    REQUIRE(scheduler.pop() == l.get());
    l->end_turn(Lane::TurnEnd::later, 5ms);  // the instance failed: re-created after its backoff
    CHECK(l->scheduled);
    CHECK(scheduler.pop() == l.get());  // due after 5 ms
    l->end_turn(Lane::TurnEnd::later, std::chrono::hours(1));
    CHECK(l->stop(Clock::now() + 1h));  // a revoke takes it out of the timed line
    CHECK_FALSE(l->scheduled);
    l->end_turn(Lane::TurnEnd::later, 1ms);  // a turn ending while stopping never re-queues it
    CHECK_FALSE(scheduler.remove(l.get()));
}

TEST_CASE_FIXTURE(Fixture, "lane: a recovering partition's lanes hold their events until the tables are recovered") {
    partition.recovering = true;
    auto a = lane(), b = lane();
    a->offer(event());
    b->offer(event());
    CHECK_FALSE(a->scheduled);
    CHECK_FALSE(b->scheduled);
    partition.recovering = false;
    a->wake();
    b->wake();
    CHECK(scheduler.remove(a.get()));
    CHECK(scheduler.remove(b.get()));
}

TEST_CASE_FIXTURE(Fixture, "lane: a revoke with work queued stops the lane, its events are released, never run") {
    auto l = lane();
    for (int i = 0; i < 3; ++i) l->offer(event());
    REQUIRE(l->stop());
    std::deque<InFlight*> queued;
    {
        std::lock_guard lock(l->mu);
        queued.swap(l->queue);
    }
    CHECK(queued.size() == 3);
    for (InFlight* f : queued) finish(f, 0);  // what release_lane does: uncommitted, for the next owner
    events.clear();
    CHECK(partition.committable() == 0);
    CHECK(partition.unfinished() == 0);
    l->wake();  // nothing to do: stays idle
    CHECK_FALSE(l->scheduled);
}

TEST_CASE_FIXTURE(Fixture, "lane: a lane gathering a batch goes at once when the batch fills") {
    spec.take = TakeSpec{};
    spec.take->max = 3;
    spec.take->within = std::chrono::hours(1);
    agent.set_spec(spec);
    auto l = lane();
    l->offer(event());
    REQUIRE(scheduler.pop() == l.get());
    {
        std::lock_guard lock(l->mu);
        l->batch_waiting = 1;  // the runner took one and waits for `within`
        l->queue.clear();
    }
    l->end_turn(Lane::TurnEnd::later, std::chrono::hours(1));
    l->offer(event());
    l->offer(event());  // 1 + 2: full
    CHECK(scheduler.pop() == l.get());  // now, not in an hour (a broken wake-up hangs here until the timeout)
}

TEST_CASE_FIXTURE(Fixture, "lane: with many givers and two workers, a lane runs on one worker at a time and every event runs") {
    constexpr int kLanes = 8, kGivers = 3, kEach = 2'000;
    std::vector<std::unique_ptr<Lane>> lanes;
    for (int i = 0; i < kLanes; ++i) lanes.push_back(lane());
    std::vector<std::atomic<int>> running(kLanes);
    std::atomic<int> overlaps{0}, ran{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 2; ++w)
        workers.emplace_back([&] {
            while (Lane* l = scheduler.pop()) {
                const auto i = static_cast<size_t>(std::find_if(lanes.begin(), lanes.end(),
                                                                [&](auto& p) { return p.get() == l; }) -
                                                   lanes.begin());
                if (running[i].fetch_add(1) != 0) overlaps++;
                ran += static_cast<int>(run_turn(*l, [&] { running[i].fetch_sub(1); }));
            }
        });
    std::vector<std::thread> givers;
    std::mutex events_mu;
    for (int g = 0; g < kGivers; ++g)
        givers.emplace_back([&, g] {
            for (int i = 0; i < kEach; ++i) {
                InFlight* f;
                {
                    std::lock_guard lock(events_mu);
                    f = event();
                }
                lanes[static_cast<size_t>((i + g) % kLanes)]->offer(f);
            }
        });
    for (auto& t : givers) t.join();
    for (auto& l : lanes) l->stop();  // waits for each lane's turn in progress
    int left = 0;
    for (auto& l : lanes) left += static_cast<int>(l->queue.size());
    scheduler.stop();
    for (auto& t : workers) t.join();
    CHECK(ran + left == kGivers * kEach);
    CHECK(overlaps == 0);
}
