#pragma once
// A running pipeline: one consumer (group = app id) polled on its own thread, per-(agent, partition) lanes
// run by worker threads, one idempotent producer, timers, and the offset bookkeeping that makes delivery
// at-least-once: an input offset is committed only after every agent reading it finished it and every
// output it caused was acknowledged by the broker, and only as a contiguous prefix (DESIGN.md §2).
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/call_slots.hpp"
#include "common/crash_report.hpp"
#include "common/histogram.hpp"
#include "config/config.hpp"
#include "config/topology_diff.hpp"
#include "engine/agent_context.hpp"
#include "engine/agent_runtime.hpp"
#include "engine/agent_resolver.hpp"
#include "engine/channels.hpp"
#include "engine/consumer_loop.hpp"
#include "engine/dead_letter_queue.hpp"
#include "engine/dispatch_budget.hpp"
#include "engine/failure_policy.hpp"
#include "engine/global_table_follower.hpp"
#include "engine/lane.hpp"
#include "engine/lane_runner.hpp"
#include "engine/lane_scheduler.hpp"
#include "engine/offset_committer.hpp"
#include "engine/partition_ledger.hpp"
#include "engine/partition_registry.hpp"
#include "engine/partition_state.hpp"
#include "engine/poison_record.hpp"
#include "engine/record_collector.hpp"
#include "engine/reply_router.hpp"
#include "engine/restart_policy.hpp"
#include "engine/state_manager.hpp"
#include "engine/task_manager.hpp"
#include "engine/warm_up.hpp"
#include "engine/timer_runner.hpp"
#include "kafka/broker_health.hpp"
#include "kafka/client_config.hpp"
#include "kafka/producer.hpp"
#include "kafka/topic_admin.hpp"
#include "plugin/plugin.hpp"
#include "tables/table_store.hpp"

