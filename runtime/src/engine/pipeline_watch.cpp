// The pipeline's watch thread, beside the consumer, every half second:
//  - hung callbacks (RELIABILITY 5): a callback running past hung_callback_after is logged with the agent,
//    the callback and the event, again as often as the threshold, counted in /metrics, and shown in /agents,
//    /ready and `mephisto status`. It holds back its partition's commit and cannot be stopped from inside the
//    process; saying so is what the host can do.
//  - the broker (RELIABILITY 12, kafka/broker_health.hpp): while librdkafka says no broker is reachable, /ready
//    says so and why, a metadata request every second tells when one is back, and past
//    broker_unreachable_timeout the pipeline fails (the host exits non-zero for its service manager).
//  - the group's committed offsets of newly assigned partitions, so that the lag shown is right before this
//    host commits anything.
#include <fmt/format.h>

#include <algorithm>

#include "common/duration.hpp"
#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {
namespace {

constexpr std::chrono::milliseconds kWatchInterval{500};

std::string seconds(std::chrono::milliseconds d) { return fmt::format("{:.0f} s", static_cast<double>(d.count()) / 1000.0); }

// The call `clock` shows, when it has run for `threshold` (ns) or longer at `now`.
std::optional<HungCall> hung_call(const CallClock& clock, int64_t now, int64_t threshold, const std::string& who,
                                  const std::string& topic, int32_t partition) {
    const int64_t started = clock.started_ns.load(std::memory_order_acquire);
    if (started == 0 || now - started < threshold) return std::nullopt;
    HungCall call;
    call.agent = who;
    const char* name = clock.name.load(std::memory_order_relaxed);
    call.callback = name ? name : "a callback";
    call.topic = topic;
    call.partition = partition;
    call.offset = clock.offset.load(std::memory_order_relaxed);
    call.running = std::chrono::milliseconds((now - started) / 1'000'000);
    return call;
}

}  // namespace

std::string HungCall::describe() const {
    std::string text = (topic.empty() ? "timer " : "agent ") + agent + " has been in " + callback;
    if (!topic.empty()) {
        text += " of " + topic;
        if (partition >= 0) text += "[" + std::to_string(partition) + "]";
        if (offset >= 0) text += "@" + std::to_string(offset);
    }
    return text + " for " + seconds(running);
}

void Pipeline::watch_loop() {
    std::unique_lock lock(watch_mutex_);
    while (!watch_cv_.wait_for(lock, kWatchInterval, [&] { return watch_stop_; })) {
        lock.unlock();
        watch_hung_calls();
        if (auto why = broker_health_->probe(producer_ ? producer_->handle() : nullptr)) fail(*why);
        fetch_committed_offsets();
        lock.lock();
    }
}

void Pipeline::fetch_committed_offsets() {
    if (!consumer_ || broker_health_->down()) return;
    std::vector<std::pair<std::string, int32_t>> unknown;
    {
        auto partitions = partitions_.lock();
        for (const auto& [key, ps] : *partitions)
            if (!ps->committed_fetched.load() && ps->committed() < 0) unknown.push_back(key);
    }
    if (unknown.empty()) return;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(unknown.size()));
    for (const auto& [topic, partition] : unknown) rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
    if (rd_kafka_committed(consumer_.get(), list, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        auto partitions = partitions_.lock();
        for (int i = 0; i < list->cnt; ++i) {
            const auto& tp = list->elems[i];
            PartitionState* found = partitions.find(tp.topic, tp.partition);
            if (!found || tp.err) continue;
            PartitionState& ps = *found;
            if (tp.offset >= 0) ps.confirmed(tp.offset);
            ps.committed_fetched = true;  // none committed yet (-1001) counts as known too
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void Pipeline::watch_hung_calls() {
    const int64_t now = steady_ns();
    const int64_t threshold =
        std::chrono::duration_cast<std::chrono::nanoseconds>(config_.hung_callback_after).count();
    auto check = [&](CallClock& clock, AgentStats* stats, const std::string& who, const std::string& topic,
                     int32_t partition) {
        const int64_t started = clock.started_ns.load(std::memory_order_acquire);
        auto call = hung_call(clock, now, threshold, who, topic, partition);
        if (!call) return;
        const bool fresh = clock.reported_call != started;
        if (!fresh && now - clock.reported_at < threshold) return;  // said recently
        if (fresh && stats) stats->hung.fetch_add(1, std::memory_order_relaxed);
        clock.reported_call = started;
        clock.reported_at = now;
        log_->warn("{} (hung_callback_after {}){}; /ready reports it until it returns", call->describe(),
                   format_duration(config_.hung_callback_after),
                   topic.empty() ? "" : "; the commit of its partition waits for it");
    };
    {
        auto partitions = partitions_.lock();
        for (auto& [key, ps] : *partitions) {
            std::lock_guard lanes(ps->lanes_mu);
            for (auto& lane : ps->lanes)
                check(lane->call, &lane->agent->stats, lane->agent->spec->name, ps->topic, ps->partition);
        }
    }
    for (auto& [name, channel] : channels_->all()) {
        std::lock_guard lanes(channel->lanes_mu);
        for (auto& lane : channel->lanes) check(lane->call, &lane->agent->stats, lane->agent->spec->name, name, -1);
    }
    const TimerRuntime* timer = timers_->in_call();
    check(timers_->call_clock(), nullptr, timer ? timer->spec->name : std::string("(a timer)"), "", -1);
}

std::vector<HungCall> Pipeline::hung_calls() const {
    std::vector<HungCall> out;
    const int64_t now = steady_ns();
    const int64_t threshold =
        std::chrono::duration_cast<std::chrono::nanoseconds>(config_.hung_callback_after).count();
    auto add = [&](const CallClock& clock, const std::string& who, const std::string& topic, int32_t partition) {
        if (auto call = hung_call(clock, now, threshold, who, topic, partition)) out.push_back(std::move(*call));
    };
    {
        auto partitions = partitions_.lock();
        for (const auto& [key, ps] : *partitions) {
            std::lock_guard lanes(ps->lanes_mu);
            for (const auto& lane : ps->lanes) add(lane->call, lane->agent->spec->name, ps->topic, ps->partition);
        }
    }
    for (const auto& [name, channel] : channels_->all()) {
        std::lock_guard lanes(channel->lanes_mu);
        for (const auto& lane : channel->lanes) add(lane->call, lane->agent->spec->name, name, -1);
    }
    const TimerRuntime* timer = timers_->in_call();
    add(timers_->call_clock(), timer ? timer->spec->name : std::string("(a timer)"), "", -1);
    return out;
}

}  // namespace mephisto
