#pragma once
// The at-least-once core (DESIGN.md §2): an input's offset is committed only after every agent reading it
// finished it and every output it caused was acknowledged by the broker, and only as a contiguous prefix.
//  - InFlight: one consumed message (or channel event) and the shares still held on it: one per agent reading
//    it, one per output not yet acknowledged, per ask waiting for its answer, per channel event it caused.
//  - finish(): lets go of one share. The last one marks the offset finished in its partition's ledger, then
//    lets go of the event's cause (a channel event's sender), so a chain through channels finishes in order.
//  - PartitionLedger: the offsets of one partition fetched and finished, and what its commit sent and the broker
//    confirmed.
// Threads: the consumer thread admits messages and commits; any thread finishes shares. Nothing here knows
// Kafka beyond owning the consumed message, so tests/core drives it in-process.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "engine/dispatch_budget.hpp"
#include "engine/offset_tracker.hpp"

namespace mephisto {

class PartitionLedger;
struct InFlight;

// What a produced message's delivery report belongs to: an input (its outputs), a changelog flush, or a dead
// letter.
struct DeliveryTag {
    enum class Kind : uint8_t { input, flush, dead_letter } kind;
};

// An event sent to a channel (Faust's app.channel: in memory, this host only): what a consumed message would
// carry. It holds a share of the event whose callback sent it, so that one is not committed before every
// agent reading the channel finished this one: a crash loses the channel's contents, never their cause.
struct ChannelEvent {
    // Key and value in one buffer (one allocation): the key's bytes, then the value's.
    std::string bytes;
    int64_t key_len = -1;    // -1: no key
    int64_t value_len = -1;  // -1: no value (a tombstone)
    std::optional<std::string_view> key() const {
        if (key_len < 0) return std::nullopt;
        return std::string_view(bytes.data(), static_cast<size_t>(key_len));
    }
    std::optional<std::string_view> value() const {
        if (value_len < 0) return std::nullopt;
        return std::string_view(bytes.data() + std::max<int64_t>(key_len, 0), static_cast<size_t>(value_len));
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> headers;
    int64_t timestamp_ms = 0;
    int64_t sequence = 0;       // its position in the channel: the event's offset
    InFlight* cause = nullptr;  // null when a timer sent it
    // The ledger of the consumed message at the start of the chain of causes (null: a timer started it): once
    // that partition is revoked, the chain's events are dropped. The chain keeps the message alive: each link
    // holds a share of its cause.
    const PartitionLedger* origin = nullptr;
    // A batch token (PartitionLedger::hold_batch) is not an event: it holds a share of each event of a batch, so
    // what the callback sent is tracked against all of them.
    bool batch_token = false;
    std::vector<InFlight*> batch;
};

// One consumed message (or channel event) on its way through the agents that read it.
struct InFlight : DeliveryTag {
    InFlight() : DeliveryTag{Kind::input} {}
    rd_kafka_message_t* message = nullptr;  // a consumed message (owned; null in the core tests), or null for:
    ChannelEvent* channel_event = nullptr;  // an event sent to a channel (allocated with it: ChannelInFlight)
    int64_t position = -1;                        // the message's offset, or the channel event's sequence
    int64_t offset() const { return position; }
    PartitionLedger* ledger = nullptr;  // of its partition (or channel)
    bool commits = false;               // its offset counts for the commit (a consumed message)
    // Shares: agents still processing it + outputs not yet acknowledged + ... The event is finished at zero.
    std::atomic<int> pending{0};
    std::atomic<bool> abandoned{false};  // some share was dropped: never mark the offset finished
    // Run when the event is finished (not abandoned), before its offset may be committed: what must be stored
    // only once everything the event produced is acknowledged (a window close mark). Rarely set.
    std::unique_ptr<std::vector<std::function<void()>>> on_finished;
};

// A channel event and its tracking, in one allocation (channel events are as many as the messages).
struct ChannelInFlight : InFlight {
    ChannelEvent event;
};

// Takes one more share of `event`: something it caused (an output, an ask, a dead letter) is on its way.
inline void add_share(InFlight* event) { event->pending.fetch_add(1, std::memory_order_relaxed); }

// Lets go of one share of `event`. `completed` 0: the share is abandoned (a revoke, a shutdown, a failed
// delivery): the offset stays unfinished, so it is never committed and the next owner of the partition reads
// it again. At the last share the event is released, and so is one share of its cause (and, for a batch token,
// of each event of its batch), along the whole chain. THREAD: any.
void finish(InFlight* event, int completed = 1);

class PartitionLedger {
public:
    virtual ~PartitionLedger() = default;

