// Assignment and revocation (Kafka Streams' TaskManager): an assigned partition gets a lane per agent reading it
// (per concurrency slot), bound to its table shards; a revoke stops the lanes, lets the instances say goodbye,
// waits for outputs and changelog flushes, commits what finished and releases the rest for the next owner; a
// partition whose tables are restored resumes (finish_recoveries).
// THREAD: the consumer thread (rebalance callbacks), or the stopping thread once the consumer thread left.
#include "engine/pipeline.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/logging.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

}  // namespace

void Pipeline::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
    std::lock_guard swap_lock(swap_mutex_);
    const bool cooperative = !strcmp(rd_kafka_rebalance_protocol(consumer_.get()), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign(partitions);
        joined_ = true;
        if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_assign(consumer_.get(), partitions));
        else rd_kafka_assign(consumer_.get(), partitions);
        // Partitions with tables wait, paused, until their tables are recovered; the others start at once.
        std::vector<PartitionState*> to_recover;
        {
            auto assigned = partitions_.lock();
            for (auto& [key, ps] : *assigned)
                if (ps->recovering) to_recover.push_back(ps.get());
        }
        if (!to_recover.empty()) {
            rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(to_recover.size()));
            for (auto* ps : to_recover) rd_kafka_topic_partition_list_add(list, ps->topic.c_str(), ps->partition);
            rd_kafka_pause_partitions(consumer_.get(), list);
            rd_kafka_topic_partition_list_destroy(list);
            state_->restorer().start(std::move(to_recover));
        }
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            log_->warn("rebalance error: {}; dropping the assignment", rd_kafka_err2str(err));
        revoke_all(config_.shutdown_timeout);
        if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_unassign(consumer_.get(), partitions));
        else rd_kafka_assign(consumer_.get(), nullptr);
    }
}

void Pipeline::assign(const rd_kafka_topic_partition_list_t* partitions) {
    std::string list;
    for (int i = 0; i < partitions->cnt; ++i) {
        const auto& tp = partitions->elems[i];
        auto ps = std::make_unique<PartitionState>();
        ps->count_against(&dispatch_budget_);
        ps->topic = tp.topic;
        ps->partition = tp.partition;
        if (const TopicSpec* spec = config_.topic(tp.topic)) ps->spec = *spec;
        if (auto it = topic_codecs_.find(ps->topic); it != topic_codecs_.end()) ps->value_codec = it->second;
        for (auto& agent : agents_) {
            const auto& from = agent->spec->from;
            if (std::find(from.begin(), from.end(), ps->topic) == from.end()) continue;
            for (auto& lane : make_lanes(*agent, *ps)) ps->lanes.push_back(std::move(lane));
        }
        ps->recovering = !ps->shards.empty();
        if (ps->topic == config_.leader_topic() && ps->partition == 0 && config_.has_leader_timers() && !leader_.exchange(true))
            log_->info("this host now leads {} (it owns {}[0]): on_leader timers fire here", config_.app_id,
                       config_.leader_topic());
        list += (list.empty() ? "" : " ") + ps->topic + "[" + std::to_string(ps->partition) + "]";
        partitions_.add(std::move(ps));
    }
    if (partitions->cnt == 0) log_->info("no partitions assigned: this host idles until a rebalance gives it some");
    else log_->info("assigned {} partition(s): {}", partitions->cnt, list);
}

void Pipeline::finish_recoveries() {
    bool all_done = true;
    auto partitions = partitions_.lock();
    for (auto& [key, ps] : *partitions) {
        if (!ps->recovering) continue;
        if (!ps->recovered) {
            all_done = false;
            continue;
        }
        if (ps->table_failed) continue;  // stays paused: the error was logged by the recovery
        ps->recovering = false;
        set_paused(consumer_.get(), *ps, false, *log_);
        for (auto& lane : ps->lanes) lane->wake();  // a stopped one: the swap resumes it
    }
    if (all_done) state_->restorer().join();
}

std::vector<std::unique_ptr<Lane>> Pipeline::make_lanes(AgentRuntime& agent, PartitionState& ps) {
    std::vector<std::unique_ptr<Lane>> lanes;
    for (int slot = 0; slot < agent.spec->concurrency; ++slot) {
        lanes.push_back(make_lane(agent, ps));
        lanes.back()->slot = slot;
        lanes.back()->slots = agent.spec->concurrency;
    }
    return lanes;
}

