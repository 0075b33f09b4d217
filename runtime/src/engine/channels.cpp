// Channels: their lanes, sends, the maxsize that holds writers back, and their close (engine/channels.hpp).
#include <algorithm>
#include <chrono>
#include <set>

#include "engine/channels.hpp"

#include "common/logging.hpp"
#include "common/wall_clock.hpp"
#include "engine/agent_runtime.hpp"

namespace mephisto {
namespace {

// A full channel holds its writers back until its unfinished events drop below this.
int64_t low_mark(const PartitionState& channel) { return std::max<int64_t>(1, channel.maxsize / 4 * 3); }

}  // namespace


void Channels::open(const std::vector<ChannelSpec>& specs,
                    const std::function<std::vector<std::unique_ptr<Lane>>(PartitionState& channel)>& lanes_of) {
    for (const auto& spec : specs) {
        auto ps = std::make_unique<PartitionState>();
        ps->topic = spec.name;
        ps->partition = 0;
        ps->channel = true;
        ps->maxsize = spec.maxsize;
        if (ps->maxsize > 0)  // the agents a full channel holds back go on as soon as it drained
            ps->on_drained_to(low_mark(*ps) - 1, [this, channel = ps.get()] { wake_held_writers(*channel); });
        for (auto& lane : lanes_of(*ps)) ps->lanes.push_back(std::move(lane));
        if (ps->lanes.empty())
            log_->warn("channel {} has no agent reading it: what is sent to it is dropped", spec.name);
        channels_.emplace(spec.name, std::move(ps));
    }
}

mph_status Channels::send(mph_agent_ctx& ctx, PartitionState& channel, const void* key, size_t key_len,
                          const void* value, size_t value_len, rd_kafka_headers_t* headers, int64_t timestamp_ms) {
    ChannelEvent event;
    event.bytes.reserve((key ? key_len : 0) + (value ? value_len : 0));
    if (key) {
        event.bytes.append(static_cast<const char*>(key), key_len);
        event.key_len = static_cast<int64_t>(key_len);
    }
    if (value) {
        event.bytes.append(static_cast<const char*>(value), value_len);
        event.value_len = static_cast<int64_t>(value_len);
    }
    if (headers) {
        const char* name;
        const void* v;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
            event.headers.emplace_back(name, v ? std::optional<std::string>(std::string(static_cast<const char*>(v), size))
                                                : std::nullopt);
        rd_kafka_headers_destroy(headers);
    }
    event.timestamp_ms = timestamp_ms > 0 ? timestamp_ms : wall_ms();
    event.sequence = channel.channel_sequence.fetch_add(1, std::memory_order_relaxed);
    const size_t key_hash = event.key() ? std::hash<std::string_view>{}(*event.key()) : static_cast<size_t>(event.sequence);
    if (ctx.stats) ctx.stats->outputs.fetch_add(1, std::memory_order_relaxed);

    std::unique_lock lanes_lock(channel.lanes_mu);
    if (channel.closed) {  // the host is stopping (an on_revoked sending, or a callback the drain gave up on)
        ctx.log->warn("send to channel {} refused: the host is stopping", channel.topic);
        return MPH_ERR_STATE;
    }
    int receivers = 0;
    for (auto& lane : channel.lanes) receivers += lane->takes(key_hash);
    if (receivers == 0) return MPH_OK;  // nobody reads the channel: like a topic nobody consumes
    // The event that sent it stays unfinished until every agent of the channel finished this one.
    InFlight* f = channel.admit_sent(std::move(event), ctx.inflight, receivers);
    for (auto& lane : channel.lanes)
        if (lane->takes(key_hash)) lane->offer(f);
    return MPH_OK;
}

namespace {
// Whether the consumed message at the start of `f`'s chain of causes was read from a partition since revoked.
bool caused_by_revoked(const InFlight* f) {
    const PartitionLedger* origin = f->channel_event->origin;
    return origin && origin->revoked();
}
}  // namespace

size_t Channels::drop_revoked_events(Lane& lane) {
    size_t dropped = 0;
    while (!lane.local.empty() && caused_by_revoked(lane.local.front())) {
        InFlight* f = lane.local.front();
        lane.local.pop_front();
        lane.tries.left(f->offset());  // if it was being retried, the next event starts afresh
        finish(f, 0);
        ++dropped;
    }
    if (dropped > 0)
        lane.agent->log->info("channel {}: dropped {} event(s) caused by revoked partitions (their next owner reads "
                              "the causes again)",
                              lane.partition->topic, dropped);
    return dropped;
}

bool Channels::full(PartitionState& channel) {
    const int64_t unfinished = channel.unfinished();
    if (channel.full.load(std::memory_order_relaxed)) {
        if (unfinished >= low_mark(channel)) return true;
        if (channel.full.exchange(false))
            log_->info("channel {} drained ({} unfinished): the agents writing to it go on", channel.topic, unfinished);
        return false;
    }
    if (unfinished <= channel.maxsize) return false;
    if (!channel.full.exchange(true))
        log_->info("channel {} is full ({} unfinished, maxsize {}): the agents writing to it wait until it drained "
                   "below {}",
                   channel.topic, unfinished, channel.maxsize, low_mark(channel));
    return true;
}

bool Channels::holds_back(Lane& lane) {
    if (lane.channel_sinks_of != lane.ctx.sinks) {
        lane.channel_sinks.clear();
        if (lane.ctx.sinks)
            for (const auto& sink : *lane.ctx.sinks)
                if (auto it = channels_.find(sink); it != channels_.end()) lane.channel_sinks.push_back(it->second.get());
        lane.channel_sinks_of = lane.ctx.sinks;
    }
    bool held_back = false;
    for (PartitionState* channel : lane.channel_sinks) {
        if (!full(*channel)) continue;
        {
            std::lock_guard lock(channel->held_writers_mu);
            auto& held = channel->held_writers;
            if (std::find(held.begin(), held.end(), &lane) == held.end()) held.push_back(&lane);
        }
        // Looked at again once listed: a drain in between did not find it in the list.
        held_back = held_back || full(*channel);
    }
    return held_back;
}

void Channels::forget(Lane& lane) {
    for (auto& [name, channel] : channels_) {
        std::lock_guard lock(channel->held_writers_mu);
        std::erase(channel->held_writers, &lane);
    }
}

void Channels::wake_held_writers(PartitionState& channel) {
    std::lock_guard lock(channel.held_writers_mu);
    // Each waits in the scheduler's timed line (its fallback look); a lane still in its turn is not there, and
    // looks again at the turn's end. Under the lock: forget() takes a lane off the list before it goes.
    for (Lane* lane : channel.held_writers)
        if (scheduler_.remove(lane)) scheduler_.push(lane);
    channel.held_writers.clear();
}

std::vector<ChannelStatus> Channels::status() const {
    std::vector<ChannelStatus> out;
    for (const auto& [name, channel] : channels_)  // fixed after start
        out.push_back({name, channel->channel_sequence.load(std::memory_order_relaxed),
                       channel->unfinished()});
    return out;
}

void Channels::close(std::chrono::steady_clock::time_point deadline, std::vector<Lane*>& abandoned,
                     const std::function<void(Lane&)>& goodbye, const std::function<void(Lane&)>& release) {
    // Every lane of every channel stops before any is released: a lane still running could otherwise send to a
    // channel already released, into a queue nobody empties, holding its causes (and the consumer) forever. A
    // lane whose callback outlives `deadline` is left as it is.
    std::set<const Lane*> left;
    for (auto& [name, channel] : channels_)
        for (auto& lane : channel->lanes)
            if (!lane->stop(deadline)) {
                left.insert(lane.get());
                abandoned.push_back(lane.get());
            }
    for (auto& [name, channel] : channels_) {
        std::lock_guard lock(channel->lanes_mu);
        channel->closed = true;  // what on_revoked sends now is refused
    }
    for (auto& [name, channel] : channels_)
        for (auto& lane : channel->lanes)
            if (!left.count(lane.get())) goodbye(*lane);
    for (auto& [name, channel] : channels_)
        for (auto& lane : channel->lanes)
            if (!left.count(lane.get())) release(*lane);
}

}  // namespace mephisto