    // Consumer thread: the message fetched at `offset`; false for an offset already seen (a re-fetch after a
    // seek), which must not be processed twice.
    bool fetched(int64_t offset);
    // Consumer thread: the message fetched at `offset` (after fetched()) goes to `receivers` agents. Takes
    // `message` (null in tests). With no receiver it is finished at once: nobody here reads it.
    InFlight* admit(rd_kafka_message_t* message, int64_t offset, int receivers);
    // A channel event sent by the callback holding `cause` (null: a timer's), for `receivers` agents of this
    // channel: it holds a share of its cause until it is finished. THREAD: the sender's.
    InFlight* admit_sent(ChannelEvent&& event, InFlight* cause, int receivers);
    // A channel lane's batch mixes causes, and only the lowest offset of a topic's batch holds its commit back: a
    // token holding a share of each of `events`, to track a callback's outputs against all of them. The caller
    // owns one share of the token (finish it once the callback returned). THREAD: the lane's worker.
    InFlight* hold_batch(const std::vector<InFlight*>& events);

    // The offset to commit: the first one fetched and not finished, or the one after the last fetched when
    // everything is; nullopt before anything was fetched. THREAD: any.
    std::optional<int64_t> committable() const;
    // Events admitted and not finished (backpressure, draining, and when a revoked partition may be freed).
    int64_t unfinished() const { return unfinished_.load(std::memory_order_acquire); }
    // The keys and values of the consumed messages among them.
    int64_t unfinished_bytes() const { return unfinished_bytes_.load(std::memory_order_relaxed); }
    // The pipeline's budget the consumed messages count against (engine/dispatch_budget.hpp); set before any is
    // admitted, and it outlives the ledger.
    void count_against(DispatchBudget* budget) { budget_ = budget; }

    // The commit (consumer thread, except the confirmations). Whether `target` should go to the broker now: it
    // passes what the broker confirmed and, unless `sync`, what was sent already and is not answered yet.
    bool needs_commit(int64_t target, bool sync) const {
        return target > committed() && (sync || target != commit_sent_);
    }
    // needs_commit, and when it does, `target` is recorded as sent.
    bool should_commit(int64_t target, bool sync);
    // The broker confirmed the group's offset (a commit's report, or the group's offset read at assignment).
    void confirmed(int64_t offset);
    // The commit of `offset` failed: the next tick sends it again.
    void commit_failed(int64_t offset);
    int64_t committed() const { return committed_.load(std::memory_order_acquire); }

    // Calls `drained` whenever the unfinished events drop to `mark` (a channel below its maxsize's low mark: the
    // agents held back by it go on). Set before any event is admitted; `drained` runs on the finishing thread.
    void on_drained_to(int64_t mark, std::function<void()> drained) {
        drain_mark_ = mark;
        drained_ = std::move(drained);
    }

    // Once revoked, channel events this partition caused are dropped (its next owner reads their cause again).
    void mark_revoked() { revoked_.store(true, std::memory_order_relaxed); }
    bool revoked() const { return revoked_.load(std::memory_order_relaxed); }

private:
    friend void finish(InFlight* event, int completed);
    void finished(const InFlight& event);  // the last share of an event went

    mutable std::mutex mu_;  // guards tracker_
    OffsetTracker tracker_;
    std::atomic<int64_t> unfinished_{0};
    std::atomic<int64_t> unfinished_bytes_{0};
    DispatchBudget* budget_ = nullptr;
    std::atomic<bool> revoked_{false};
    int64_t commit_sent_ = -1;  // consumer thread only
    std::atomic<int64_t> committed_{-1};
    int64_t drain_mark_ = -1;  // fixed before traffic
    std::function<void()> drained_;
};

}  // namespace mephisto