std::unique_ptr<Lane> Pipeline::make_lane(AgentRuntime& agent, PartitionState& ps) {
    auto lane = std::make_unique<Lane>();
    lane->agent = &agent;
    lane->partition = &ps;
    lane->ctx.pipeline = this;
    lane->ctx.agent_name = agent.spec->name;
    lane->ctx.params = agent.params;
    lane->ctx.sinks = &agent.spec->sinks;
    lane->ctx.log = agent.log;
    lane->ctx.partition = ps.partition;
    lane->ctx.stats = &agent.stats;
    lane->ctx.lane = lane.get();
    lane->scheduler = &scheduler_;
    lane->mailbox = std::make_shared<LaneMailbox>();
    lane->mailbox->lane = lane.get();
    for (const auto& name : agent.spec->tables) {
        TableStore* store = state_->store(name);
        auto shard = store->shard(ps.partition);
        if (!shard) {
            fail(shard.error());
            continue;
        }
        lane->ctx.tables.push_back(TableBinding{name, store, *shard});
        if (store->spec().window) lane->windowed = true;
        if (std::find(ps.shards.begin(), ps.shards.end(), *shard) == ps.shards.end()) ps.shards.push_back(*shard);
    }
    return lane;
}

void Pipeline::revoke_all(milliseconds budget, std::vector<Lane*>* abandoned) {
    const auto deadline = Clock::now() + budget;
    std::set<const Lane*> left;  // lanes whose callback outlived the budget (only with `abandoned`)
    std::vector<std::unique_ptr<PartitionState>> revoked;
    if (partitions_.empty()) return;
    // 0. A recovery in progress is abandoned: the next owner recovers from what was persisted.
    state_->restorer().cancel();
    // 1. Stop handing events to lanes and wait for the event each worker is running to finish. Then instances
    //    say goodbye (on_revoked) before anything is committed: what they acknowledge or send there counts.
    {
        auto partitions = partitions_.lock();
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
                if (!left.count(lane.get())) revoke_instance(*lane);
    }
    // 2. Outputs of finished events must be acknowledged before their inputs are committed; so must the
    //    table changes they made: a last changelog flush of every table partition, then wait for both.
    auto half_remaining = [&] {
        return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>((deadline - Clock::now()) / 2));
    };
    if (producer_ && !producer_->flush(half_remaining()))
        log_->warn("outputs still unacknowledged at revoke; their inputs stay uncommitted");
    {
        auto partitions = partitions_.lock();
        for (auto& [key, ps] : *partitions) {
            if (ps->shards.empty() || ps->recovering || ps->table_failed) continue;
            const std::optional<int64_t> next = ps->committable();
            // A flush in progress stays in ps->flushes, beside the last one: the commit below waits for both,
            // and a change either one did not get into the changelog blocks it (StateManager::gate).
            for (auto& f : ps->flushes) f->shard->flush_in_progress = false;
            if (next && !ps->changelog_lost) state_->start_flush(*ps, *next);
        }
    }
    if (producer_ && !producer_->flush(half_remaining()))
        log_->warn("table changes still unacknowledged at revoke; their inputs stay uncommitted");
    // 3. Commit the finished prefix of every partition.
    committer_->commit(true, std::max(milliseconds(100), std::chrono::duration_cast<milliseconds>(deadline - Clock::now())));
    // 4. Drop what was fetched but not finished (or not acknowledged, or waiting for a reply): it was not
    //    committed, so the next owner of the partition reads it again.
    revoked = partitions_.take_all();
    for (auto& ps : revoked) {
        // Flushes whose delivery reports may still come (the waits above can time out) stay alive.
        for (auto& f : ps->flushes)
            if (!f->done) state_->keep_abandoned(std::move(f));
        ps->flushes.clear();
        for (auto& lane : ps->lanes) {
            if (left.count(lane.get())) continue;  // still in its callback: what it holds stays uncommitted
            lane->ctx.tables.clear();
            release_lane(*lane, 0);
        }
        // Another host may own the partition next; what it writes arrives through the changelog when the
        // partition comes back, so the cache must not outlive the assignment.
        state_->release(*ps);
        ps->mark_revoked();
    }
    log_->info("revoked {} partition(s)", revoked.size());
    if (leader_.exchange(false)) log_->info("this host no longer leads {}: its on_leader timers stop", config_.app_id);
    // A revoked partition is kept while something still points at it: its unfinished events (an output's
    // delivery report, an ask's answer, a channel event caused by it); its lanes were stopped and released.
    partitions_.retire(std::move(revoked));
}

}  // namespace mephisto
