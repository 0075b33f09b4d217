#pragma once
// A global table (Faust's GlobalTable) on one host: every partition of the table is held here, kept current by
// reading the whole changelog for as long as the pipeline runs.
//
// One assign-mode consumer reads every partition of the changelog from the offset the store persisted and
// applies the records, with their offset, in one write batch per partition (as recovery does). The partitions
// this host owns are different: their instances write them, and their changes reach the store through the
// pipeline's changelog flushes. So ownership is handed over explicitly: take_ownership() waits until the
// follower has applied everything written before the assignment and from then on skips that partition's
// records (they are this host's own); release() gives it back to the follower after the revoke's last flush.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "common/result.hpp"
#include "config/config.hpp"
#include "kafka/client_config.hpp"
#include "tables/table_store.hpp"

namespace mephisto {

class GlobalTableFollower {
public:
    // `client_properties`: bootstrap and the pipeline's broker properties, for the follower's consumer.
    GlobalTableFollower(TableStore& store, int partitions, std::map<std::string, std::string> client_properties,
                        std::shared_ptr<spdlog::logger> log);
    ~GlobalTableFollower();  // stops the thread

    // Opens every partition's shard and starts following. An error here (no consumer) fails the pipeline; a
    // store ahead of its changelog does not: the table then refuses to serve, as a local table does.
    Status start();
    void stop();

    // Blocks until the follower applied partition `partition` up to its end now, then stops applying it: this
    // host owns it. Returns early (with an error) when `cancel` is set or the table cannot serve.
    Status take_ownership(int32_t partition, const std::atomic<bool>& cancel);
    // The partition's final flush is persisted; records written by its next owner are followed again.
    void release(int32_t partition);

    // Every partition was applied up to the end it had when following started.
    bool caught_up() const { return caught_up_.load(); }

private:
    void follow();
    void apply_pending();
    void apply_rewinds(rd_kafka_t* rk);  // follower thread: re-reads released partitions from the store's offset
    Status read_ends(rd_kafka_t* rk, std::vector<int64_t>& low, std::vector<int64_t>& high,
                     const std::atomic<bool>& cancel);

    TableStore& store_;
    const int partitions_;
    const std::map<std::string, std::string> properties_;
    std::shared_ptr<spdlog::logger> log_;
    std::string name_, changelog_;

    KafkaPtr consumer_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> caught_up_{false};

    // Read by the follower thread, not yet applied (follower thread only).
    std::vector<std::vector<TableChange>> pending_;
    std::vector<int64_t> read_next_;  // next offset after what was read (records or end-of-partition)

    mutable std::mutex mu_;  // guards the fields below
    std::condition_variable applied_cv_;
    std::vector<TableShard*> shards_;
    std::vector<int64_t> applied_next_;  // next offset after what is applied (or skipped, when owned)
    std::vector<bool> owned_;
    std::vector<int32_t> rewind_;  // released partitions to read again from their persisted offset
    std::vector<int64_t> initial_end_;
    std::string error_;  // set when the table cannot serve
};

}  // namespace mephisto