namespace mephisto {

class TopicProvisioner;

// What the lanes of a pipeline may hold before its consumer waits for them (engine/dispatch_budget.hpp): enough
// to keep every worker busy through a poll, little enough that a host's memory does not follow its input.
inline constexpr DispatchBudget::Amount kDispatchBudget{40'000, 32 << 20};

// A snapshot of one assigned partition, for the admin API.
struct PartitionStatus {
    std::string topic;
    int32_t partition = 0;
    int64_t committed = -1;  // next offset the group will read; -1 when nothing was committed here yet
    int64_t end = -1;        // the partition's end as last fetched; -1 when not known yet
    int64_t lag = -1;        // end minus the committed offset (or the partition's start); -1 when not known
    bool recovering = false;
    bool refused = false;    // its tables refuse to serve (a store ahead of its changelog)
};

// A callback running longer than the pipeline's hung_callback_after (RELIABILITY 5), for the admin API.
struct HungCall {
    std::string agent;     // or timer
    std::string callback;  // "on_event", "on_timer"...
    std::string topic;     // empty for a timer
    int32_t partition = -1;
    int64_t offset = -1;
    std::chrono::milliseconds running{0};
    std::string describe() const;  // "agent A has been in on_event of in[2]@17 for 45 s"
};


// What a plugin swap did to one pipeline.
struct SwapReport {
    // Agents (and timers) now running the new image, each with its pause: from its first lane stopped to
    // its last lane resumed. Timers do not pause (they fire at their next tick).
    std::vector<std::pair<std::string, std::chrono::microseconds>> agents;
    size_t instances = 0;  // instances destroyed (the new code re-creates them as events arrive)
};

class Pipeline {
public:
    // `plugins` maps plugin name to the loaded image; every plugin the config names must be there.
    // `broker` creates topics on the embedded broker when the pipeline uses it (internal topics too).
    static Result<std::unique_ptr<Pipeline>> create(const PipelineConfig& config,
                                                    const std::map<std::string, std::shared_ptr<Plugin>>& plugins,
                                                    const std::string& bootstrap, TopicProvisioner* broker);
    ~Pipeline();

    // Records to dead-letter instead of processing: those of `records` for this pipeline whose agent's
    // on_crash.quarantine_after they reached. Before start(). THREAD: the host's main thread.
    void quarantine(const std::vector<PoisonRecord>& records);
    // Static membership (KIP-345): the consumer's group.instance.id; set before start. THREAD: any after start.
    void set_group_instance_id(std::string id) { group_instance_id_ = std::move(id); }
    const std::string& group_instance_id() const { return group_instance_id_; }
    // Starts the consumer, workers and timers. THREAD: the host's main thread.
    Status start();
    // Graceful stop (RELIABILITY 11): stop fetching, finish in-flight events within the drain budget,
    // commit, flush, close. Returns within config.shutdown_timeout even if the broker is gone. False when a
    // callback did not return by then: what it holds stays uncommitted (it is processed again), its thread is
    // left running, and the pipeline must then never be destroyed (the process should end soon). THREAD: one.
    bool stop();
    // Callbacks running longer than hung_callback_after now. THREAD: any.
    std::vector<HungCall> hung_calls() const;
    // While no broker is reachable: since when and why ("no broker reachable for 12 s: <librdkafka's reason>").
    // THREAD: any.
    std::optional<std::string> broker_problem() const { return broker_health_->problem(); }

    // Set when the pipeline can no longer run (a crash policy fired, a fatal Kafka error); the host then
    // stops and exits non-zero. THREAD: any.
    bool failed() const { return failed_.load(); }
    std::string failure() const;

    // The file the pipeline was built from. A topology reload replaces its agents, timers and topics; the
    // other settings never change while it runs. Read app_id and file from other threads, nothing else.
    const PipelineConfig& config() const { return config_; }
    // The running agents (a snapshot: a topology reload may add or remove some; removed ones stay alive until
    // the pipeline is destroyed). THREAD: any.
    std::vector<AgentRuntime*> agents() const;
    // Offsets the broker confirmed, "topic/partition" -> next offset to read. THREAD: any.
    std::map<std::string, int64_t> committed_offsets() const;
    size_t assigned_partitions() const;
    // For the admin API. THREAD: any.
    std::vector<PartitionStatus> partition_status() const;
    std::vector<RecoveryStatus> recovery_status() const;
    std::vector<ChannelStatus> channel_status() const { return channels_->status(); }
    bool joined() const { return joined_.load(); }  // an assignment was received (possibly empty)
    // The group member id at the last rebalance (empty before the first), and how many rebalances this host's
    // consumer went through. THREAD: any.
    std::string member_id() const;
    uint64_t rebalances() const { return rebalances_.load(); }
    // The partitions of this host's (not global) tables and the changelog offset each has persisted.
    // THREAD: any.
    struct TableOffset {
        std::string table;
        int32_t partition = 0;
        int64_t offset = -1;
    };
    std::vector<TableOffset> table_offsets() const;
    // Standby replicas (engine/standby_follower.hpp). The host says where this host keeps them (its cluster view
    // knows the group's other members); set before start, or later: asked about once a second. THREAD: any.
    void set_standby_placement(std::function<StandbyPlacement()> placement);
    // The tables that have standbys: their partitions and standby_replicas (fixed once started). THREAD: any.
    struct StandbyTable {
        std::string table;
        int partitions = 0;
        int replicas = 0;
    };
    std::vector<StandbyTable> standby_tables() const;
    // Warm-up before joining (`warm_up:`, engine/warm_up.hpp): the tables it warms (every table that is not
    // global; `replicas` unused), whether it is warming now (until the first assignment), and how it went.
    // skip_warm_up: the host has no cluster view to place it; the consumer joins at once. THREAD: any.
    std::vector<StandbyTable> warm_up_tables() const;
    bool warming_up() const { return warm_up_->warming(joined()); }
    WarmUp::Status warm_up_status() const { return warm_up_->status(); }
    void skip_warm_up(const std::string& why) { warm_up_->skip(why); }
    std::vector<StandbyStatus> standby_status() const;  // the standbys kept here and their lag. THREAD: any.
    uint64_t standby_records_applied() const {  // changelog records the standbys applied. THREAD: any.
        return state_->standby() ? state_->standby()->records_applied() : 0;
    }
    // Reads `key` from this host's standby of (table, partition) (`?stale=ok`); an error when it keeps none.
    Result<StandbyFollower::StaleRead> read_standby(const std::string& table, int32_t partition, const std::string& key);
    // The last recoveries of table partitions and what each replayed; all records replayed. THREAD: any.
    std::vector<RecoveryRecord> recovery_history() const { return state_->restorer().history(); }
    uint64_t records_replayed() const { return state_->restorer().records_replayed(); }
    // Leader election (on_leader timers): this host owns partition 0 of the app's leader topic. THREAD: any.
    bool leader() const { return leader_.load(); }
    const std::map<std::string, std::unique_ptr<TableStore>>& tables() const { return state_->stores(); }
    // Looks key up in the table's partitions this host serves (all of them for a global table). nullopt:
    // not here; an error: a partition that might hold it is still recovering.
    Result<std::optional<std::pair<int32_t, std::string>>> read_table(const std::string& table, const std::string& key);
    // The partitions of `table` this host serves (every one for a global table), and how many it has.
    // THREAD: any.
    std::pair<std::vector<int32_t>, int> served_partitions(const std::string& table) const;

    // Host functions (called through host_api()). THREAD: the callback's.
    mph_status emit(mph_agent_ctx& ctx, const mph_message* msg);
    mph_status send(mph_agent_ctx& ctx, const std::string& topic, const mph_message* msg);
    mph_status forward(mph_agent_ctx& ctx);
    // Copies `msg` (key, value, headers, timestamp) to each topic, tracked against ctx's input.
    mph_status forward_to(mph_agent_ctx& ctx, const InFlight* event, const std::vector<std::string>& topics);
    // echo: copies the lane's events up to and including `msg` that were not yet copied.
    mph_status echo(Lane& lane, InFlight* event);
    // Agents talking to agents (engine/agent_messaging.cpp): Faust's cast and ask, the answer to an ask, and
    // manual acknowledgement. THREAD: the callback's.
    mph_status cast(mph_agent_ctx& ctx, const std::string& agent, const mph_message* msg);
    mph_status ask(mph_agent_ctx& ctx, const std::string& agent, const mph_message* msg, int64_t timeout_ms,
                   uint64_t* request_id);
    mph_status reply(mph_agent_ctx& ctx, const void* value, size_t value_len);
    mph_status ack(mph_agent_ctx& ctx, int64_t offset);
    // Requests of this host waiting for a reply (0 when it never asked). THREAD: any.
    size_t asks_waiting() const;
    // Hot reload (DESIGN.md §5): every agent and timer of plugin `name` moves to `replacement` without a
    // rebalance. Their lanes stop taking events and finish the callback in progress; each instance gets
    // on_revoked and is destroyed by the old code; the agents switch images; the lanes resume and the new
    // code creates its instances (create, on_assigned) and takes the events that waited. Tables and offsets
    // are untouched: nothing is lost and, without a crash, nothing is processed twice (except, under
    // `ack: manual`, what the old instance left unacknowledged: the new one gets it again). Refused, changing
    // nothing, when the replacement lacks an agent the pipeline uses or its params do not fit the YAML.
    // THREAD: any but a worker's; serialized with rebalances.
    Result<SwapReport> swap_plugin(const std::string& name, const std::shared_ptr<Plugin>& replacement);
    bool uses_plugin(const std::string& name) const;
    // Topology reload (DESIGN.md §5): applies an edit that `diff` (diff_topology of the running file and
    // `edited`) found appliable in place, without a rebalance. Removed agents stop: their lanes finish the
    // callback in progress, on_revoked and destroy run, and the events they had not taken count as done for
    // them. Changed agents restart like a plugin swap, on their new YAML. Added agents get lanes on every
    // assigned partition of their topics and see the events fetched from then on. Timers likewise. Agents the
    // edit does not name are never stopped. Everything is checked first: a refusal changes nothing.
    // `plugins` must hold every plugin `edited` names. THREAD: any but a worker's; serialized with rebalances.
    Result<SwapReport> apply_topology(const PipelineConfig& edited, const TopologyDiff& diff,
                                      const std::map<std::string, std::shared_ptr<Plugin>>& plugins);

    // The key function of a repartition agent's `group_by: {plugin, function}`, null when it has none.
    const mph_key_fn_descriptor* key_function(const std::string& agent) const {
        auto it = key_functions_.find(agent);
        return it == key_functions_.end() ? nullptr : it->second;
    }

private:
    explicit Pipeline(const PipelineConfig& config) : config_(config) {}

    // ask: hands an answer to the lane that asked (router thread); on_reply runs on the lane's worker.
    void route_answer(Answer&& answer);
    Status ensure_reply_router();
    // The topic an agent of this pipeline reads (cast and ask go there); empty when there is no such agent.
    std::string agent_topic(const std::string& agent) const;
    // Runs beside the consumer: reports callbacks running past hung_callback_after (again as often).
    void watch_loop();
    void watch_hung_calls();
    // The watch thread: the group's committed offsets of newly assigned partitions, so lag is right before
    // this host commits anything.
    void fetch_committed_offsets();
    // The lanes of an assigned partition: those of every agent reading its topic (engine/lane_factory.cpp).
    std::vector<std::unique_ptr<Lane>> lanes_for(PartitionState& ps);
    // A lane of `agent` on `ps`, bound to the agent's table shards for that partition. Caller holds the
    // partitions' lock (PartitionRegistry::lock), or `ps` is not in the registry yet.
    std::unique_ptr<Lane> make_lane(AgentRuntime& agent, PartitionState& ps);
    std::vector<std::unique_ptr<Lane>> make_lanes(AgentRuntime& agent, PartitionState& ps);  // one per concurrency slot
    // What an agent's YAML asks of its code that the loader cannot see: take needs on_batch, windowed tables
    // need on_event and no concurrency.
    Status check_agent_features(const AgentSpec& spec, const AgentInfo* info) const;
    // Windowed table -> the one agent (of `agents`) exporting on_window_close for it; an error when two do.
    Result<std::shared_ptr<const WindowClosers>> window_closers(
        const std::vector<std::pair<const AgentSpec*, const AgentInfo*>>& agents) const;
    // Restarts `agent`'s instances on a new image and/or YAML: its lanes must be stopped.
    size_t restart_instances(AgentRuntime& agent, const std::vector<Lane*>& lanes, const std::shared_ptr<Plugin>& plugin,
                             const AgentInfo* info, const AgentSpec* spec);
    mph_status produce_tracked(mph_agent_ctx& ctx, const std::string& topic, const void* key, size_t key_len,
                               const void* value, size_t value_len, rd_kafka_headers_t* headers, int32_t partition,
                               int64_t timestamp_ms);
    void fail(const std::string& reason);

    PipelineConfig config_;
    std::string group_instance_id_;  // empty: dynamic membership
    std::string bootstrap_;
    TopicProvisioner* broker_ = nullptr;
    std::shared_ptr<spdlog::logger> log_;

    mutable std::mutex agents_mutex_;  // guards agents_' shape for readers on other threads
    std::vector<std::unique_ptr<AgentRuntime>> agents_;
    std::vector<std::unique_ptr<AgentRuntime>> retired_agents_;  // removed by a reload; kept for stale readers
    std::vector<std::unique_ptr<Lane>> retired_lanes_;
    // The tables: stores, changelog flushes, global followers and the restorer (engine/state_manager.hpp).
    std::unique_ptr<StateManager> state_;
    std::map<std::string, const mph_codec_descriptor*> topic_codecs_;  // topics with a plugin's value codec
    std::map<std::string, const mph_key_fn_descriptor*> key_functions_;  // repartition agent -> its group_by function
    // Windowed table -> the agent that exports on_window_close for it (engine/lane_runner.hpp).
    // Read with std::atomic_load: a reload replaces it.
    std::shared_ptr<const WindowClosers> window_closers_ = std::make_shared<const WindowClosers>();
    std::vector<std::shared_ptr<Plugin>> item_plugins_;  // keeps those codecs' and functions' images loaded
    std::unique_ptr<TimerRunner> timers_;  // engine/timer_runner.hpp
    std::unique_ptr<Producer> producer_;
    std::unique_ptr<RecordCollector> collector_;  // outputs tracked against their inputs, over producer_
    std::unique_ptr<DeadLetterQueue> dead_letters_;  // engine/dead_letter_queue.hpp, over producer_
    std::unique_ptr<TopicAdmin> topic_admin_;  // internal topics, through producer_ (kafka/topic_admin.hpp)
    KafkaPtr consumer_;
    // ask: started at the first ask, or at start when some agent can receive replies.
    std::mutex reply_router_mutex_;
    std::unique_ptr<ReplyRouter> reply_router_;
    std::chrono::steady_clock::time_point reply_router_failed_at_{};  // a failed start is retried 10 s later
    std::atomic<ReplyRouter*> reply_router_ready_{nullptr};

    // Events consumed and not finished, over all partitions: the consumer waits above its mark (declared before the
    // partitions, which count against it to their end).
    DispatchBudget dispatch_budget_{kDispatchBudget};
    std::unique_ptr<Channels> channels_;  // fixed after start (a change of them restarts the pipeline)
    PartitionRegistry partitions_;  // the assigned partitions (engine/partition_registry.hpp)
    std::unique_ptr<OffsetCommitter> committer_;  // over consumer_ (engine/offset_committer.hpp)
    std::unique_ptr<ConsumerLoop> consumer_loop_;  // runs on consumer_thread_ (engine/consumer_loop.hpp)
    std::unique_ptr<TaskManager> task_manager_;    // assign and revoke (engine/task_manager.hpp)

    LaneScheduler<Lane> scheduler_;
    std::unique_ptr<LaneRunner> runner_;  // what the workers run (engine/lane_runner.hpp)
    std::vector<std::thread> workers_;
    std::thread consumer_thread_;
    // Each thread says when it left its loop: a stop joins only those, and leaves one stuck in a plugin.
    std::atomic<int> workers_running_{0};
    std::atomic<bool> consumer_running_{false};
    std::unique_ptr<BrokerHealth> broker_health_;  // can the clients reach a broker (kafka/broker_health.hpp)
    std::thread watch_thread_;
    std::mutex watch_mutex_;
    std::condition_variable watch_cv_;
    bool watch_stop_ = false;  // guarded by watch_mutex_

    std::atomic<bool> joined_{false};  // set by the task manager
    std::atomic<uint64_t> rebalances_{0};
    mutable std::mutex member_id_mutex_;
    std::string member_id_;  // guarded by member_id_mutex_
    std::atomic<bool> leader_{false};  // set by the task manager
    mutable std::mutex standby_placement_mutex_;
    std::function<StandbyPlacement()> standby_placement_;  // guarded by standby_placement_mutex_
    StandbyPlacement standby_placement_now() const;  // what standby_placement_ says now (nothing when unset)
    std::unique_ptr<WarmUp> warm_up_;  // made with the pipeline
    std::mutex swap_mutex_;  // a plugin swap and a rebalance never interleave
    std::atomic<bool> consuming_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> failed_{false};
    mutable std::mutex failure_mutex_;
    std::string failure_;
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace mephisto
