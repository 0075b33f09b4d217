// The pipeline's dispatch budget in-process (engine/dispatch_budget): when the consumer must stop taking
// messages, what the paused partitions' events change, and that finishing events wakes the waiting consumer.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "engine/dispatch_budget.hpp"
#include "engine/partition_ledger.hpp"

using mephisto::DispatchBudget;
using mephisto::finish;
using mephisto::InFlight;
using mephisto::PartitionLedger;
using namespace std::chrono_literals;

TEST_CASE("the budget is full at its mark in events or in bytes, less what paused partitions hold") {
    DispatchBudget budget({10, 1'000});
    const DispatchBudget::Amount none;
    for (int i = 0; i < 9; ++i) budget.taken(10);
    CHECK_FALSE(budget.full(none));
    budget.taken(10);
    CHECK(budget.full(none));                 // 10 events
    CHECK_FALSE(budget.full({4, 40}));        // 4 of them are a paused partition's
    budget.released(10);
    CHECK_FALSE(budget.full(none));
    budget.taken(991);                        // 10 events again, 1,081 bytes
    CHECK(budget.full({5, 0}));               // 5 events, but 1,081 bytes: full in bytes
    CHECK(budget.full({5, 40}));              // 1,041 bytes
    CHECK_FALSE(budget.full({5, 100}));       // 981 bytes
    CHECK(budget.held().events == 10);
    CHECK(budget.held().bytes == 1'081);
}

TEST_CASE("waiting for room: at once when there is, until the timeout when nothing finishes") {
    DispatchBudget budget({4, 1'000'000});
    for (int i = 0; i < 4; ++i) budget.taken(1);
    CHECK_FALSE(budget.wait_for_room({}, 1ms));
    CHECK(budget.wait_for_room({2, 0}, 1ms));  // half of them paused: the rest is at half the mark
    budget.released(1);
    budget.released(1);
    CHECK(budget.wait_for_room({}, 0ms));  // 2 of 4: half the mark
}

TEST_CASE("the workers finishing events wake the consumer waiting for room, without its timeout") {
    DispatchBudget budget({1'000, 1'000'000'000});
    for (int i = 0; i < 1'000; ++i) budget.taken(100);
    std::atomic<bool> woken{false};
    const auto started = std::chrono::steady_clock::now();
    std::thread consumer([&] { woken = budget.wait_for_room({}, 60s); });
    std::vector<std::thread> workers;
    for (int w = 0; w < 2; ++w)
        workers.emplace_back([&] {
            for (int i = 0; i < 250; ++i) budget.released(100);
        });
    for (auto& t : workers) t.join();
    consumer.join();
    CHECK(woken);
    // Woken by the releases, not by the 60 s timeout (a bound for a lost wake-up, not a speed figure).
    CHECK(std::chrono::steady_clock::now() - started < 30s);
    CHECK(budget.held().events == 500);
}

TEST_CASE("a partition's consumed events count against the budget from admit until finished, fan-out included") {
    DispatchBudget budget({3, 1'000});
    PartitionLedger ledger;
    ledger.count_against(&budget);
    std::vector<InFlight*> events;
    for (int64_t offset = 0; offset < 3; ++offset) {
        REQUIRE(ledger.fetched(offset));
        events.push_back(ledger.admit(nullptr, offset, offset == 1 ? 2 : 1));  // offset 1 goes to two agents
    }
    CHECK(budget.full({}));
    CHECK(ledger.unfinished() == 3);
    finish(events[1]);  // one of its two agents
    CHECK(budget.held().events == 3);
    finish(events[1]);
    CHECK(budget.held().events == 2);
    finish(events[0], 0);  // abandoned (a revoke): it still leaves the budget
    CHECK(budget.held().events == 1);
    finish(events[2]);
    CHECK(budget.held().events == 0);
    CHECK(ledger.unfinished() == 0);
    CHECK(ledger.unfinished_bytes() == 0);
    // A message nobody here reads (its agents removed) is finished at admit: it never holds the budget.
    REQUIRE(ledger.fetched(3));
    CHECK(ledger.admit(nullptr, 3, 0) == nullptr);
    CHECK(budget.held().events == 0);
}
