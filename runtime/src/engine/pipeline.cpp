// A pipeline's wiring and lifecycle: create resolves its agents, timers, codecs and tables; start opens the
// producer, the stores and the consumer and starts the threads; stop drains, revokes, commits and closes within
// shutdown_timeout. The parts: consumer_loop, task_manager, lane_runner, record_collector, partition_ledger,
// failure_policy, dead_letter_queue, window_driver, state_manager (with changelog_restorer), timer_runner, and
// kafka/broker_health.
#include "common/thread_name.hpp"
#include "engine/pipeline.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/cron.hpp"
#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/repartition_agent.hpp"
#include "kafka/topic_provisioner.hpp"
#include "tables/codec.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

}  // namespace

Status Pipeline::check_agent_features(const AgentSpec& spec, const AgentInfo* info) const {
    const std::string where = spec.agent_mark.str() + ": agents." + spec.name + ": ";
    if (spec.take && spec.concurrency > 1)
        return make_error(where + "take gathers a partition's events in order; it cannot be combined with concurrency");
    if (spec.take && !info->callbacks.on_batch)
        return make_error(where + "take needs an agent with on_batch; '" + spec.agent + "' has only on_event");
    for (const auto& name : spec.tables) {
        const TableSpec* table = config_.table(name);
        if (!table || !table->window) continue;
        // Stream time is one clock per partition, moved by each event in offset order.
        if (spec.concurrency > 1)
            return make_error(where + "windowed table " + name + " keeps one stream time per partition; concurrency " +
                              "would move it out of order");
        if (!info->callbacks.on_event || spec.take)
            return make_error(where + "windowed table " + name + " needs on_event without take: each write takes its "
                              "event's time");
    }
    return {};
}

Result<std::shared_ptr<const WindowClosers>> Pipeline::window_closers(
    const std::vector<std::pair<const AgentSpec*, const AgentInfo*>>& agents) const {
    auto closers = std::make_shared<std::map<std::string, std::string>>();
    for (const auto& table : config_.tables) {
        if (!table.window) continue;
        for (const auto& [spec, info] : agents) {
            if (!info || !info->callbacks.on_window_close ||
                std::find(spec->tables.begin(), spec->tables.end(), table.name) == spec->tables.end())
                continue;
            if (auto it = closers->find(table.name); it != closers->end())
                return make_error(table.mark.str() + ": tables." + table.name + ": agents " + it->second + " and " +
                                  spec->name + " both export on_window_close; at most one agent of a windowed "
                                  "table may take its closed windows");
            (*closers)[table.name] = spec->name;
        }
    }
    return std::shared_ptr<const WindowClosers>(std::move(closers));
}

