#pragma once
// Assignment and revocation (Kafka Streams' TaskManager): an assigned partition gets a lane per agent reading it
// (per concurrency slot), bound to its table shards; a revoke stops the lanes, lets the instances say goodbye,
// waits for outputs and changelog flushes, commits what finished and releases the rest for the next owner; a
// partition whose tables are restored resumes. Internal to the engine.
// THREAD: the consumer thread (the group's rebalance callbacks come from its poll), or the stopping one once it
// left; the caller serializes it with plugin swaps and topology reloads.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include "config/config.hpp"
#include "engine/dispatch_budget.hpp"
#include "engine/lane.hpp"
#include "engine/offset_committer.hpp"
#include "engine/partition_registry.hpp"
#include "engine/state_manager.hpp"
#include "kafka/producer.hpp"

namespace mephisto {

// What the task manager works with; the pipeline owns all of it.
struct TaskManagerServices {
    rd_kafka_t* consumer = nullptr;
    PartitionRegistry* partitions = nullptr;
    DispatchBudget* budget = nullptr;  // the partitions' events count against it
    OffsetCommitter* committer = nullptr;
    StateManager* state = nullptr;
    Producer* producer = nullptr;  // its outputs must be acknowledged before a revoke commits
    const PipelineConfig* config = nullptr;
    std::shared_ptr<spdlog::logger> log;
    std::atomic<bool>* joined = nullptr;  // set at the first assignment (possibly empty)
    std::atomic<bool>* leader = nullptr;  // this host owns partition 0 of the app's leader topic
    // The lanes a newly assigned partition gets: one per agent reading its topic and concurrency slot. It also
    // binds the partition to the agents' table shards (ps.shards).
    std::function<std::vector<std::unique_ptr<Lane>>(PartitionState& ps)> lanes_for;
    // The plugin's value codec of a topic, or null.
    std::function<const mph_codec_descriptor*(const std::string& topic)> value_codec;
    // The lane runner's: on_revoked then destroy (the instance's goodbye); and the lane leaving for good, what it
    // holds finished with `completed` (0: abandoned, read again by the partition's next owner).
    std::function<void(Lane&)> revoke_instance;
    std::function<void(Lane&, int completed)> release_lane;
};

class TaskManager {
public:
    explicit TaskManager(TaskManagerServices services) : s_(std::move(services)) {}

    // The consumer's rebalance callback.
    void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
    // Revokes every partition within `budget`. With `abandoned`, a lane whose callback does not return by then
    // is left as it is (its events stay uncommitted) and listed there; without, the revoke waits for it.
    void revoke_all(std::chrono::milliseconds budget, std::vector<Lane*>* abandoned = nullptr);
    // Resumes the partitions whose tables the restorer brought up to date. THREAD: the consumer's.
    void finish_recoveries();

private:
    void assign(const rd_kafka_topic_partition_list_t* partitions);

    TaskManagerServices s_;
};

}  // namespace mephisto
