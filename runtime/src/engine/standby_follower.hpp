#pragma once
// Standby replicas (Kafka Streams' standby tasks, `standby_replicas: N`): copies of table partitions this host
// does not own, kept current by following their changelogs, so that when the partition moves here its recovery
// reads only what the standby had not applied yet, not the whole changelog.
//
// One assign-mode consumer per pipeline (no group: nothing is committed) reads the changelog partitions the
// placement names, from the offset the local store persisted, and applies the records with their offset in
// RocksDB write batches into the same shards the partition uses when active. Where standbys belong is the
// host's business (the cluster view and the range assignor's successors; cluster/range_assignment.hpp): the
// follower asks `placement` once a second. A standby the placement no longer names is dropped, except when the
// placement moved because a member left the view: a dead owner's record can go stale before the group gives its
// partitions out, and the standby is wanted most right then. Then it is followed on until this host's consumer has
// been through a rebalance since (or kStandbyLinger passed).
//
// A standby is never served as if active: the partition becomes active only through the restorer, which calls
// take_over() before it reads the store's offset; from then on the follower leaves the partition alone, until
// release() after the revoke's last flush. A standby read (`?stale=ok`) goes through read() and says its lag.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "common/result.hpp"
#include "kafka/client_config.hpp"
#include "tables/table_store.hpp"

namespace mephisto {

using TablePartition = std::pair<std::string, int32_t>;  // (table, partition)

// Where this host keeps standbys, and the group's members the placement was computed from. Before this host
// joined the group and while it warms up (engine/warm_up.hpp), the partitions it will take.
struct StandbyPlacement {
    std::set<TablePartition> partitions;
    std::set<std::string> members;
    bool view_whole = false;  // computed from the whole cluster view (else `partitions` is empty for want of it)
};

struct StandbyStatus {
    std::string table;
    int32_t partition = 0;
    int64_t offset = -1;  // the changelog offset applied (persisted); -1: none
    int64_t lag = -1;     // records between it and the changelog's end as last fetched; -1: not known yet
};

class StandbyFollower {
public:
    // How long at most a standby the placement no longer names is followed on after a member left the view, while
    // no rebalance came: longer than a group takes to give out a dead member's partitions after its session timed
    // out (on the embedded broker, session.timeout.ms - 1 s more).
    static constexpr std::chrono::seconds kStandbyLinger{60};

    struct Services {
        std::string app_id;
        // bootstrap.servers and the pipeline's broker properties, for the follower's consumer.
        std::map<std::string, std::string> client_properties;
        std::shared_ptr<spdlog::logger> log;
        // The table partitions this host should keep standbys of now (those it owns are left out here). Called
        // on the follower's thread about once a second; must not block long.
        std::function<StandbyPlacement()> placement;
        // Counts this host's rebalances (Pipeline::rebalances).
        std::function<uint64_t()> generation;
    };
    // `stores`: the tables that have standbys, by name.
    StandbyFollower(Services services, std::map<std::string, TableStore*> stores);
    ~StandbyFollower();  // stops

    Status start();  // makes the consumer and starts the thread; an error fails the pipeline
    void stop();

    // The partition is becoming active here: the follower stops applying it, waiting for a batch in progress.
    // Returns the changelog offset the standby had applied when it was one here (nullopt when it was not).
    // THREAD: the recovery thread, before it reads the store's offset.
    std::optional<int64_t> take_over(const std::string& table, int32_t partition);
    // The partition was revoked and its last flush is done: it may be followed again. THREAD: the consumer's.
    void release(const std::string& table, int32_t partition);

    // Reads `key` from the standby of (table, partition): its value (nullopt when absent) and lag; an error when
    // this host keeps no standby of it. THREAD: any.
    struct StaleRead {
        std::optional<std::string> value;
        int64_t offset = -1;
        int64_t lag = -1;
    };
    Result<StaleRead> read(const std::string& table, int32_t partition, std::string_view key);

    std::vector<StandbyStatus> status() const;  // sorted by table and partition. THREAD: any.
    uint64_t records_applied() const { return records_applied_.load(); }  // THREAD: any.

private:
    struct Replica {
        TableShard* shard = nullptr;
        std::string changelog;
        int64_t read_next = 0;     // after what was read (records or an end of partition)
        int64_t applied_next = 0;  // after what is applied
        int64_t high = -1;         // the changelog's end as last fetched; -1: not known yet
        std::vector<TableChange> pending;
        std::optional<std::chrono::steady_clock::time_point> unwanted_since;  // the placement stopped naming it
    };
    void follow();
    void reconcile(rd_kafka_t* rk);  // follower thread: the placement against what is followed
    void apply_pending();            // follower thread, under mu_
    void reassign(rd_kafka_t* rk);   // follower thread, under mu_

    Services s_;
    std::map<std::string, TableStore*> stores_;
    std::map<std::string, std::string> table_of_changelog_;
    KafkaPtr consumer_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> records_applied_{0};

    mutable std::mutex mu_;  // guards the fields below; held while a batch is applied
    std::map<TablePartition, Replica> followed_;
    std::set<TablePartition> active_;  // owned here now: never followed
    bool changed_ = false;             // active_ changed since the last reconcile
    // Follower thread only: the members of the last placement, and while a member is missing from the view since,
    // the generation it went missing in (standbys no longer named linger until a rebalance came).
    std::set<std::string> members_;
    std::optional<uint64_t> member_lost_in_;
};

}  // namespace mephisto
