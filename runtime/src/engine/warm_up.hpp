#pragma once
// Warm-up before joining (`warm_up:`; Kafka Streams' warm-up replicas, KIP-441). A host that starts while others
// already run the pipeline would, on joining, take partitions whose tables it does not hold, and each would pause
// for a recovery from the whole changelog. With a warm-up it first follows those changelogs as standbys (the
// standby follower, into the same stores) and joins the group only once each is within `acceptable_lag` records
// of its end: the partitions then move having replayed only that.
//
// Kafka Streams keeps a partition on its caught-up owner until the new one caught up, with its own assignor and
// probing rebalances; librdkafka has no pluggable assignor (CLUSTER.md), so the host warms up before it joins,
// which needs no assignor. What it warms is the host's business (the cluster view): its own share, when the
// group's order of members can be known before joining (static membership, the range assignor ordering by
// group.instance.id), else every partition. Nothing to warm when no other host runs the pipeline (a recovery
// does the same work, and nobody would process meanwhile). After `timeout` the host joins anyway: a warm-up that
// never catches up must not keep the host out (Kafka Streams' KAFKA-10199 is endless probing of that kind).
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "config/config.hpp"
#include "engine/standby_follower.hpp"

namespace mephisto {

class WarmUp {
public:
    enum class State { off, warming, caught_up, timed_out, skipped };
    struct Status {
        State state = State::off;
        size_t partitions = 0;   // the table partitions warmed
        size_t caught_up = 0;    // of those, within acceptable_lag of their end
        int64_t started_ms = 0;  // wall clock; 0: not started
        int64_t duration_ms = -1;
        std::string reason;      // why it was skipped, or what it waits for
    };
    static const char* name(State s);

    WarmUp(WarmUpSpec spec, std::shared_ptr<spdlog::logger> log) : spec_(spec), log_(std::move(log)) {}

    // Blocks until the partitions `placement` names are each within acceptable_lag of their changelog's end in
    // `standbys`, timeout passed, or `go_on` turned false. Returns at once when the warm-up is off or skipped.
    // THREAD: the consumer's, before it subscribes.
    void run(const std::atomic<bool>& go_on, const std::function<StandbyPlacement()>& placement,
             const std::function<std::vector<StandbyStatus>()>& standbys);
    // The host has no cluster view for this pipeline: join at once. THREAD: any.
    void skip(const std::string& why);
    // Warming now: the placement names the partitions to warm. Stays true after run() until `joined` (the first
    // assignment), so the warmed replicas are followed until the group gives them out. THREAD: any.
    bool warming(bool joined) const;
    Status status() const;  // THREAD: any.

private:
    const WarmUpSpec spec_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::mutex mu_;  // guards status_ and skip_
    Status status_;
    std::string skip_;  // set by skip()
};

}  // namespace mephisto
