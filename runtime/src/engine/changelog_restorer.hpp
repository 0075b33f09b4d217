#pragma once
// Recovery of the tables of newly assigned partitions (Kafka Streams' StoreChangelogReader): one reader for every
// changelog partition to restore, on a thread of its own, and an applier writing each shard's records in RocksDB
// batches. Internal to the engine; the state manager (engine/state_manager.hpp) owns it.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "common/result.hpp"
#include "engine/partition_state.hpp"
#include "tables/table_store.hpp"

namespace mephisto {

class GlobalTableFollower;
class StandbyFollower;

// A table partition's recovery in progress.
struct RecoveryStatus {
    std::string table;
    int32_t partition = 0;
    int64_t remaining = 0;
};

// A table partition's recovery done, or abandoned by a revoke: what it replayed, and whether a standby here had
// most of it already. An abandoned one's records stay applied (with their offset): the next one goes on after them.
struct RecoveryRecord {
    std::string table;
    int32_t partition = 0;
    int64_t replayed = 0;                 // changelog records applied
    int64_t from = 0;                     // the first changelog offset read
    int64_t end = 0;                      // the changelog's end at assignment: [from, end) was read
    std::optional<int64_t> standby_offset;  // the offset the standby here had applied, when there was one
    int64_t started_ms = 0;               // wall clock, when the partition was assigned
    int64_t duration_ms = 0;              // from then until its tables were current (or it was abandoned)
    bool completed = true;                // false: abandoned (a rebalance during the recovery)
};

class ChangelogRestorer {
public:
    struct Services {
        std::string bootstrap;
        std::string app_id;
        std::map<std::string, std::string> client_properties;  // the pipeline's broker settings
        std::shared_ptr<spdlog::logger> log;
        std::function<void(const std::string&)> fail;  // the pipeline can no longer run (a store cannot be written)
        // The follower of a global table (it hands over partitions it already reads), null for the others.
        std::function<GlobalTableFollower*(const std::string& table)> follower;
        // The standby replicas' follower (null when the pipeline keeps none): a partition it follows is taken
        // over before its store's offset is read.
        std::function<StandbyFollower*()> standby;
    };
    explicit ChangelogRestorer(Services services) : s_(std::move(services)) {}
    ~ChangelogRestorer() { cancel(); }

    // Brings the shards of `partitions` up to their changelogs' ends, captured now, on the recovery thread; each
    // partition is marked `recovered` once all of its shards are (and `table_failed` when one could not be).
    // A restore still running (an incremental assignment's earlier one) finishes first. THREAD: the consumer's.
    void start(std::vector<PartitionState*> partitions);
    // Abandons the restore in progress and waits for its thread: what was read but not applied is read again
    // next time, from what the store persisted. THREAD: the consumer's.
    void cancel();
    // A restore was started and its thread not joined yet.
    bool active() const { return thread_.joinable(); }
    // Joins the thread of a restore that has marked every partition recovered.
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    // What each shard being restored has left. THREAD: any.
    std::vector<RecoveryStatus> status() const;
    // The last recoveries done (oldest first, at most kRecoveryHistory), and the records replayed by all of
    // them since the pipeline started. THREAD: any.
    static constexpr size_t kRecoveryHistory = 64;
    std::vector<RecoveryRecord> history() const;
    uint64_t records_replayed() const { return records_replayed_.load(); }

private:
    struct ShardRestore;
    void run(std::vector<PartitionState*> partitions);
    void restore_shards(std::deque<ShardRestore>& restores,
                        const std::function<void(ShardRestore&, const Status&)>& settle);

    Services s_;
    std::thread thread_;
    std::atomic<bool> cancel_{false};
    mutable std::mutex status_mu_;
    std::map<std::pair<std::string, int32_t>, int64_t> remaining_;  // (table, partition) -> records left
    std::deque<RecoveryRecord> history_;                            // guarded by status_mu_
    // What a standby here had applied when a restore took its shard over, kept while that restore is not done:
    // after a cancel (a rebalance during recovery) the next one takes over no standby, the first one did.
    std::map<const TableShard*, int64_t> standby_taken_;  // guarded by status_mu_
    std::atomic<uint64_t> records_replayed_{0};
    void record(RecoveryRecord done);
};

}  // namespace mephisto
