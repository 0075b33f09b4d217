#include "engine/task_manager.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/logging.hpp"
#include "engine/consumer_loop.hpp"  // set_paused

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A lost assignment's revoke: outputs and table changes acknowledged within this are kept; the rest is processed
// again by the partitions' new owners.
constexpr milliseconds kLostRevokeBudget{500};

}  // namespace

void TaskManager::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
    const bool cooperative = !strcmp(rd_kafka_rebalance_protocol(s_.consumer), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign(partitions);
        *s_.joined = true;
        if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_assign(s_.consumer, partitions));
        else rd_kafka_assign(s_.consumer, partitions);
        // Partitions with tables wait, paused, until their tables are recovered; the others start at once.
        std::vector<PartitionState*> to_recover;
        {
            auto assigned = s_.partitions->lock();
            for (auto& [key, ps] : *assigned)
                if (ps->recovering) to_recover.push_back(ps.get());
        }
        if (!to_recover.empty()) {
            rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(to_recover.size()));
            for (auto* ps : to_recover) rd_kafka_topic_partition_list_add(list, ps->topic.c_str(), ps->partition);
            rd_kafka_pause_partitions(s_.consumer, list);
            rd_kafka_topic_partition_list_destroy(list);
            s_.state->restorer().start(std::move(to_recover));
        }
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            s_.log->warn("rebalance error: {}; dropping the assignment", rd_kafka_err2str(err));
        // Lost (the session timed out: the group has given the partitions to others): their commits cannot succeed
        // and what is unfinished is processed again by the new owners, so the revoke does not wait for the broker,
        // which is likely out of reach (it would hold the consumer up to shutdown_timeout).
        const bool lost = rd_kafka_assignment_lost(s_.consumer);
        if (lost && !s_.partitions->empty())
            s_.log->warn("the group's session timed out: this host's partitions belong to others now; stopping them");
        revoke_all(lost ? kLostRevokeBudget : s_.config->shutdown_timeout);
        if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_unassign(s_.consumer, partitions));
        else rd_kafka_assign(s_.consumer, nullptr);
    }
}

void TaskManager::assign(const rd_kafka_topic_partition_list_t* partitions) {
    std::string list;
    for (int i = 0; i < partitions->cnt; ++i) {
        const auto& tp = partitions->elems[i];
        auto ps = std::make_unique<PartitionState>();
        ps->count_against(s_.budget);
        ps->topic = tp.topic;
        ps->partition = tp.partition;
        if (const TopicSpec* spec = s_.config->topic(tp.topic)) ps->spec = *spec;
        ps->value_codec = s_.value_codec(ps->topic);
        ps->lanes = s_.lanes_for(*ps);
        ps->recovering = !ps->shards.empty();
        if (ps->topic == s_.config->leader_topic() && ps->partition == 0 && s_.config->has_leader_timers() &&
            !s_.leader->exchange(true))
            s_.log->info("this host now leads {} (it owns {}[0]): on_leader timers fire here", s_.config->app_id,
                         s_.config->leader_topic());
        list += (list.empty() ? "" : " ") + ps->topic + "[" + std::to_string(ps->partition) + "]";
        s_.partitions->add(std::move(ps));
    }
    if (partitions->cnt == 0) s_.log->info("no partitions assigned: this host idles until a rebalance gives it some");
    else s_.log->info("assigned {} partition(s): {}", partitions->cnt, list);
}

void TaskManager::finish_recoveries() {
    bool all_done = true;
    auto partitions = s_.partitions->lock();
    for (auto& [key, ps] : *partitions) {
        if (!ps->recovering) continue;
        if (!ps->recovered) {
            all_done = false;
            continue;
        }
        if (ps->table_failed) continue;  // stays paused: the error was logged by the recovery
        ps->recovering = false;
        set_paused(s_.consumer, *ps, false, *s_.log);
        for (auto& lane : ps->lanes) lane->wake();  // a stopped one: the swap resumes it
    }
    if (all_done) s_.state->restorer().join();
}

