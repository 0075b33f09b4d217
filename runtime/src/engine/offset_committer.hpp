#pragma once
// The commit (Kafka Streams' commit of a StreamTask's consumed offsets): for each assigned partition, the
// contiguous finished prefix of its ledger (engine/partition_ledger.hpp), held back by its tables until their
// changes reached the changelog (StateManager::gate), sent to the group; and the broker's confirmations.
// THREAD: the consumer thread (commit; the reports arrive through its poll), or the stopping one once it left.
#include <chrono>
#include <memory>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include "engine/partition_registry.hpp"
#include "engine/state_manager.hpp"

namespace mephisto {

class OffsetCommitter {
public:
    OffsetCommitter(rd_kafka_t* consumer, PartitionRegistry& partitions, StateManager& state,
                    std::shared_ptr<spdlog::logger> log)
        : consumer_(consumer), partitions_(partitions), state_(state), log_(std::move(log)) {}

    // Sends what may be committed. `sync`: waits for the broker's answer at most `timeout` (a revoke, the stop).
    // `start_flushes`: partitions with tables may start a changelog flush for what finished since the last one
    // (on the commit tick); false: commit only what finished flushes allow (when a flush completes), so flushes
    // run once per commit interval, each carrying everything a key changed since the last.
    void commit(bool sync, std::chrono::milliseconds timeout, bool start_flushes = true);
    // The report of an asynchronous commit (the consumer's offset_commit_cb): what the broker confirmed counts as
    // committed; what failed is sent again at the next tick (RELIABILITY 6).
    void on_report(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* offsets);

private:
    rd_kafka_t* consumer_;
    PartitionRegistry& partitions_;
    StateManager& state_;
    std::shared_ptr<spdlog::logger> log_;
};

}  // namespace mephisto