Result<std::unique_ptr<Pipeline>> Pipeline::create(const PipelineConfig& config,
                                                   const std::map<std::string, std::shared_ptr<Plugin>>& plugins,
                                                   const std::string& bootstrap, TopicProvisioner* broker) {
    std::unique_ptr<Pipeline> p(new Pipeline(config));
    p->bootstrap_ = bootstrap;
    p->broker_ = broker;
    p->log_ = logger(config.app_id);
    p->broker_health_ = std::make_unique<BrokerHealth>(bootstrap, config.broker_unreachable_timeout, p->log_);
    {
        Pipeline* self = p.get();
        p->dead_letters_ = std::make_unique<DeadLetterQueue>([self](const std::string& why) { self->fail(why); });
        p->channels_ = std::make_unique<Channels>(p->scheduler_, p->log_);
        LaneRunnerServices lanes;
        lanes.app_id = config.app_id;
        lanes.scheduler = &p->scheduler_;
        lanes.channels = p->channels_.get();
        lanes.dead_letters = p->dead_letters_.get();
        lanes.failed = &p->failed_;
        lanes.fail = [self](const std::string& why) { self->fail(why); };
        lanes.echo = [self](Lane& lane, InFlight* event) { return self->echo(lane, event); };
        lanes.window_closers = &p->window_closers_;
        p->runner_ = std::make_unique<LaneRunner>(std::move(lanes));
    }

    for (const auto& spec : p->config_.agents) {
        if (spec.builtin == "repartition") {
            if (!spec.key_function.empty()) {
                const auto& ref = spec.key_function;
                auto it = plugins.find(ref.plugin);
                if (it == plugins.end()) return make_error(ref.mark.str() + ": plugin '" + ref.plugin + "' is not loaded");
                const KeyFunctionInfo* fn = it->second->find_key_function(ref.name);
                if (!fn) {
                    std::string known;
                    for (const auto& k : it->second->key_functions()) known += (known.empty() ? "" : ", ") + k.name;
                    return make_error(ref.mark.str() + ": plugin " + ref.plugin + " has no key function '" + ref.name +
                                      "' (it provides: " + (known.empty() ? "none" : known) + ")");
                }
                p->key_functions_[spec.name] = &fn->callbacks;
            }
            auto a = std::make_unique<AgentRuntime>(spec);
            a->info = &repartition_agent();
            a->params = spec.params;
            a->log = logger(spec.name);
            p->agents_.push_back(std::move(a));
            continue;
        }
        auto r = resolve_stream_agent(spec, plugins);
        if (!r) return make_error(r.error());
        if (auto st = p->check_agent_features(spec, r->second); !st) return make_error(st.error());
        auto filter = resolve_filter(spec, plugins);
        if (!filter) return make_error(filter.error());
        auto a = std::make_unique<AgentRuntime>(spec);
        a->plugin = r->first;
        a->info = r->second;
        a->filter = *filter;
        if (*filter) a->filter_plugin = plugins.at(spec.filter.plugin);
        a->params = effective_params(a->info, spec.params);
        a->log = logger(spec.name);
        p->agents_.push_back(std::move(a));
    }
    {
        std::vector<std::pair<const AgentSpec*, const AgentInfo*>> agents;
        for (const auto& a : p->agents_) agents.emplace_back(a->spec, a->info);
        auto closers = p->window_closers(agents);
        if (!closers) return make_error(closers.error());
        std::atomic_store(&p->window_closers_, *closers);
    }
    Pipeline* self = p.get();
    p->timers_ = std::make_unique<TimerRunner>(TimerRunner::Services{
        [self] { return self->leader_.load(); }, p->config_.app_id});
    for (const auto& spec : p->config_.timers) {
        auto r = resolve_timer_agent(spec, plugins);
        if (!r) return make_error(r.error());
        auto t = std::make_unique<TimerRuntime>(spec);
        t->plugin = r->first;
        t->info = r->second;
        t->ctx.pipeline = p.get();
        t->ctx.agent_name = spec.name;
        t->ctx.params = effective_params(t->info, spec.params);
        t->ctx.sinks = &t->spec->sinks;
        t->ctx.log = logger(spec.name);
        p->timers_->timers().push_back(std::move(t));
    }
    // Codecs and aggregators (the codec registry): resolved now, so a missing one is a startup error.
    std::map<std::string, TableTypes> table_types;
    for (const auto& table : p->config_.tables) {
        auto types = resolve_table_types(table, plugins);
        if (!types) return make_error(types.error());
        table_types[table.name] = *types;
    }
    p->warm_up_ = std::make_unique<WarmUp>(p->config_.warm_up, p->log_);
    p->state_ = std::make_unique<StateManager>(
        StateManager::Services{&p->config_, bootstrap, p->log_, [self](const std::string& why) { self->fail(why); },
                               [self] { return self->standby_placement_now(); },
                               [self] { return self->rebalances(); }},
        std::move(table_types));
    for (const auto& topic : p->config_.topics) {
        auto codec = resolve_topic_codec(topic, plugins);
        if (!codec) return make_error(codec.error());
        if (*codec) p->topic_codecs_[topic.name] = *codec;
    }
    for (const auto& [name, mark] : item_plugins(p->config_)) p->item_plugins_.push_back(plugins.at(name));
    return p;
}

