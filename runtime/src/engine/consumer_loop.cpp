// The consumer loop (Kafka Streams' StreamThread poll loop): polls, hands each message to the lanes of the
// agents reading its partition, pauses partitions past the backpressure mark, and commits on the tick.
// THREAD: the consumer thread.
#include "engine/pipeline.hpp"

#include <algorithm>
#include <set>

#include "common/logging.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Backpressure (RELIABILITY 33). The pipeline's lanes hold at most kDispatchBudget (pipeline.hpp): above it the
// consumer waits, kBudgetWait at a time. A partition whose unfinished messages pass kPauseAbove alone is paused
// on the consumer and resumed below kResumeBelow, and so is the one holding the most once the budget stayed full
// for kFullBeforePause (slow lanes on a few partitions must not starve the others).
constexpr int64_t kPauseAbove = 20'000;
constexpr int64_t kResumeBelow = 5'000;
constexpr auto kBudgetWait = milliseconds(10);
constexpr auto kFullBeforePause = milliseconds(500);
constexpr auto kIdleCommitAfter = milliseconds(100);  // at most so often when the input stops and starts again
constexpr int kPollBurst = 5'000;  // messages taken from librdkafka per loop before housekeeping

}  // namespace

void Pipeline::consume_loop() {
    auto last_commit = Clock::now();
    std::optional<Clock::time_point> full_since;  // since when the lanes have held the whole budget
    std::set<std::string> missing_topics_reported;
    bool any_paused = false;
    while (consuming_) {
        rd_kafka_message_t* msg = nullptr;
        if (dispatch_budget_.full(paused_hold_)) {
            // The lanes hold enough: let the workers bring it down rather than pause partitions (see
            // dispatch_budget.hpp). Still one message per wait, as the group's callbacks come through the same
            // queue; and when the budget stays full, the partition holding the most of it pauses.
            if (dispatch_budget_.wait_for_room(paused_hold_, kBudgetWait)) {
                full_since.reset();
            } else if (!full_since) {
                full_since = Clock::now();
            } else if (Clock::now() - *full_since >= kFullBeforePause) {
                pause_largest();
                full_since = Clock::now();
            }
            msg = rd_kafka_consumer_poll(consumer_.get(), 0);
        } else {
            full_since.reset();
            // While a partition is paused, come back quickly to resume it: a 100 ms wait lets the lanes run dry.
            msg = rd_kafka_consumer_poll(consumer_.get(), any_paused ? 1 : 100);
        }
        const bool idle = !msg;  // nothing came within the wait
        for (int n = 0; msg; ++n) {
            if (msg->err) {
                if (msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
                    std::string topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?";
                    if (missing_topics_reported.insert(topic).second)
                        log_->warn("source topic {} does not exist yet; waiting for it (the host never creates "
                                   "source topics)", topic);
                } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    log_->warn("consumer: {}", rd_kafka_message_errstr(msg));
                }
                rd_kafka_message_destroy(msg);
            } else {
                dispatch(msg);
            }
            if (n >= kPollBurst || dispatch_budget_.full(paused_hold_)) break;
            msg = rd_kafka_consumer_poll(consumer_.get(), 0);
        }
        if (state_->restorer().active()) finish_recoveries();
        any_paused = apply_backpressure();
        // The tick; or sooner once the input has stopped and every event taken is finished: a pipeline that has
        // caught up commits what it did (and flushes its tables) within kIdleCommitAfter rather than up to
        // commit_interval later, so a quiet moment leaves nothing to process again after a crash.
        const auto since_commit = Clock::now() - last_commit;
        if (since_commit >= config_.commit_interval ||
            (idle && since_commit >= kIdleCommitAfter && dispatch_budget_.held().events == 0)) {
            (void)state_->take_flush_completed();  // this commit covers it
            commit(false, milliseconds(0));
            last_commit = Clock::now();
        } else if (state_->take_flush_completed()) {
            // A table flush finished: its inputs may be committed now. The next flush waits for the tick.
            commit(false, milliseconds(0), false);
        }
    }
}

PartitionState* Pipeline::find_partition(rd_kafka_message_t* msg) {
    if (msg->rkt == last_rkt_ && msg->partition == last_partition_) return last_state_;
    std::lock_guard lock(partitions_mutex_);
    auto it = partitions_.find({rd_kafka_topic_name(msg->rkt), msg->partition});
    if (it == partitions_.end()) return nullptr;
    last_rkt_ = msg->rkt;
    last_partition_ = msg->partition;
    last_state_ = it->second.get();
    return last_state_;
}

