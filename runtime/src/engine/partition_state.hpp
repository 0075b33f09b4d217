#pragma once
// One assigned partition (or channel) as the engine's parts see it: its ledger, its lanes and its table shards;
// and a table shard's changelog flush. Internal to the engine.
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/call_slots.hpp"
#include "config/config.hpp"
#include "engine/lane.hpp"
#include "engine/partition_ledger.hpp"
#include "tables/table_store.hpp"

namespace mephisto {

// The changes of one table shard on their way to its changelog. When every record is acknowledged, they are
// persisted with the changelog offset of the last one, and the input offset the flush was started for may be
// committed.
struct ShardFlush : DeliveryTag {
    ShardFlush() : DeliveryTag{Kind::flush} {}
    TableShard* shard = nullptr;
    uint64_t epoch = 0;  // the shard's epoch when the flush started: persisted only if still current
    std::vector<TableChange> changes;
    std::atomic<int> outstanding{0};
    int64_t last_offset = -1;  // producer thread only
    std::atomic<bool> done{false};
    std::atomic<bool> failed{false};  // not persisted locally
    std::atomic<bool> lost{false};    // some change did not reach the changelog (implies failed)
};

// One assigned partition (or channel): its ledger (engine/partition_ledger.hpp), its lanes and its tables.
struct PartitionState : PartitionLedger {
    // Its topic name may have been copied into the calls in progress (common/call_slots.hpp).
    ~PartitionState() { call_slots::names_freed(); }
    std::string topic;
    int32_t partition = 0;
    // A channel (in memory, this host only): the lanes of the agents reading it; no consumer, no offsets to
    // commit, never revoked. Its events are numbered by `channel_sequence`.
    bool channel = false;
    bool closed = false;  // a channel at stop: sends to it are refused (guarded by lanes_mu)
    int64_t maxsize = 0;            // a channel: its spec's maxsize (fixed)
    std::atomic<bool> full{false};  // a channel past maxsize, until it drained below three quarters of it
    // A channel: the lanes waiting for it to drain (Channels::holds_back); woken when it did.
    std::mutex held_writers_mu;
    std::vector<Lane*> held_writers;
    std::atomic<int64_t> channel_sequence{0};
    std::optional<TopicSpec> spec;  // its declaration, when the YAML declares it (a copy: reloads replace the YAML)
    const mph_codec_descriptor* value_codec = nullptr;  // a plugin's codec for the values, when the topic names one
    std::atomic<bool> committed_fetched{false};  // the group's committed offset was asked for (the watch thread)
    bool paused = false;                 // consumer thread only
    int64_t resume_below = 0;            // consumer thread only: while paused, the unfinished count it resumes at
    // The lanes of the agents reading this partition. Their shape changes in assign (consumer thread) and in
    // a topology reload, which holds partitions_mutex_ and lanes_mu; dispatch holds lanes_mu only.
    std::mutex lanes_mu;
    std::vector<std::unique_ptr<Lane>> lanes;

    // Tables (consumer thread unless noted): the shards the lanes use, the flush in progress and the input
    // offset it was started for, and recovery. While recovering, the partition is paused and its lanes idle.
    std::vector<TableShard*> shards;
    std::vector<std::unique_ptr<ShardFlush>> flushes;
    int64_t flush_commit = -1;
    // A change of its tables never reached the changelog: nothing more of this partition is committed.
    bool changelog_lost = false;
    bool recovering = false;
    std::atomic<bool> recovered{false};      // set by the recovery thread
    std::atomic<bool> table_failed{false};   // recovery refused: the partition never resumes
};

}  // namespace mephisto
