#pragma once
// Channels (Faust's app.channel): in-memory streams between the agents of one host. A channel is a
// PartitionState without a consumer: its lanes are built at start and never revoked, and its events, numbered in
// the order they were sent, are the ChannelEvents agents send to it. Each holds a share of the event that sent it,
// so that one is committed only after every agent reading the channel finished: a crash loses what was in the
// channel, never its cause, which is read and sent again. Internal to the engine.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "config/config.hpp"
#include "engine/lane.hpp"
#include "engine/lane_scheduler.hpp"
#include "engine/partition_state.hpp"

namespace mephisto {

// A channel's traffic since start.
struct ChannelStatus {
    std::string name;
    int64_t sent = 0;        // events sent to it
    int64_t unfinished = 0;  // of those, not yet finished by every agent reading it
};

class Channels {
public:
    using ChannelMap = std::map<std::string, std::unique_ptr<PartitionState>>;

    // `scheduler` is the pipeline's, where the writers a full channel held back are put again once it drained.
    Channels(LaneScheduler<Lane>& scheduler, std::shared_ptr<spdlog::logger> log)
        : scheduler_(scheduler), log_(std::move(log)) {}

    // At start, before any worker runs: one channel per spec, with the lanes `lanes_of` makes for it (those of
    // every agent reading it). The set never changes afterwards (a change of channels restarts the pipeline).
    void open(const std::vector<ChannelSpec>& specs,
              const std::function<std::vector<std::unique_ptr<Lane>>(PartitionState& channel)>& lanes_of);
    bool empty() const { return channels_.empty(); }
    PartitionState* find(const std::string& name) const {
        auto it = channels_.find(name);
        return it == channels_.end() ? nullptr : it->second.get();
    }
    // Every channel, for walking its lanes (under each channel's lanes_mu where the lanes may change).
    const ChannelMap& all() const { return channels_; }
    std::vector<ChannelStatus> status() const;

    // An event an agent sends to `channel`, held against ctx's input; takes ownership of `headers`.
    // THREAD: the sending callback's.
    static mph_status send(mph_agent_ctx& ctx, PartitionState& channel, const void* key, size_t key_len,
                           const void* value, size_t value_len, rd_kafka_headers_t* headers, int64_t timestamp_ms);

    // Channel events at the head of a channel lane whose first cause was read from a partition revoked since are
    // dropped: that cause was not committed, its next owner reads it again, so working on them here would only
    // repeat it, on a host that no longer owns it. Returns how many. THREAD: the lane's worker.
    static size_t drop_revoked_events(Lane& lane);
    // Faust's channel maxsize: a lane reading a topic whose sinks include a channel holding more than its maxsize
    // unfinished events waits (its lane is delayed, its events stay queued) until the channel drained below three
    // quarters of it, when the last event finished wakes it. Lanes reading channels never wait: two channels
    // feeding each other would stop for good; what they send is bounded by what reached their own channel.
    // THREAD: the lane's worker.
    bool holds_back(Lane& lane);
    // The lane leaves for good: no channel wakes it any more.
    void forget(Lane& lane);

    // At stop: sends are refused, instances say goodbye (`goodbye`), what was not finished is dropped (`release`);
    // a lane whose callback outlives `deadline` is left as it is, and listed in `abandoned`.
    void close(std::chrono::steady_clock::time_point deadline, std::vector<Lane*>& abandoned,
               const std::function<void(Lane&)>& goodbye, const std::function<void(Lane&)>& release);

private:
    bool full(PartitionState& channel);  // past maxsize, until drained below three quarters of it
    // A channel drained: the lanes it held back take their turn now. THREAD: the one that finished its event.
    void wake_held_writers(PartitionState& channel);

    LaneScheduler<Lane>& scheduler_;
    std::shared_ptr<spdlog::logger> log_;
    ChannelMap channels_;
};

}  // namespace mephisto
