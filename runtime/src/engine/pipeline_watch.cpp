// The pipeline's watch thread, beside the consumer, every half second:
//  - hung callbacks (RELIABILITY 5): a callback running past hung_callback_after is logged with the agent,
//    the callback and the event, again as often as the threshold, counted in /metrics, and shown in /agents,
//    /ready and `mephisto status`. It holds back its partition's commit and cannot be stopped from inside the
//    process; saying so is what the host can do.
//  - the broker (RELIABILITY 12): while librdkafka says no broker is reachable, /ready says so and why, a
//    metadata request every second tells when one is back, and past broker_unreachable_timeout the pipeline
//    fails (the host exits non-zero for its service manager).
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
        watch_broker();
        fetch_committed_offsets();
        lock.lock();
    }
}

void Pipeline::on_client_error(rd_kafka_resp_err_t err, const std::string& reason) {
    switch (err) {
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: {
            int64_t expected = 0;
            if (broker_down_since_ns_.compare_exchange_strong(expected, steady_ns())) {
                std::string why;
                {
                    std::lock_guard lock(broker_mutex_);
                    why = broker_reason_.empty() ? reason : broker_reason_;
                }
                log_->error("no broker of {} is reachable: {}; the pipeline waits for one (/ready says so{})",
                            bootstrap_, why,
                            config_.broker_unreachable_timeout.count() > 0
                                ? ", and it fails after " + format_duration(config_.broker_unreachable_timeout)
                                : "");
            }
            return;
        }
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__RESOLVE:
        case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        case RD_KAFKA_RESP_ERR__SSL: {
            std::lock_guard lock(broker_mutex_);
            broker_reason_ = reason;  // the latest word on why a connection failed
            break;
        }
        default: break;
    }
    log_->warn("{}", reason);
}

std::optional<std::string> Pipeline::broker_problem() const {
    const int64_t since = broker_down_since_ns_.load();
    if (since == 0) return std::nullopt;
    std::lock_guard lock(broker_mutex_);
    return "no broker of " + bootstrap_ + " reachable for " +
           seconds(std::chrono::milliseconds((steady_ns() - since) / 1'000'000)) +
           (broker_reason_.empty() ? "" : ": " + broker_reason_);
}

void Pipeline::watch_broker() {
    const int64_t since = broker_down_since_ns_.load();
    if (since == 0 || !producer_) return;
    const int64_t now = steady_ns();
    if (now - broker_probed_ns_ < 1'000'000'000) return;
    broker_probed_ns_ = now;
    // A metadata request that gets an answer: some broker is back (librdkafka has no event for that).
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(producer_->handle(), 0, nullptr, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md) rd_kafka_metadata_destroy(md);
        if (broker_down_since_ns_.exchange(0) != 0)
            log_->info("a broker of {} is reachable again, after {}", bootstrap_,
                       seconds(std::chrono::milliseconds((steady_ns() - since) / 1'000'000)));
        std::lock_guard lock(broker_mutex_);
        broker_reason_.clear();
        return;
    }
    const auto down = std::chrono::milliseconds((steady_ns() - since) / 1'000'000);
    if (config_.broker_unreachable_timeout.count() > 0 && down >= config_.broker_unreachable_timeout)
        fail(*broker_problem() + " (broker_unreachable_timeout " + format_duration(config_.broker_unreachable_timeout) +
             "): stopping, so that a service manager can act");
}

void Pipeline::fetch_committed_offsets() {
    if (!consumer_ || broker_down_since_ns_.load() != 0) return;
    std::vector<std::pair<std::string, int32_t>> unknown;
    {
        std::lock_guard lock(partitions_mutex_);
        for (const auto& [key, ps] : partitions_)
            if (!ps->committed_fetched.load() && ps->committed() < 0) unknown.push_back(key);
    }
    if (unknown.empty()) return;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(unknown.size()));
    for (const auto& [topic, partition] : unknown) rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
    if (rd_kafka_committed(consumer_.get(), list, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        std::lock_guard lock(partitions_mutex_);
        for (int i = 0; i < list->cnt; ++i) {
            const auto& tp = list->elems[i];
            auto it = partitions_.find({tp.topic, tp.partition});
            if (it == partitions_.end() || tp.err) continue;
            PartitionState& ps = *it->second;
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
        std::lock_guard lock(partitions_mutex_);
        for (auto& [key, ps] : partitions_) {
            std::lock_guard lanes(ps->lanes_mu);
            for (auto& lane : ps->lanes)
                check(lane->call, &lane->agent->stats, lane->agent->spec->name, ps->topic, ps->partition);
        }
    }
    for (auto& [name, channel] : channels_) {
        std::lock_guard lanes(channel->lanes_mu);
        for (auto& lane : channel->lanes) check(lane->call, &lane->agent->stats, lane->agent->spec->name, name, -1);
    }
    const TimerRuntime* timer = timer_in_call_.load();
    check(timer_call_, nullptr, timer ? timer->spec->name : std::string("(a timer)"), "", -1);
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
        std::lock_guard lock(partitions_mutex_);
        for (const auto& [key, ps] : partitions_) {
            std::lock_guard lanes(ps->lanes_mu);
            for (const auto& lane : ps->lanes) add(lane->call, lane->agent->spec->name, ps->topic, ps->partition);
        }
    }
    for (const auto& [name, channel] : channels_) {
        std::lock_guard lanes(channel->lanes_mu);
        for (const auto& lane : channel->lanes) add(lane->call, lane->agent->spec->name, name, -1);
    }
    const TimerRuntime* timer = timer_in_call_.load();
    add(timer_call_, timer ? timer->spec->name : std::string("(a timer)"), "", -1);
    return out;
}

}  // namespace mephisto
