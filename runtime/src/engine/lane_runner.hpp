#pragma once
// The lane runner (Kafka Streams' StreamTask#process): a worker takes a scheduled lane and delivers its events:
// one by one to on_event, in batches to on_batch (take: gathers them), through the agent's filter first; the
// answers to its asks to on_reply; the windows its events closed to on_window_close. A verdict other than OK goes
// to the supervisor's decision (engine/failure_policy.hpp) and the agent's error policy. It also owns an
// instance's life on its lane: create and on_assigned before the first event, on_revoked and destroy at the end,
// and the lane's release. Internal to the engine.
// THREAD: a worker, one per lane at a time; goodbye and release on the thread that stopped the lane.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/crash_report.hpp"
#include "engine/agent_runtime.hpp"
#include "engine/channels.hpp"
#include "engine/dead_letter_queue.hpp"
#include "engine/lane.hpp"
#include "engine/lane_scheduler.hpp"
#include "engine/poison_record.hpp"

namespace mephisto {

// Windowed table -> the one agent taking its closes (on_window_close). A table without one has its windows
// closed and removed all the same.
using WindowClosers = std::map<std::string, std::string>;

// What the lane runner works with; the pipeline owns all of it.
struct LaneRunnerServices {
    std::string app_id;  // names the pipeline in crash reports and the default quarantine topic
    LaneScheduler<Lane>* scheduler = nullptr;  // where lanes wait for a worker
    Channels* channels = nullptr;              // the writers a full channel holds back
    DeadLetterQueue* dead_letters = nullptr;   // the error policy's and the quarantine's dead letters
    const std::atomic<bool>* failed = nullptr; // the pipeline failed: lanes park
    std::function<void(const std::string& reason)> fail;
    // echo: copies the lane's events up to and including this one that were not copied yet.
    std::function<mph_status(Lane&, InFlight*)> echo;
    // Read with std::atomic_load: a reload replaces it.
    const std::shared_ptr<const WindowClosers>* window_closers = nullptr;
};

// Where an agent's quarantined records go: its on_error topic, else "<app>-<agent>-dead-letter".
std::string poison_topic(const std::string& app_id, const AgentRuntime& agent);

class LaneRunner {
public:
    explicit LaneRunner(LaneRunnerServices services) : s_(std::move(services)) {}

    // A worker's life: runs the lanes the scheduler hands out until it stops.
    void work();
    // One turn of `lane`: up to a budget of events, then others get theirs.
    void run(Lane& lane);

    // The instance's life on its lane.
    bool ensure_instance(Lane& lane, std::string& error);  // create and on_assigned, once
    void destroy_instance(Lane& lane);
    // on_revoked, then destroy: the instance's goodbye (a revoke, a swap, a removal, a stop).
    void revoke_instance(Lane& lane);
    // The lane leaves for good (its partition revoked, its agent removed): answers still to come are dropped,
    // and every event it holds (queued, unacknowledged, answers waiting) is finished with `completed`.
    void release_lane(Lane& lane, int completed);

    // What a worker is about to run of the lane's plugin, for the crash report (common/crash_report.hpp).
    PluginCallRecord call_record(const Lane& lane, const char* callback, int64_t offset = -1) const;

private:
    enum class Outcome { done, delay, park };
    Outcome deliver(Lane& lane, InFlight* event, std::chrono::milliseconds& delay);
    // filter: acknowledges the events at the head of the lane its predicate rejects; for a batch agent also
    // those further on, up to `limit`, which it lowers to the first event the predicate failed on.
    Outcome filter_events(Lane& lane, size_t& limit, std::chrono::milliseconds& delay);
    Outcome deliver_batch(Lane& lane, size_t count, std::chrono::milliseconds& delay);
    // Runs on_reply for the answers waiting on the lane; false when its instance could not be created.
    bool deliver_replies(Lane& lane, std::string& error);
    // An event the lane's agent finished: done, or with `ack: manual` held until the agent acknowledges it.
    void finished_by_agent(Lane& lane, InFlight* event);
    // A verdict other than OK on the `count` events at the head of the lane (0: the instance failed to start).
    // Applies retry, restart, quarantine and the error policy (engine/error_policy.cpp).
    Outcome on_failure(Lane& lane, size_t count, mph_status verdict, std::string error,
                       std::chrono::milliseconds& delay);
    void apply_error_policy(Lane& lane, InFlight* event, const std::string& error);
    // Dead-letters a quarantined record instead of giving it to the agent.
    void dead_letter_poison(Lane& lane, InFlight* event, const PoisonRecord& poison);
    // Windowed tables (engine/window_driver.cpp): after the lane's event(s), stream time moves to their time;
    // windows that closed go to the agent's on_window_close with outputs tracked against `inflight`, and
    // expired windows are removed.
    void advance_windows(Lane& lane, const std::vector<const rd_kafka_message_t*>& events, InFlight* inflight);
    bool failed() const { return s_.failed->load(std::memory_order_relaxed); }

    LaneRunnerServices s_;
};

}  // namespace mephisto
