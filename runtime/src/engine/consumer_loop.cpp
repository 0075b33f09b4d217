#include "engine/consumer_loop.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/logging.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Backpressure (RELIABILITY 33). The pipeline's lanes hold at most its dispatch budget: above it the
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

void ConsumerLoop::run(const std::atomic<bool>& consuming) {
    auto last_commit = Clock::now();
    std::optional<Clock::time_point> full_since;  // since when the lanes have held the whole budget
    std::set<std::string> missing_topics_reported;
    bool any_paused = false;
    while (consuming) {
        rd_kafka_message_t* msg = nullptr;
        if (s_.budget->full(paused_hold_)) {
            // The lanes hold enough: let the workers bring it down rather than pause partitions (see
            // dispatch_budget.hpp). Still one message per wait, as the group's callbacks come through the same
            // queue; and when the budget stays full, the partition holding the most of it pauses.
            if (s_.budget->wait_for_room(paused_hold_, kBudgetWait)) {
                full_since.reset();
            } else if (!full_since) {
                full_since = Clock::now();
            } else if (Clock::now() - *full_since >= kFullBeforePause) {
                pause_largest();
                full_since = Clock::now();
            }
            msg = rd_kafka_consumer_poll(s_.consumer, 0);
        } else {
            full_since.reset();
            // While a partition is paused, come back quickly to resume it: a 100 ms wait lets the lanes run dry.
            msg = rd_kafka_consumer_poll(s_.consumer, any_paused ? 1 : 100);
        }
        const bool idle = !msg;  // nothing came within the wait
        for (int n = 0; msg; ++n) {
            if (msg->err) {
                if (msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
                    std::string topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?";
                    if (missing_topics_reported.insert(topic).second)
                        s_.log->warn("source topic {} does not exist yet; waiting for it (the host never creates "
                                   "source topics)", topic);
                } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    s_.log->warn("consumer: {}", rd_kafka_message_errstr(msg));
                }
                rd_kafka_message_destroy(msg);
            } else {
                dispatch(msg);
            }
            if (n >= kPollBurst || s_.budget->full(paused_hold_)) break;
            msg = rd_kafka_consumer_poll(s_.consumer, 0);
        }
        if (s_.state->restorer().active()) s_.finish_recoveries();
        any_paused = apply_backpressure();
        // The tick; or sooner once the input has stopped and every event taken is finished: a pipeline that has
        // caught up commits what it did (and flushes its tables) within kIdleCommitAfter rather than up to
        // commit_interval later, so a quiet moment leaves nothing to process again after a crash.
        const auto since_commit = Clock::now() - last_commit;
        if (since_commit >= s_.commit_interval ||
            (idle && since_commit >= kIdleCommitAfter && s_.budget->held().events == 0)) {
            (void)s_.state->take_flush_completed();  // this commit covers it
            s_.committer->commit(false, milliseconds(0));
            last_commit = Clock::now();
        } else if (s_.state->take_flush_completed()) {
            // A table flush finished: its inputs may be committed now. The next flush waits for the tick.
            s_.committer->commit(false, milliseconds(0), false);
        }
    }
}

void ConsumerLoop::dispatch(rd_kafka_message_t* msg) {
    PartitionState* ps = s_.partitions->find(msg);
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

bool ConsumerLoop::apply_backpressure() {
    auto partitions = s_.partitions->lock();
    bool any_paused = false;
    DispatchBudget::Amount paused_hold;
    for (auto& [key, ps] : *partitions) {
        if (ps->recovering) {
            any_paused = true;  // paused for recovery; finish_recoveries resumes it
            continue;
        }
        const int64_t unfinished = ps->unfinished();
        const bool pause = !ps->paused && unfinished > kPauseAbove;
        const bool resume = ps->paused && unfinished < ps->resume_below;
        if (pause) ps->resume_below = kResumeBelow;
        if (pause || resume) set_paused(s_.consumer, *ps, pause, *s_.log);
        if (ps->paused) {
            any_paused = true;
            paused_hold.events += unfinished;
            paused_hold.bytes += ps->unfinished_bytes();
        }
    }
    paused_hold_ = paused_hold;
    return any_paused;
}

void ConsumerLoop::pause_largest() {
    auto partitions = s_.partitions->lock();
    PartitionState* largest = nullptr;
    for (auto& [key, ps] : *partitions)
        if (!ps->paused && !ps->recovering && (!largest || ps->unfinished() > largest->unfinished())) largest = ps.get();
    if (!largest || largest->unfinished() == 0) return;
    largest->resume_below = std::max<int64_t>(largest->unfinished() / 2, 1);
    set_paused(s_.consumer, *largest, true, *s_.log);
    paused_hold_.events += largest->unfinished();
    paused_hold_.bytes += largest->unfinished_bytes();
}

void set_paused(rd_kafka_t* consumer, PartitionState& ps, bool pause, spdlog::logger& log) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, ps.topic.c_str(), ps.partition);
    if (pause) rd_kafka_pause_partitions(consumer, list);
    else rd_kafka_resume_partitions(consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    ps.paused = pause;
    log.debug("{} {}[{}]: {} unfinished", pause ? "paused" : "resumed", ps.topic, ps.partition, ps.unfinished());
}

}  // namespace mephisto
