#pragma once
// One host's membership in a pipeline's cluster: it publishes its HostRecord (cluster/host_record.hpp) on the
// control topic `<app>-__cluster` every heartbeat, and follows that topic from the beginning, so it knows every
// host of the pipeline: where their admin APIs are, which partitions they hold, how far their tables are. A
// host that leaves writes a tombstone; a host that dies stops heartbeating and counts as gone once its last
// record is older than `stale_after`.
//
// One thread per member does both, with its own producer and an assign-mode consumer (no group: it reads every
// partition of the control topic). Records from other hosts are outside input: bounded, and a bad one is
// skipped with a warning, never fatal.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "cluster/host_record.hpp"
#include "common/result.hpp"
#include "kafka/client_config.hpp"
#include "kafka/topic_provisioner.hpp"

namespace mephisto {

struct ClusterMemberOptions {
    std::string app_id;
    std::string host_id;
    // bootstrap.servers and the pipeline's broker properties, for the member's producer and consumer.
    std::map<std::string, std::string> client_properties;
    TopicProvisioner* embedded = nullptr;  // creates the control topic on the embedded broker
    std::chrono::milliseconds heartbeat{1000};
    std::chrono::milliseconds stale_after{10'000};
    // This host's record now (pipeline, admin URL, member id, partitions, tables); the member sets the host id
    // and the times. Called on the member's thread at every heartbeat.
    std::function<HostRecord()> describe;
    // Changes when this host's record does (a rebalance): the member publishes at once instead of at the next
    // heartbeat. Read on the member's thread, often: it must be cheap.
    std::function<uint64_t()> version;
    std::shared_ptr<spdlog::logger> log;
};

// A host as this one last heard of it.
struct ClusterHost {
    HostRecord record;
    std::chrono::milliseconds age{0};  // since the heartbeat of its record, by this host's wall clock
};

// The control topic of pipeline `app`.
std::string control_topic(const std::string& app);

class ClusterMember {
public:
    // Starts the member's thread, which creates the control topic if needed (again every second until the broker
    // answers), publishes this host's record and follows the topic. Errors: the clients could not be made.
    static Result<std::unique_ptr<ClusterMember>> start(ClusterMemberOptions options);
    ~ClusterMember();  // leave() with a short budget, if not done

    // Tombstones this host's record, waiting up to `budget` for the broker to take it, and stops. THREAD: one.
    void leave(std::chrono::milliseconds budget);
    // Every live host of the pipeline, this one included, sorted by id. THREAD: any.
    std::vector<ClusterHost> hosts() const;
    // The control topic was read to the end it had at start: hosts() is the whole cluster. THREAD: any.
    bool caught_up() const { return caught_up_.load(); }
    const std::string& host_id() const { return options_.host_id; }

private:
    explicit ClusterMember(ClusterMemberOptions options) : options_(std::move(options)) {}
    Status open_topic();  // member thread: the control topic exists, and is assigned from its beginning
    void run();
    void publish();
    void read(const rd_kafka_message_t& message);
    void skipped(const std::string& what);  // a record not taken: said in the log, within limits
    void forget_stale();                     // drops the hosts silent past stale_after
    uint64_t skipped_ = 0;                   // member thread

    ClusterMemberOptions options_;
    std::string topic_;
    KafkaPtr producer_;
    KafkaPtr consumer_;
    std::vector<int64_t> initial_end_;  // per partition, the end when following started (member thread)
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex stop_mu_;  // with stop_cv_: a stop wakes the member waiting to try the broker again
    std::condition_variable stop_cv_;
    std::atomic<bool> opened_{false};  // the control topic was opened: there is a record to tombstone at leave
    uint64_t published_version_ = 0;  // member thread
    std::atomic<bool> caught_up_{false};
    int64_t started_ms_ = 0;
    bool left_ = false;

    mutable std::mutex mu_;  // guards hosts_
    std::map<std::string, HostRecord> hosts_;
};

}  // namespace mephisto
