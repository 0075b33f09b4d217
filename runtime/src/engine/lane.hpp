#pragma once
// One agent instance on one partition (a lane): the unit of ordering and of supervision. Its scheduling state
// machine is engine/lane.cpp; the lane runner (engine/lane_runner.cpp) delivers its events on a worker.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/agent_context.hpp"
#include "engine/failure_policy.hpp"
#include "engine/lane_scheduler.hpp"
#include "engine/partition_ledger.hpp"
#include "engine/reply_router.hpp"

namespace mephisto {

struct AgentRuntime;
struct PartitionState;

// What a worker (or the timer thread) is running of a plugin's, and since when: written by that thread,
// read by the pipeline's watch thread. `started_ns` (steady clock) is 0 between calls.
struct CallClock {
    std::atomic<int64_t> started_ns{0};
    std::atomic<const char*> name{nullptr};
    std::atomic<int64_t> offset{-1};
    // Watch thread only: the call last reported as hung (its start) and when it was reported.
    int64_t reported_call = 0;
    int64_t reported_at = 0;
};

// Where the answers to a lane's asks go. The reply router holds it weakly; `lane` is cleared when the lane's
// partition is revoked or its agent removed, so a late answer finds nobody and is dropped.
struct LaneMailbox : ReplyWaiter {
    std::mutex mu;
    Lane* lane = nullptr;
    int released_as = 0;  // once the lane is released: how the asking events' shares are finished (finish's
                          // `completed`: 0 at a revoke, 1 when the agent was removed)
};

// One agent instance on one partition: the unit of ordering and of supervision.
struct Lane {
    AgentRuntime* agent = nullptr;
    PartitionState* partition = nullptr;
    mph_agent_ctx ctx;

    LaneScheduler<Lane>* scheduler = nullptr;  // the pipeline's: where a lane waits for a worker

    std::mutex mu;                 // guards queue and scheduled
    std::condition_variable idle;  // signalled when scheduled turns false
    std::deque<InFlight*> queue;   // filled by the consumer thread
    bool scheduled = false;        // in the scheduler or running on a worker
    std::atomic<bool> stopping{false};

    // The scheduling state machine (engine/lane.cpp), the one place that decides when the lane runs:
    //   idle -> scheduled: work arrives (offer, give) or it resumes, and claim_turn() says so;
    //   scheduled -> idle: end_turn(), once it parked, was stopped or ran out of work; else to the back of the queue;
    //   stop(): it takes no more turns, and the turn in progress (a callback) ends, waited for until a deadline;
    //   resume(): it takes turns again.
    // Under mu: whether the lane should take a turn now; if so marks it scheduled, and the caller pushes it to the
    // scheduler (outside mu). It takes one when it is neither scheduled already nor stopped, its partition's
    // tables are not recovering, and it has something to do.
    bool claim_turn();
    // An event for the lane (the consumer thread, a channel's sender). A lane gathering a batch (take) that is
    // now full goes at once instead of waiting for `within`.
    void offer(InFlight* event);
    // Something else to do, given under mu by `add` (an answer to an ask), or nothing (its tables recovered).
    template <typename Add>
    void give(Add&& add) {
        bool schedule;
        {
            std::lock_guard lock(mu);
            add();
            schedule = claim_turn();
        }
        if (schedule) scheduler->push(this);
    }
    void wake() { give([] {}); }
    // The worker's turn ended: `park` (quarantined, failed), or `later` (a retry, a restart, a batch gathering)
    // after `delay`, or done.
    enum class TurnEnd { done, later, park };
    void end_turn(TurnEnd how, std::chrono::milliseconds delay = {});
    // It takes no more turns, and the turn in progress, if any, ends. Without a deadline it waits as long as that
    // takes (saying so every 5 s); with one (a plugin swap, a topology edit, a revoke's budget), false when the
    // callback had not returned by then: the lane stays marked stopping, and resume() undoes that.
    bool stop(std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
    void resume();
    // Under mu (or on the worker running it): events, replies or orphans wait for it.
    bool has_work() const { return !local.empty() || !queue.empty() || !replies.empty() || !orphans.empty(); }

    // Worker-only state (one worker at a time):
    std::deque<InFlight*> local;  // taken from queue; the head is the event being processed
    void* instance = nullptr;
    bool created = false;
    uint64_t generation = 0;
    AttemptCount tries;  // failed attempts at the event at the head (engine/failure_policy.hpp)
    bool windowed = false;  // uses a windowed table: events move its stream time (advance_windows)
    // concurrency: this lane is instance `slot` of the agent's `slots` on the partition; it gets the events
    // whose key hashes to it (keyless ones by offset).
    int slot = 0;
    int slots = 1;
    bool takes(size_t key_hash) const { return slots == 1 || static_cast<int>(key_hash % slots) == slot; }
    int64_t echoed = -1;  // echo: the last offset copied to the echo topics (a retry does not copy it again)
    // take (on_batch in batches): when the batch being gathered began, and while the lane waits for it to fill,
    // how many events it holds (dispatch wakes the lane early once the batch is full). Guarded by mu.
    std::chrono::steady_clock::time_point batch_since{};
    size_t batch_waiting = 0;  // 0: not waiting

    // ask: answers waiting for on_reply (guarded by mu; has_replies says "look" without the lock).
    std::shared_ptr<LaneMailbox> mailbox;
    std::deque<Answer> replies;
    std::atomic<bool> has_replies{false};
    // ack: manual (worker-only): events the instance finished but has not acknowledged, by offset; those a
    // destroyed instance left unacknowledged, for its successor; and acknowledgements of the events of the
    // callback in progress (the `in_callback` events at the head of `local`), applied when it returns OK.
    std::map<int64_t, InFlight*> held;
    std::vector<InFlight*> orphans;
    // The channels among its sinks (Channels::holds_back), for the sinks list they were found in: a topology
    // reload that changes the agent points ctx.sinks at a new list.
    std::vector<PartitionState*> channel_sinks;
    const std::vector<std::string>* channel_sinks_of = nullptr;
    std::vector<int64_t> early_acks;
    size_t in_callback = 0;
    CallClock call;  // the callback in progress (the hung-callback watch)
};

}  // namespace mephisto