void Pipeline::dispatch(rd_kafka_message_t* msg) {
    PartitionState* ps = find_partition(msg);
    if (!ps || !ps->fetched(msg->offset)) {  // not ours (a stale fetch after revoke) or a repeat
        rd_kafka_message_destroy(msg);
        return;
    }
    // The lanes' shape holds still while the event is handed out (a topology reload may add or remove some).
    std::lock_guard lanes_lock(ps->lanes_mu);
    // One lane per agent takes the event: with concurrency, the instance its key hashes to (keyless: by offset).
    const size_t key_hash = msg->key ? std::hash<std::string_view>{}({static_cast<const char*>(msg->key), msg->key_len})
                                     : static_cast<size_t>(msg->offset);
    int receivers = 0;
    for (auto& lane : ps->lanes) receivers += lane->takes(key_hash);
    InFlight* f = ps->admit(msg, msg->offset, receivers);
    if (!f) return;  // nobody reads it here
    for (auto& lane : ps->lanes)
        if (lane->takes(key_hash)) lane->offer(f);
}

bool Pipeline::apply_backpressure() {
    std::lock_guard lock(partitions_mutex_);
    bool any_paused = false;
    DispatchBudget::Amount paused_hold;
    for (auto& [key, ps] : partitions_) {
        if (ps->recovering) {
            any_paused = true;  // paused for recovery; finish_recoveries resumes it
            continue;
        }
        const int64_t unfinished = ps->unfinished();
        const bool pause = !ps->paused && unfinished > kPauseAbove;
        const bool resume = ps->paused && unfinished < ps->resume_below;
        if (pause) ps->resume_below = kResumeBelow;
        if (pause || resume) set_paused(*ps, pause);
        if (ps->paused) {
            any_paused = true;
            paused_hold.events += unfinished;
            paused_hold.bytes += ps->unfinished_bytes();
        }
    }
    paused_hold_ = paused_hold;
    return any_paused;
}

void Pipeline::pause_largest() {
    std::lock_guard lock(partitions_mutex_);
    PartitionState* largest = nullptr;
    for (auto& [key, ps] : partitions_)
        if (!ps->paused && !ps->recovering && (!largest || ps->unfinished() > largest->unfinished())) largest = ps.get();
    if (!largest || largest->unfinished() == 0) return;
    largest->resume_below = std::max<int64_t>(largest->unfinished() / 2, 1);
    set_paused(*largest, true);
    paused_hold_.events += largest->unfinished();
    paused_hold_.bytes += largest->unfinished_bytes();
}

void Pipeline::set_paused(PartitionState& ps, bool pause) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, ps.topic.c_str(), ps.partition);
    if (pause) rd_kafka_pause_partitions(consumer_.get(), list);
    else rd_kafka_resume_partitions(consumer_.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    ps.paused = pause;
    log_->debug("{} {}[{}]: {} unfinished", pause ? "paused" : "resumed", ps.topic, ps.partition, ps.unfinished());
}

void Pipeline::commit(bool sync, milliseconds timeout, bool start_flushes) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
    {
        std::lock_guard lock(partitions_mutex_);
        for (auto& [key, ps] : partitions_) {
            const std::optional<int64_t> next = ps->committable();
            if (!next || ps->recovering || ps->table_failed || ps->changelog_lost) continue;
            int64_t target = *next;
            if (!ps->shards.empty()) {
                // Every change must reach the changelog before the input offset that caused it is committed.
                auto allowed = state_->gate(*ps, *next, start_flushes);
                if (!allowed) continue;
                target = *allowed;
            }
            if (!ps->should_commit(target, sync)) continue;
            rd_kafka_topic_partition_list_add(list, key.first.c_str(), key.second)->offset = target;
        }
    }
    if (list->cnt > 0) {
        if (!sync) {
            rd_kafka_commit(consumer_.get(), list, 1);
        } else {
            // A commit that waits at most `timeout`: the broker may be gone at shutdown.
            rd_kafka_queue_t* q = rd_kafka_queue_new(consumer_.get());
            rd_kafka_commit_queue(consumer_.get(), list, q, nullptr, nullptr);
            rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(std::max<int64_t>(timeout.count(), 1)));
            if (!ev) {
                log_->warn("final offset commit not confirmed within {} ms; the uncommitted events will be "
                           "processed again", timeout.count());
            } else {
                rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
                const rd_kafka_topic_partition_list_t* done = rd_kafka_event_topic_partition_list(ev);
                if (err) log_->warn("final offset commit failed: {}", rd_kafka_err2str(err));
                std::lock_guard lock(partitions_mutex_);
                for (int i = 0; !err && done && i < done->cnt; ++i) {
                    auto it = partitions_.find({done->elems[i].topic, done->elems[i].partition});
                    if (it != partitions_.end() && !done->elems[i].err) it->second->confirmed(done->elems[i].offset);
                }
                rd_kafka_event_destroy(ev);
            }
            rd_kafka_queue_destroy(q);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

}  // namespace mephisto