Pipeline::~Pipeline() {
    stop();
    call_slots::names_freed();  // the app id, agent and timer names go with it
}

std::vector<AgentRuntime*> Pipeline::agents() const {
    std::lock_guard lock(agents_mutex_);
    std::vector<AgentRuntime*> out;
    for (const auto& a : agents_) out.push_back(a.get());
    return out;
}

std::string Pipeline::failure() const {
    std::lock_guard lock(failure_mutex_);
    return failure_;
}

void Pipeline::fail(const std::string& reason) {
    {
        std::lock_guard lock(failure_mutex_);
        if (failure_.empty()) failure_ = reason;
    }
    if (!failed_.exchange(true)) log_->critical("pipeline failed: {}", reason);
}

void Pipeline::quarantine(const std::vector<PoisonRecord>& records) {
    for (const auto& r : records) {
        if (r.pipeline != config_.app_id) continue;
        for (auto& agent : agents_) {
            if (agent->spec->name != r.agent || agent->spec->quarantine_after == 0 ||
                r.crashes < agent->spec->quarantine_after)
                continue;
            agent->poison[r.place()] = r;
            agent->log->warn("{} crashed the worker {} time(s) (last: {}, plugin {} sha1 {}): it goes to {} "
                             "instead of to the agent",
                             r.place(), r.crashes, r.fault, r.plugin, r.sha1, poison_topic(config_.app_id, *agent));
        }
    }
}

