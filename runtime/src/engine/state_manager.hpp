#pragma once
// A pipeline's tables (Kafka Streams' ProcessorStateManager): their stores and changelogs, the copartitioning
// check, the changelog flushes that gate input commits, the global tables' followers and the restorer of newly
// assigned partitions. Internal to the engine.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include "common/result.hpp"
#include "config/config.hpp"
#include "engine/changelog_restorer.hpp"
#include "engine/global_table_follower.hpp"
#include "engine/partition_state.hpp"
#include "engine/standby_follower.hpp"
#include "tables/codec.hpp"
#include "tables/table_store.hpp"

namespace mephisto {

class Producer;
class TopicAdmin;

class StateManager {
public:
    struct Services {
        const PipelineConfig* config = nullptr;  // the pipeline's; its tables never change while it runs
        std::string bootstrap;
        std::shared_ptr<spdlog::logger> log;
        std::function<void(const std::string&)> fail;  // the pipeline can no longer run
        // Where this host keeps standby replicas now (StandbyFollower::Services::placement); used when a table
        // has standby_replicas.
        std::function<StandbyPlacement()> standby_placement;
        std::function<uint64_t()> generation;  // counts the consumer's rebalances
    };
    // `types`: each table's codec and aggregator, resolved from the plugins.
    StateManager(Services services, std::map<std::string, TableTypes> types);

    // At start, once the producer exists: refuses copartitioned topics of different partition counts, opens the
    // stores, makes sure the changelogs exist and starts the global tables' followers. Flushes produce through
    // `producer`. THREAD: the starting one.
    Status open(TopicAdmin& topics, Producer& producer);
    // At stop, after the producer stopped: flushes still waiting for reports are dropped, followers stop.
    void close();

    // The stores, by table name; fixed once open. THREAD: any.
    const std::map<std::string, std::unique_ptr<TableStore>>& stores() const { return stores_; }
    TableStore* store(const std::string& table) const;
    int partitions(const std::string& table) const;  // of its changelog; 0 for an unknown table
    GlobalTableFollower* follower(const std::string& table) const;  // null unless a global table
    // null unless a table has standby_replicas or the pipeline warms up
    StandbyFollower* standby() const { return standby_.get(); }

    // Changelog flushes. THREAD: the consumer's (or the stopping one once it left).
    // The input offset of `ps` that may be committed now (up to `next`), starting a changelog flush for what
    // its shards changed when `start_flushes` allows; nullopt while a flush is on its way.
    std::optional<int64_t> gate(PartitionState& ps, int64_t next, bool start_flushes = true);
    // Sends what the shards of `ps` changed since the last flush, for input offset `next`.
    void start_flush(PartitionState& ps, int64_t next);
    // A flush whose reports may still come after its partition was revoked: kept alive until close.
    void keep_abandoned(std::unique_ptr<ShardFlush> flush) { abandoned_flushes_.push_back(std::move(flush)); }
    // A changelog record's delivery report. THREAD: the producer's.
    void on_flush_delivery(ShardFlush* flush, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg);
    // True once since a flush completed: its inputs may be committed now rather than a tick later.
    bool take_flush_completed() { return flush_completed_.exchange(false); }
    // A revoked partition's shards: their caches go (the next owner writes through the changelog), and global
    // followers and standbys take their partitions back.
    void release(PartitionState& ps);

    ChangelogRestorer& restorer() { return *restorer_; }
    const ChangelogRestorer& restorer() const { return *restorer_; }

private:
    Status check_copartitioning(TopicAdmin& topics);
    Status open_stores(TopicAdmin& topics);
    Status start_followers();
    Status start_standbys();

    Services s_;
    std::map<std::string, TableTypes> types_;
    Producer* producer_ = nullptr;
    std::map<std::string, std::unique_ptr<TableStore>> stores_;
    std::map<std::string, int> partitions_;  // table -> partitions of its changelog
    // Global tables' followers, standbys, then the restorer: declared after the stores so they stop before those close.
    std::map<std::string, std::unique_ptr<GlobalTableFollower>> followers_;
    std::unique_ptr<StandbyFollower> standby_;
    std::unique_ptr<ChangelogRestorer> restorer_;
    std::atomic<bool> flush_completed_{false};
    std::vector<std::unique_ptr<ShardFlush>> abandoned_flushes_;  // unfinished at revoke; kept for late reports
};

}  // namespace mephisto