void TaskManager::revoke_all(milliseconds budget, std::vector<Lane*>* abandoned) {
    const auto deadline = Clock::now() + budget;
    std::set<const Lane*> left;  // lanes whose callback outlived the budget (only with `abandoned`)
    std::vector<std::unique_ptr<PartitionState>> revoked;
    if (s_.partitions->empty()) return;
    // 0. A recovery in progress is abandoned: the next owner recovers from what was persisted.
    s_.state->restorer().cancel();
    // 1. Stop handing events to lanes and wait for the event each worker is running to finish. Then instances
    //    say goodbye (on_revoked) before anything is committed: what they acknowledge or send there counts.
    {
        auto partitions = s_.partitions->lock();
        for (auto& [key, ps] : *partitions)
            for (auto& lane : ps->lanes) {
                if (!abandoned) {
                    lane->stop();
                } else if (!lane->stop(deadline)) {
                    left.insert(lane.get());
                    abandoned->push_back(lane.get());
                }
            }
        for (auto& [key, ps] : *partitions)
            for (auto& lane : ps->lanes)
                if (!left.count(lane.get())) s_.revoke_instance(*lane);
    }
    // 2. Outputs of finished events must be acknowledged before their inputs are committed; so must the
    //    table changes they made: a last changelog flush of every table partition, then wait for both.
    auto half_remaining = [&] {
        return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>((deadline - Clock::now()) / 2));
    };
    if (s_.producer && !s_.producer->flush(half_remaining()))
        s_.log->warn("outputs still unacknowledged at revoke; their inputs stay uncommitted");
    {
        auto partitions = s_.partitions->lock();
        for (auto& [key, ps] : *partitions) {
            if (ps->shards.empty() || ps->recovering || ps->table_failed) continue;
            const std::optional<int64_t> next = ps->committable();
            // A flush in progress stays in ps->flushes, beside the last one: the commit below waits for both,
            // and a change either one did not get into the changelog blocks it (StateManager::gate).
            for (auto& f : ps->flushes) f->shard->flush_in_progress = false;
            if (next && !ps->changelog_lost) s_.state->start_flush(*ps, *next);
        }
    }
    if (s_.producer && !s_.producer->flush(half_remaining()))
        s_.log->warn("table changes still unacknowledged at revoke; their inputs stay uncommitted");
    // 3. Commit the finished prefix of every partition.
    s_.committer->commit(true, std::max(milliseconds(100), std::chrono::duration_cast<milliseconds>(deadline - Clock::now())));
    // 4. Drop what was fetched but not finished (or not acknowledged, or waiting for a reply): it was not
    //    committed, so the next owner of the partition reads it again.
    revoked = s_.partitions->take_all();
    for (auto& ps : revoked) {
        // Flushes whose delivery reports may still come (the waits above can time out) stay alive.
        for (auto& f : ps->flushes)
            if (!f->done) s_.state->keep_abandoned(std::move(f));
        ps->flushes.clear();
        for (auto& lane : ps->lanes) {
            if (left.count(lane.get())) continue;  // still in its callback: what it holds stays uncommitted
            lane->ctx.tables.clear();
            s_.release_lane(*lane, 0);
        }
        // Another host may own the partition next; what it writes arrives through the changelog when the
        // partition comes back, so the cache must not outlive the assignment.
        s_.state->release(*ps);
        ps->mark_revoked();
    }
    s_.log->info("revoked {} partition(s)", revoked.size());
    if (s_.leader->exchange(false))
        s_.log->info("this host no longer leads {}: its on_leader timers stop", s_.config->app_id);
    // A revoked partition is kept while something still points at it: its unfinished events (an output's
    // delivery report, an ask's answer, a channel event caused by it); its lanes were stopped and released.
    s_.partitions->retire(std::move(revoked));
}

}  // namespace mephisto