Status Pipeline::start() {
    started_ = true;  // from here on stop() has something to undo, even if start fails part way
    const std::map<std::string, std::string> common = {
        {"bootstrap.servers", bootstrap_},
        {"client.id", "mephisto-" + config_.app_id},
    };
    auto producer = Producer::create(
        [&] {
            auto props = common;
            for (const auto& [k, v] : config_.broker.properties) props[k] = v;
            for (const auto& [k, v] : config_.producer_properties) props[k] = v;
            return props;
        }(),
        [this](void* opaque, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) {
            collector_->on_delivery(opaque, err, msg);
        },
        [this](rd_kafka_resp_err_t err, bool fatal, const std::string& reason) {
            if (fatal) fail(reason);
            else broker_health_->on_client_error(err, reason);
        });
    if (!producer) return make_error(config_.file.string() + ": " + producer.error());
    producer_ = std::move(*producer);
    topic_admin_ = std::make_unique<TopicAdmin>(producer_->handle(), broker_, log_);
    dead_letters_->set_producer(*producer_);
    collector_ = std::make_unique<RecordCollector>(
        *producer_, RecordCollector::Handlers{
                        [this](DeliveryTag* tag, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) {
                            state_->on_flush_delivery(static_cast<ShardFlush*>(tag), err, msg);
                        },
                        [this](DeliveryTag* tag, rd_kafka_resp_err_t err) {
                            dead_letters_->on_delivery(static_cast<DeadLetter*>(tag), err);
                        },
                        [this](const std::string& reason) { fail(reason); }});

    for (const auto& a : agents_) {
        if (a->spec->builtin == "repartition") {
            // The repartition topic has the partition count of the sources it re-keys.
            int partitions = 1;
            for (const auto& t : a->spec->from)
                if (auto* spec = config_.topic(t)) partitions = std::max(partitions, spec->partitions);
            if (auto st = topic_admin_->ensure(a->spec->params.at("topic"), partitions); !st)
                log_->warn("{}; relying on the broker to create it on first use", st.error());
        }
        // Quarantined records go to the dead-letter topic even when the error policy sends nothing there.
        if (!a->poison.empty() && a->spec->on_error.then != ThenPolicy::dead_letter)
            if (auto st = topic_admin_->ensure(poison_topic(config_.app_id, *a), 1); !st)
                log_->warn("{}; relying on the broker to create it on first use", st.error());
        if (a->spec->on_error.then != ThenPolicy::dead_letter) continue;
        int partitions = 1;
        for (const auto& t : a->spec->from)
            if (auto* spec = config_.topic(t)) partitions = std::max(partitions, spec->partitions);
        // Some brokers (the 2.0.2 mock among them) have no Admin API; the first produce then auto-creates.
        if (auto st = topic_admin_->ensure(a->spec->on_error.dead_letter_topic, partitions); !st)
            log_->warn("{}; relying on the broker to create it on first use", st.error());
    }

    if (auto st = state_->open(*topic_admin_, *producer_); !st) return st;

    // Consumer. Offsets are stored and committed by the host alone (enable.auto.commit=false): librdkafka
    // would otherwise commit what was handed out rather than what was finished.
    const std::map<std::string, std::string> consumer_defaults = {
        {"group.id", config_.app_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "range"},
        {"enable.partition.eof", "false"},
        // librdkafka 2.0.2 stops fetching for a whole second whenever its prefetch queue fills; a queue
        // sized for more than a second of traffic keeps the consumer from ever stalling.
        {"queued.min.messages", "500000"},
        {"queued.max.messages.kbytes", "262144"},
        // How long the broker may hold a fetch when it has nothing to return. A real broker answers as soon as
        // there is data (fetch.min.bytes 1), so this only paces idle fetches; the embedded broker (librdkafka's
        // mock) answers at the end of the wait, so there it is the latency floor (bench/RESULTS.md,
        // bench_latency): 5 ms keeps p99 within 20 ms at half the raw loop's capacity.
        {"fetch.wait.max.ms", broker_ ? "5" : "100"},
    };
    std::map<std::string, std::string> membership;
    if (!group_instance_id_.empty()) membership["group.instance.id"] = group_instance_id_;
    auto conf = make_conf({&common, &consumer_defaults, &config_.broker.properties, &config_.consumer_properties,
                           &membership});
    if (!conf) return make_error(config_.file.string() + ": consumer: " + conf.error());
    rd_kafka_conf_set_opaque(conf->get(), this);
    route_logs(conf->get());
    rd_kafka_conf_set_rebalance_cb(conf->get(), [](rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                                   rd_kafka_topic_partition_list_t* parts, void* opaque) {
        auto* self = static_cast<Pipeline*>(opaque);
        {
            std::lock_guard swap_lock(self->swap_mutex_);  // never during a plugin swap or a topology reload
            self->task_manager_->on_rebalance(err, parts);
        }
        if (char* id = rd_kafka_memberid(rk)) {  // read here, on the consumer thread that owns it
            std::lock_guard lock(self->member_id_mutex_);
            self->member_id_ = id;
            rd_kafka_mem_free(rk, id);
        }
        self->rebalances_.fetch_add(1);
    });
    rd_kafka_conf_set_offset_commit_cb(conf->get(), [](rd_kafka_t*, rd_kafka_resp_err_t err,
                                                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
        // Reports come through the consumer's poll, so only once the committer exists.
        static_cast<Pipeline*>(opaque)->committer_->on_report(err, offsets);
    });
    rd_kafka_conf_set_error_cb(conf->get(), [](rd_kafka_t* rk, int err, const char* reason, void* opaque) {
        auto* self = static_cast<Pipeline*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[512];
            rd_kafka_fatal_error(rk, buf, sizeof buf);
            self->fail(std::string("consumer fatal error: ") + buf);
        } else {
            self->broker_health_->on_client_error(static_cast<rd_kafka_resp_err_t>(err),
                                  std::string("consumer: ") + rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)) +
                                      ": " + reason);
        }
    });
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!consumer) return make_error(consumer.error());
    consumer_ = std::move(*consumer);
    committer_ = std::make_unique<OffsetCommitter>(consumer_.get(), partitions_, *state_, log_);
    TaskManagerServices tasks;  // before the first poll, which may call the rebalance callback
    tasks.consumer = consumer_.get();
    tasks.partitions = &partitions_;
    tasks.budget = &dispatch_budget_;
    tasks.committer = committer_.get();
    tasks.state = state_.get();
    tasks.producer = producer_.get();
    tasks.config = &config_;
    tasks.log = log_;
    tasks.joined = &joined_;
    tasks.leader = &leader_;
    tasks.lanes_for = [this](PartitionState& ps) { return lanes_for(ps); };
    tasks.value_codec = [this](const std::string& topic) -> const mph_codec_descriptor* {
        auto it = topic_codecs_.find(topic);
        return it == topic_codecs_.end() ? nullptr : it->second;
    };
    tasks.revoke_instance = [this](Lane& lane) { runner_->revoke_instance(lane); };
    tasks.release_lane = [this](Lane& lane, int completed) { runner_->release_lane(lane, completed); };
    task_manager_ = std::make_unique<TaskManager>(std::move(tasks));
    rd_kafka_poll_set_consumer(consumer_.get());  // errors and commit reports arrive through consumer_poll

    auto sources = config_.source_topics();
    if (config_.has_leader_timers()) {
        // Leader election: the group gives the one partition of this topic to exactly one member.
        if (auto st = topic_admin_->ensure(config_.leader_topic(), 1); !st) return make_error(st.error());
        sources.push_back(config_.leader_topic());
    }
    auto subscribe = [this, sources]() -> Status {
        if (sources.empty()) return {};
        rd_kafka_topic_partition_list_t* subs = rd_kafka_topic_partition_list_new(static_cast<int>(sources.size()));
        for (const auto& t : sources) rd_kafka_topic_partition_list_add(subs, t.c_str(), RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (err) return make_error("subscribe: " + std::string(rd_kafka_err2str(err)));
        return {};
    };
    // With a warm-up the consumer thread subscribes once the tables it will take caught up (engine/warm_up.hpp).
    const bool warm_up_first = config_.warm_up.enabled && !sources.empty() && !warm_up_tables().empty();
    if (!warm_up_first)
        if (auto st = subscribe(); !st) return st;

    // An agent that can receive replies will ask: its first ask should not wait for the reply topic.
    for (const auto& a : agents_)
        if (a->info && a->info->callbacks.on_reply) {
            if (auto st = ensure_reply_router(); !st) log_->warn("{}; asks will fail until it can be created", st.error());
            break;
        }

    {
        const auto held = partitions_.lock();  // make_lanes' rule, though a channel is no assigned partition
        channels_->open(config_.channels, [this](PartitionState& channel) {
            std::vector<std::unique_ptr<Lane>> lanes;
            std::lock_guard agents_lock(agents_mutex_);
            for (auto& agent : agents_)
                if (agent->spec->from.size() == 1 && agent->spec->from.front() == channel.topic)
                    for (auto& lane : make_lanes(*agent, channel)) lanes.push_back(std::move(lane));
            return lanes;
        });
    }
    // Threads that call plugins get an alternate signal stack: a plugin's stack overflow is still reported.
    workers_running_ = config_.workers;
    for (int i = 0; i < config_.workers; ++i)
        workers_.emplace_back([this, i] {
            name_this_thread("worker-" + std::to_string(i));
            crash_report::prepare_thread();
            runner_->work();
            workers_running_.fetch_sub(1);
        });
    ConsumerLoopServices loop;
    loop.consumer = consumer_.get();
    loop.partitions = &partitions_;
    loop.budget = &dispatch_budget_;
    loop.committer = committer_.get();
    loop.state = state_.get();
    loop.commit_interval = config_.commit_interval;
    loop.log = log_;
    loop.finish_recoveries = [this] { task_manager_->finish_recoveries(); };
    consumer_loop_ = std::make_unique<ConsumerLoop>(std::move(loop));
    consuming_ = true;
    consumer_running_ = true;
    consumer_thread_ = std::thread([this, warm_up_first, subscribe] {
        name_this_thread("consumer");
        crash_report::prepare_thread();  // revokes call on_revoked and destroy
        if (warm_up_first) {
            warm_up_->run(consuming_, [this] { return standby_placement_now(); }, [this] { return standby_status(); });
            if (consuming_)
                if (auto st = subscribe(); !st) fail(st.error());
        }
        consumer_loop_->run(consuming_);
        consumer_running_ = false;
    });
    watch_thread_ = std::thread([this] {
        name_this_thread("watch");
        watch_loop();
    });
    timers_->start();

    std::string agents;
    for (const auto& a : agents_) agents += (agents.empty() ? "" : ", ") + a->spec->name;
    log_->info("pipeline {} started: agents [{}], {} timer(s), {} worker(s), group {} on {}", config_.app_id, agents,
               timers_->timers().size(), config_.workers, config_.app_id, bootstrap_);
    return {};
}

