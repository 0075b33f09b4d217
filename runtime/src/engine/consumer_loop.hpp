#pragma once
// The consumer loop (Kafka Streams' StreamThread poll loop): polls, hands each message to the lanes of the
// agents reading its partition, holds back while the lanes hold the pipeline's dispatch budget (pausing the
// partitions that alone hold too much), and commits on the tick. Internal to the engine.
// THREAD: the consumer thread (run), which also runs the group's rebalance callbacks from inside its poll.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include "engine/dispatch_budget.hpp"
#include "engine/offset_committer.hpp"
#include "engine/partition_registry.hpp"
#include "engine/state_manager.hpp"

namespace mephisto {

// What the loop works with; the pipeline owns all of it.
struct ConsumerLoopServices {
    rd_kafka_t* consumer = nullptr;
    PartitionRegistry* partitions = nullptr;
    DispatchBudget* budget = nullptr;  // what the lanes of the pipeline may hold
    OffsetCommitter* committer = nullptr;
    StateManager* state = nullptr;
    std::chrono::milliseconds commit_interval{1000};
    std::shared_ptr<spdlog::logger> log;
    // The task manager's: resumes the partitions whose tables the restorer brought up to date.
    std::function<void()> finish_recoveries;
};

class ConsumerLoop {
public:
    explicit ConsumerLoop(ConsumerLoopServices services) : s_(std::move(services)) {}
    // Until `consuming` turns false.
    void run(const std::atomic<bool>& consuming);

private:
    void dispatch(rd_kafka_message_t* msg);
    bool apply_backpressure();  // true while some partition stays paused
    // The lanes have held the whole budget for a while: pauses the partition holding the most of it.
    void pause_largest();

    ConsumerLoopServices s_;
    DispatchBudget::Amount paused_hold_;  // what the paused partitions hold of the budget
};

// Pauses or resumes fetching `ps` on the consumer. THREAD: the consumer thread.
void set_paused(rd_kafka_t* consumer, PartitionState& ps, bool pause, spdlog::logger& log);

}  // namespace mephisto