namespace {

// Joins `thread` once `running` says it left its loop, waiting until `deadline` at most; a thread still inside a
// plugin then is detached, left to run (a thread cannot be stopped from outside). False when it was.
bool join_until(std::thread& thread, const std::function<bool()>& running, Clock::time_point deadline) {
    if (!thread.joinable()) return true;
    while (running() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
    if (running()) {
        thread.detach();
        return false;
    }
    thread.join();
    return true;
}

}  // namespace

bool Pipeline::stop() {
    if (stopped_ || !started_) return true;  // `validate` builds pipelines it never starts
    stopped_ = true;
    {
        std::lock_guard swap_lock(swap_mutex_);  // a topology reload in progress finishes first
        stopping_ = true;
    }
    // Everything below fits in shutdown_timeout: a callback that does not return by then is left running, with
    // its events uncommitted, and said so.
    const auto deadline = Clock::now() + config_.shutdown_timeout;
    auto remaining = [&] {
        return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    };
    std::vector<std::string> stuck;  // what did not return in time
    auto say_stuck = [&](const std::string& what) {
        stuck.push_back(what);
        log_->error("{} did not return within shutdown_timeout ({}); it is left running, and what it holds stays "
                    "uncommitted (processed again after a restart)",
                    what, format_duration(config_.shutdown_timeout));
    };

    if (watch_thread_.joinable()) {
        {
            std::lock_guard lock(watch_mutex_);
            watch_stop_ = true;
        }
        watch_cv_.notify_all();
        watch_thread_.join();  // it never calls plugins
    }
    timers_->request_stop();  // joined at the end: a timer callback in progress may take its time

    // 1. Stop fetching. The consumer thread leaves its loop; partitions stay assigned until close.
    consuming_ = false;
    if (!join_until(consumer_thread_, [this] { return consumer_running_.load(); }, deadline))
        say_stuck("the consumer thread (in a rebalance, waiting for a callback)");

    if (consumer_ && stuck.empty()) {
        // 2. Finish what was fetched, within half the budget (the rest is for flush, commit and close);
        //    lanes of a quarantined agent never finish and are not waited for.
        const auto drain_deadline = Clock::now() + config_.shutdown_timeout / 2;
        auto working = [](const PartitionState& ps) {
            for (const auto& lane : ps.lanes) {
                std::lock_guard l(lane->mu);
                if (lane->scheduled && !lane->agent->stats.quarantined) return true;
            }
            return false;
        };
        for (;;) {
            bool busy = false;
            {
                auto partitions = partitions_.lock();
                for (auto& [key, ps] : *partitions) busy = busy || working(*ps);
            }
            for (auto& [name, ch] : channels_->all()) busy = busy || working(*ch);
            if (asks_waiting() > 0) busy = true;  // an ask ends with its reply or its timeout
            if (!busy || Clock::now() >= drain_deadline || failed_) break;
            std::this_thread::sleep_for(milliseconds(5));
        }
        // 3. Revoke everything: stop lanes, wait for acknowledgements, commit, on_revoked, destroy. A lane whose
        //    callback outlives the budget is left as it is: its partition commits up to its event.
        std::vector<Lane*> abandoned;
        {
            std::lock_guard swap_lock(swap_mutex_);
            task_manager_->revoke_all(remaining(), &abandoned);
        }
        channels_->close(
            deadline, abandoned, [this](Lane& lane) { runner_->revoke_instance(lane); },
            [this](Lane& lane) { runner_->release_lane(lane, 0); });
        for (Lane* lane : abandoned) {
            HungCall call;
            call.agent = lane->agent->spec->name;
            const char* name = lane->call.name.load();
            call.callback = name ? name : "a callback";
            call.topic = lane->partition->topic;
            call.partition = lane->partition->partition;
            call.offset = lane->call.offset.load();
            const int64_t started = lane->call.started_ns.load();
            if (started) call.running = milliseconds((steady_ns() - started) / 1'000'000);
            say_stuck(call.describe());
        }
        // Asks still waiting belong to revoked events: they are dropped, uncommitted, and asked again later.
        if (reply_router_) reply_router_->stop();

        // 4. Leave the group without waiting longer than the budget allows (the broker may be gone).
        rd_kafka_queue_t* q = rd_kafka_queue_new(consumer_.get());
        if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(consumer_.get(), q)) {
            log_->warn("leaving the consumer group: {}", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else {
            while (!rd_kafka_consumer_closed(consumer_.get()) && remaining().count() > 0) {
                rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 100);
                if (!ev) continue;
                if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                    if (!strcmp(rd_kafka_rebalance_protocol(consumer_.get()), "COOPERATIVE"))
                        rd_kafka_error_destroy(rd_kafka_incremental_unassign(
                            consumer_.get(), rd_kafka_event_topic_partition_list(ev)));
                    else
                        rd_kafka_assign(consumer_.get(), nullptr);
                }
                rd_kafka_event_destroy(ev);
            }
        }
        rd_kafka_queue_destroy(q);
    }
    scheduler_.stop();
    if (!timers_->join_until(deadline)) {
        const TimerRuntime* timer = timers_->in_call();
        say_stuck("timer " + (timer ? timer->spec->name : std::string("?")) + " (in its callback)");
    }
    const auto workers_deadline = Clock::now() + milliseconds(200);  // the idle ones leave at once
    while (workers_running_.load() > 0 && Clock::now() < std::max(deadline, workers_deadline))
        std::this_thread::sleep_for(milliseconds(5));
    if (workers_running_.load() > 0) {
        if (stuck.empty()) say_stuck(std::to_string(workers_running_.load()) + " worker thread(s)");
        for (auto& w : workers_) w.detach();
    } else {
        for (auto& w : workers_) w.join();
    }
    workers_.clear();

    if (producer_) {
        // 5. Outputs still unacknowledged belong to inputs that were not committed: they will be redone.
        if (!producer_->flush(std::max(remaining(), milliseconds(100)))) {
            log_->warn("{} output message(s) not acknowledged before the shutdown deadline; their inputs stay "
                       "uncommitted and will be processed again",
                       producer_->outstanding());
            producer_->purge();
        }
        producer_->stop();
    }
    if (!stuck.empty()) {
        // A thread is still inside a plugin and may yet touch the consumer, the stores or the pipeline: nothing
        // of theirs is released. The host ends the process without destroying this pipeline.
        (void)consumer_.release();
        log_->error("pipeline {} stopped, except what is stuck: {}", config_.app_id, fmt::join(stuck, "; "));
        return false;
    }
    for (auto& t : timers_->timers()) timers_->destroy_instance(*t);
    // Every message was released above, so destroy does not wait on the application; the close was already
    // attempted within the budget and must not be retried without one.
    if (consumer_) rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    producer_.reset();
    partitions_.clear_retired();
    state_->close();

    for (const auto& a : agents_)
        log_->info("agent {}: {} processed, {} failures, {} restarts, {} skipped, {} dead-lettered, {} undecodable{}",
                   a->spec->name, a->stats.processed.load(), a->stats.failures.load(), a->stats.restarts.load(),
                   a->stats.skipped.load(), a->stats.dead_lettered.load(), a->stats.undecodable.load(),
                   a->stats.quarantined ? ", QUARANTINED" : "");
    log_->info("pipeline {} stopped", config_.app_id);
    return true;
}

}  // namespace mephisto
