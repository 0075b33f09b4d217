#include "engine/pipeline.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"
#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/event_bytes.hpp"
#include "engine/message_views.hpp"
#include "engine/repartition_agent.hpp"
#include "kafka/topic_provisioner.hpp"
#include "tables/codec.hpp"
#include "tables/windowed_table.hpp"
#include "common/cron.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Backpressure: a partition whose unfinished messages pass the high mark is paused on the consumer and
// resumed below the low mark, so a slow agent never makes the host buffer without bound (RELIABILITY 33).
constexpr int64_t kPauseAbove = 20'000;
constexpr int64_t kResumeBelow = 5'000;
constexpr int kLaneBudget = 256;      // events a worker runs on one lane before giving others a turn
constexpr size_t kMaxBatch = 500;     // events handed to on_batch at once
constexpr int kPollBurst = 5'000;     // messages taken from librdkafka per loop before housekeeping
constexpr milliseconds kFullChannelWait{1};  // a lane writing to a full channel looks again this much later

mph_event make_event(const PartitionState& ps, const InFlight* f, std::vector<mph_header>& headers) {
    if (f->message) return mephisto::make_event(ps.topic.c_str(), f->message, headers);
    const ChannelEvent& c = *f->channel_event;
    headers.clear();
    for (const auto& [name, value] : c.headers)
        headers.push_back(mph_header{name.c_str(), name.size(), value ? value->data() : nullptr, value ? value->size() : 0});
    mph_event ev{};
    ev.struct_size = sizeof ev;
    ev.topic = ps.topic.c_str();
    ev.partition = 0;
    ev.offset = c.sequence;
    ev.timestamp_ms = c.timestamp_ms;
    ev.key = c.key ? c.key->data() : nullptr;
    ev.key_len = c.key ? c.key->size() : 0;
    ev.value = c.value ? c.value->data() : nullptr;
    ev.value_len = c.value ? c.value->size() : 0;
    ev.headers = headers.empty() ? nullptr : headers.data();
    ev.header_count = headers.size();
    return ev;
}

// Values a topic's codec rejects never reach the agent; they follow its error policy (RELIABILITY 36). A
// plugin's codec runs under `call` (the agent and the event), with the codec's plugin named.
std::optional<std::string> decode_error(const PartitionState& ps, const InFlight* f, PluginCallRecord call) {
    if (!ps.spec || !f->message) return std::nullopt;  // a channel carries what agents sent: not checked again
    const rd_kafka_message_t* msg = f->message;
    if (ps.value_codec && msg->payload) {
        call.plugin = ps.spec->value_codec.plugin.c_str();
        call.sha1 = nullptr;
        PluginCall in_codec(call);
        if (auto st = validate_with(*ps.value_codec, {static_cast<const char*>(msg->payload), msg->len}); !st)
            return "the value is not valid " + ps.spec->value_codec.name + ": " + st.error();
    }
    auto check = [](Codec codec, const void* data, size_t len, const char* what) -> std::optional<std::string> {
        if (codec != Codec::json || !data) return std::nullopt;  // a tombstone or missing key is no JSON error
        const std::string_view text(static_cast<const char*>(data), len);
        if (auto deep = json_depth_error(text)) return std::string(what) + " is " + *deep;
        if (!nlohmann::json::accept(text.begin(), text.end())) return std::string(what) + " is not valid JSON";
        return std::nullopt;
    };
    if (auto e = check(ps.spec->key, msg->key, msg->key_len, "the key")) return e;
    return check(ps.spec->value, msg->payload, msg->len, "the value");
}

thread_local std::vector<mph_header> t_headers;

}  // namespace



PluginCallRecord Pipeline::call_record(const Lane& lane, const char* callback, int64_t offset) const {
    PluginCallRecord r;
    r.pipeline = config_.app_id.c_str();
    r.agent = lane.agent->spec->name.c_str();
    r.plugin = lane.agent->plugin ? lane.agent->plugin->name().c_str() : "(built into the host)";
    r.sha1 = lane.agent->plugin ? lane.agent->plugin->sha1().c_str() : nullptr;
    r.callback = callback;
    r.topic = lane.partition->topic.c_str();
    r.partition = lane.partition->channel ? -1 : lane.partition->partition;
    r.offset = offset;
    return r;
}

PluginCallRecord Pipeline::call_record(const TimerRuntime& timer, const char* callback) const {
    PluginCallRecord r;
    r.pipeline = config_.app_id.c_str();
    r.agent = timer.spec->name.c_str();
    r.plugin = timer.plugin->name().c_str();
    r.sha1 = timer.plugin->sha1().c_str();
    r.callback = callback;
    return r;
}

// ----------------------------------------------------------------------------------------------- lifecycle

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

Result<std::shared_ptr<const std::map<std::string, std::string>>> Pipeline::window_closers(
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
    return std::shared_ptr<const std::map<std::string, std::string>>(std::move(closers));
}

Result<std::unique_ptr<Pipeline>> Pipeline::create(const PipelineConfig& config,
                                                   const std::map<std::string, std::shared_ptr<Plugin>>& plugins,
                                                   const std::string& bootstrap, TopicProvisioner* broker) {
    std::unique_ptr<Pipeline> p(new Pipeline(config));
    p->bootstrap_ = bootstrap;
    p->broker_ = broker;
    p->log_ = logger(config.app_id);

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
        p->timers_.push_back(std::move(t));
    }
    // Codecs and aggregators (the codec registry): resolved now, so a missing one is a startup error.
    for (const auto& table : p->config_.tables) {
        auto types = resolve_table_types(table, plugins);
        if (!types) return make_error(types.error());
        p->table_types_[table.name] = *types;
    }
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
        [this](void* opaque, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) { on_delivery(opaque, err, msg); },
        [this](rd_kafka_resp_err_t err, bool fatal, const std::string& reason) {
            if (fatal) fail(reason);
            else on_client_error(err, reason);
        });
    if (!producer) return make_error(config_.file.string() + ": " + producer.error());
    producer_ = std::move(*producer);

    for (const auto& a : agents_) {
        if (a->spec->builtin == "repartition") {
            // The repartition topic has the partition count of the sources it re-keys.
            int partitions = 1;
            for (const auto& t : a->spec->from)
                if (auto* spec = config_.topic(t)) partitions = std::max(partitions, spec->partitions);
            if (auto st = ensure_internal_topic(a->spec->params.at("topic"), partitions); !st)
                log_->warn("{}; relying on the broker to create it on first use", st.error());
        }
        // Quarantined records go to the dead-letter topic even when the error policy sends nothing there.
        if (!a->poison.empty() && a->spec->on_error.then != ThenPolicy::dead_letter)
            if (auto st = ensure_internal_topic(poison_topic(*a), 1); !st)
                log_->warn("{}; relying on the broker to create it on first use", st.error());
        if (a->spec->on_error.then != ThenPolicy::dead_letter) continue;
        int partitions = 1;
        for (const auto& t : a->spec->from)
            if (auto* spec = config_.topic(t)) partitions = std::max(partitions, spec->partitions);
        // Some brokers (the 2.0.2 mock among them) have no Admin API; the first produce then auto-creates.
        if (auto st = ensure_internal_topic(a->spec->on_error.dead_letter_topic, partitions); !st)
            log_->warn("{}; relying on the broker to create it on first use", st.error());
    }

    if (auto st = check_copartitioning(); !st) return st;
    if (auto st = open_tables(); !st) return st;
    if (auto st = start_followers(); !st) return st;

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
        {"fetch.wait.max.ms", "100"},
    };
    auto conf = make_conf({&common, &consumer_defaults, &config_.broker.properties, &config_.consumer_properties});
    if (!conf) return make_error(config_.file.string() + ": consumer: " + conf.error());
    rd_kafka_conf_set_opaque(conf->get(), this);
    route_logs(conf->get());
    rd_kafka_conf_set_rebalance_cb(conf->get(), [](rd_kafka_t*, rd_kafka_resp_err_t err,
                                                   rd_kafka_topic_partition_list_t* parts, void* opaque) {
        static_cast<Pipeline*>(opaque)->on_rebalance(err, parts);
    });
    rd_kafka_conf_set_offset_commit_cb(conf->get(), [](rd_kafka_t*, rd_kafka_resp_err_t err,
                                                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
        auto* self = static_cast<Pipeline*>(opaque);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            // Not marked committed locally: the next interval sends it again (RELIABILITY 6).
            self->log_->warn("offset commit failed: {}; will retry", rd_kafka_err2str(err));
        }
        std::lock_guard lock(self->partitions_mutex_);
        for (int i = 0; offsets && i < offsets->cnt; ++i) {
            const auto& tp = offsets->elems[i];
            auto it = self->partitions_.find({tp.topic, tp.partition});
            if (it == self->partitions_.end()) continue;
            if (tp.err == RD_KAFKA_RESP_ERR_NO_ERROR && err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                it->second->committed = std::max(it->second->committed.load(), tp.offset);
            } else if (it->second->commit_sent == tp.offset) {
                it->second->commit_sent = -1;  // resend
            }
        }
    });
    rd_kafka_conf_set_error_cb(conf->get(), [](rd_kafka_t* rk, int err, const char* reason, void* opaque) {
        auto* self = static_cast<Pipeline*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[512];
            rd_kafka_fatal_error(rk, buf, sizeof buf);
            self->fail(std::string("consumer fatal error: ") + buf);
        } else {
            self->on_client_error(static_cast<rd_kafka_resp_err_t>(err),
                                  std::string("consumer: ") + rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)) +
                                      ": " + reason);
        }
    });
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!consumer) return make_error(consumer.error());
    consumer_ = std::move(*consumer);
    rd_kafka_poll_set_consumer(consumer_.get());  // errors and commit reports arrive through consumer_poll

    auto sources = config_.source_topics();
    if (config_.has_leader_timers()) {
        // Leader election: the group gives the one partition of this topic to exactly one member.
        if (auto st = ensure_internal_topic(config_.leader_topic(), 1); !st) return make_error(st.error());
        sources.push_back(config_.leader_topic());
    }
    if (!sources.empty()) {
        rd_kafka_topic_partition_list_t* subs = rd_kafka_topic_partition_list_new(static_cast<int>(sources.size()));
        for (const auto& t : sources) rd_kafka_topic_partition_list_add(subs, t.c_str(), RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (err) return make_error("subscribe: " + std::string(rd_kafka_err2str(err)));
    }

    // An agent that can receive replies will ask: its first ask should not wait for the reply topic.
    for (const auto& a : agents_)
        if (a->info && a->info->callbacks.on_reply) {
            if (auto st = ensure_reply_router(); !st) log_->warn("{}; asks will fail until it can be created", st.error());
            break;
        }

    open_channels();
    // Threads that call plugins get an alternate signal stack: a plugin's stack overflow is still reported.
    workers_running_ = config_.workers;
    for (int i = 0; i < config_.workers; ++i)
        workers_.emplace_back([this] {
            crash_report::prepare_thread();
            worker_loop();
            workers_running_.fetch_sub(1);
        });
    consuming_ = true;
    consumer_running_ = true;
    consumer_thread_ = std::thread([this] {
        crash_report::prepare_thread();  // revokes call on_revoked and destroy
        consume_loop();
        consumer_running_ = false;
    });
    watch_thread_ = std::thread([this] { watch_loop(); });
    if (!timers_.empty()) start_timer_thread();

    std::string agents;
    for (const auto& a : agents_) agents += (agents.empty() ? "" : ", ") + a->spec->name;
    log_->info("pipeline {} started: agents [{}], {} timer(s), {} worker(s), group {} on {}", config_.app_id, agents,
               timers_.size(), config_.workers, config_.app_id, bootstrap_);
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
    if (timer_thread_.joinable()) {
        // The timer thread holds timer_mutex_ while a callback runs, and that callback may never return: the
        // lock is taken only to meet the thread between its check of stopping_ and its wait.
        for (;;) {
            if (timer_mutex_.try_lock()) {
                timer_mutex_.unlock();  // it waits (and is woken below), or will see stopping_
                break;
            }
            if (timer_in_call_.load()) break;  // in a callback: it sees stopping_ when (if) that returns
            std::this_thread::yield();
        }
        timer_cv_.notify_all();  // joined at the end: a timer callback in progress may take its time
    }

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
                std::lock_guard lock(partitions_mutex_);
                for (auto& [key, ps] : partitions_) busy = busy || working(*ps);
            }
            for (auto& [name, ch] : channels_) busy = busy || working(*ch);
            if (asks_waiting() > 0) busy = true;  // an ask ends with its reply or its timeout
            if (!busy || Clock::now() >= drain_deadline || failed_) break;
            std::this_thread::sleep_for(milliseconds(5));
        }
        // 3. Revoke everything: stop lanes, wait for acknowledgements, commit, on_revoked, destroy. A lane whose
        //    callback outlives the budget is left as it is: its partition commits up to its event.
        std::vector<Lane*> abandoned;
        {
            std::lock_guard swap_lock(swap_mutex_);
            revoke_all(remaining(), &abandoned);
        }
        close_channels(deadline, abandoned);
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
    if (!join_until(timer_thread_, [this] { return timer_running_.load(); }, deadline)) {
        const TimerRuntime* timer = timer_in_call_.load();
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
    for (auto& t : timers_)
        if (t->created && t->info->callbacks.destroy) {
            ClockedCall call(timer_call_, call_record(*t, "destroy"));
            t->info->callbacks.destroy(t->instance);
        }
    // Every message was released above, so destroy does not wait on the application; the close was already
    // attempted within the budget and must not be retried without one.
    if (consumer_) rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    producer_.reset();
    retired_.clear();
    abandoned_flushes_.clear();
    for (auto& [name, follower] : followers_) follower->stop();

    for (const auto& a : agents_)
        log_->info("agent {}: {} processed, {} failures, {} restarts, {} skipped, {} dead-lettered, {} undecodable{}",
                   a->spec->name, a->stats.processed.load(), a->stats.failures.load(), a->stats.restarts.load(),
                   a->stats.skipped.load(), a->stats.dead_lettered.load(), a->stats.undecodable.load(),
                   a->stats.quarantined ? ", QUARANTINED" : "");
    log_->info("pipeline {} stopped", config_.app_id);
    return true;
}

std::map<std::string, int64_t> Pipeline::committed_offsets() const {
    std::map<std::string, int64_t> out;
    std::lock_guard lock(partitions_mutex_);
    for (const auto& [key, ps] : partitions_)
        out[key.first + "/" + std::to_string(key.second)] = ps->committed.load();
    return out;
}

size_t Pipeline::assigned_partitions() const {
    std::lock_guard lock(partitions_mutex_);
    return partitions_.size();
}

std::vector<PartitionStatus> Pipeline::partition_status() const {
    std::vector<PartitionStatus> out;
    std::lock_guard lock(partitions_mutex_);
    for (const auto& [key, ps] : partitions_) {
        PartitionStatus st;
        st.topic = ps->topic;
        st.partition = ps->partition;
        st.committed = ps->committed.load();
        st.recovering = ps->recovering && !ps->recovered;
        st.refused = ps->table_failed;
        int64_t low = 0, high = 0;
        if (consumer_ &&
            rd_kafka_get_watermark_offsets(consumer_.get(), ps->topic.c_str(), ps->partition, &low, &high) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            high >= 0) {
            st.end = high;
            st.lag = std::max<int64_t>(0, high - (st.committed >= 0 ? st.committed : std::max<int64_t>(0, low)));
        }
        out.push_back(std::move(st));
    }
    return out;
}

std::vector<RecoveryStatus> Pipeline::recovery_status() const {
    std::lock_guard lock(recovery_status_mutex_);
    std::vector<RecoveryStatus> out;
    for (const auto& [key, remaining] : recovery_remaining_) out.push_back({key.first, key.second, remaining});
    return out;
}

Result<std::optional<std::pair<int32_t, std::string>>> Pipeline::read_table(const std::string& table,
                                                                            const std::string& key) {
    auto it = tables_.find(table);
    if (it == tables_.end()) return std::optional<std::pair<int32_t, std::string>>{};
    TableStore& store = *it->second;
    std::vector<TableShard*> shards;
    if (store.spec().global) {
        if (!followers_.count(table) || !followers_.at(table)->caught_up())
            return make_error("global table " + table + " is still catching up");
        shards = store.shards();
    } else {
        std::lock_guard lock(partitions_mutex_);
        for (const auto& [k, ps] : partitions_)
            for (TableShard* shard : ps->shards) {
                if (&shard->store() != &store) continue;
                if (ps->recovering || ps->table_failed)
                    return make_error("table " + table + "[" + std::to_string(ps->partition) + "] is not serving yet");
                if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
            }
    }
    for (TableShard* shard : shards)
        if (auto value = shard->get(key)) return std::optional(std::make_pair(shard->partition(), std::move(*value)));
    return std::optional<std::pair<int32_t, std::string>>{};
}

std::pair<std::vector<int32_t>, int> Pipeline::served_partitions(const std::string& table) const {
    auto it = tables_.find(table);
    if (it == tables_.end()) return {{}, 0};
    const int count = table_partitions_.count(table) ? table_partitions_.at(table) : 0;
    std::vector<int32_t> served;
    if (it->second->spec().global) {
        for (int32_t p = 0; p < count; ++p) served.push_back(p);
        return {served, count};
    }
    std::lock_guard lock(partitions_mutex_);
    for (const auto& [key, ps] : partitions_)
        for (const TableShard* shard : ps->shards)
            if (&shard->store() == it->second.get() &&
                std::find(served.begin(), served.end(), shard->partition()) == served.end())
                served.push_back(shard->partition());
    std::sort(served.begin(), served.end());
    return {served, count};
}

// ------------------------------------------------------------------------------------------ consumer thread

void Pipeline::consume_loop() {
    auto last_commit = Clock::now();
    std::set<std::string> missing_topics_reported;
    bool any_paused = false;
    while (consuming_) {
        // While a partition is paused, come back quickly to resume it: a 100 ms wait lets the lanes run dry.
        rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer_.get(), any_paused ? 1 : 100);
        for (int n = 0; msg; ++n) {
            if (msg->err) {
                if (msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
                    std::string topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?";
                    if (missing_topics_reported.insert(topic).second)
                        log_->warn("source topic {} does not exist yet; waiting for it (the host never creates "
                                   "source topics)", topic);
                } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    log_->warn("consumer: {}", rd_kafka_message_errstr(msg));
                }
                rd_kafka_message_destroy(msg);
            } else {
                dispatch(msg);
            }
            if (n >= kPollBurst) break;
            msg = rd_kafka_consumer_poll(consumer_.get(), 0);
        }
        if (recovery_thread_.joinable()) finish_recoveries();
        any_paused = apply_backpressure();
        if (Clock::now() - last_commit >= config_.commit_interval) {
            flush_completed_ = false;
            commit(false, milliseconds(0));
            last_commit = Clock::now();
        } else if (flush_completed_.exchange(false)) {
            // A table flush finished: its inputs may be committed now. The next flush waits for the tick.
            commit(false, milliseconds(0), false);
        }
    }
}

PartitionState* Pipeline::find_partition(rd_kafka_message_t* msg) {
    if (msg->rkt == last_rkt_ && msg->partition == last_partition_) return last_state_;
    std::lock_guard lock(partitions_mutex_);
    auto it = partitions_.find({rd_kafka_topic_name(msg->rkt), msg->partition});
    if (it == partitions_.end()) return nullptr;
    last_rkt_ = msg->rkt;
    last_partition_ = msg->partition;
    last_state_ = it->second.get();
    return last_state_;
}

void Pipeline::dispatch(rd_kafka_message_t* msg) {
    PartitionState* ps = find_partition(msg);
    bool fresh = false;
    if (ps) {
        std::lock_guard lock(ps->mu);
        fresh = ps->tracker.fetched(msg->offset);
    }
    // The lanes' shape holds still while the event is handed out (a topology reload may add or remove some).
    std::unique_lock lanes_lock = ps ? std::unique_lock(ps->lanes_mu) : std::unique_lock<std::mutex>();
    if (!ps || !fresh || ps->lanes.empty()) {  // not ours (a stale fetch after revoke) or a repeat
        rd_kafka_message_destroy(msg);
        return;
    }
    auto* f = new InFlight;
    f->message = msg;
    f->partition = ps;
    // One lane per agent takes the event: with concurrency, the instance its key hashes to (keyless: by offset).
    const size_t key_hash = msg->key ? std::hash<std::string_view>{}({static_cast<const char*>(msg->key), msg->key_len})
                                     : static_cast<size_t>(msg->offset);
    int receivers = 0;
    for (auto& lane : ps->lanes) receivers += lane->takes(key_hash);
    f->pending.store(receivers, std::memory_order_relaxed);
    ps->unfinished.fetch_add(1, std::memory_order_relaxed);
    for (auto& lane : ps->lanes)
        if (lane->takes(key_hash)) enqueue(*lane, f);
}

bool Lane::claim_turn() {
    // A partition whose tables are recovering holds its events until they are (finish_recoveries). A stopped
    // lane (a plugin swap in progress) keeps its events until it resumes. `local` is the worker's, but no
    // worker runs a lane that is not scheduled.
    if (scheduled || stopping.load(std::memory_order_relaxed) || partition->recovering) return false;
    if (!has_work()) return false;
    scheduled = true;
    return true;
}

void Pipeline::enqueue(Lane& lane, InFlight* f) {
    bool schedule, batch_full = false;
    {
        std::lock_guard lock(lane.mu);
        lane.queue.push_back(f);
        schedule = lane.claim_turn();
        // A lane gathering a batch (take) waits for `within` at most; a full batch goes at once.
        if (!schedule && lane.batch_waiting > 0 && lane.agent->spec->take)
            batch_full = lane.batch_waiting + lane.queue.size() >= static_cast<size_t>(lane.agent->spec->take->max);
    }
    if (schedule) scheduler_.push(&lane);
    else if (batch_full && scheduler_.remove(&lane)) scheduler_.push(&lane);
}

bool Pipeline::apply_backpressure() {
    std::lock_guard lock(partitions_mutex_);
    bool any_paused = false;
    for (auto& [key, ps] : partitions_) {
        if (ps->recovering) {
            any_paused = true;  // paused for recovery; finish_recoveries resumes it
            continue;
        }
        const int64_t unfinished = ps->unfinished.load(std::memory_order_relaxed);
        const bool pause = !ps->paused && unfinished > kPauseAbove;
        const bool resume = ps->paused && unfinished < kResumeBelow;
        any_paused = any_paused || (ps->paused && !resume) || pause;
        if (!pause && !resume) continue;
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, key.first.c_str(), key.second);
        if (pause) rd_kafka_pause_partitions(consumer_.get(), list);
        else rd_kafka_resume_partitions(consumer_.get(), list);
        rd_kafka_topic_partition_list_destroy(list);
        ps->paused = pause;
        log_->debug("{} {}[{}]: {} unfinished", pause ? "paused" : "resumed", key.first, key.second, unfinished);
    }
    return any_paused;
}

void Pipeline::commit(bool sync, milliseconds timeout, bool start_flushes) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
    {
        std::lock_guard lock(partitions_mutex_);
        for (auto& [key, ps] : partitions_) {
            std::optional<int64_t> next;
            {
                std::lock_guard l(ps->mu);
                next = ps->tracker.committable();
            }
            if (!next || ps->recovering || ps->table_failed || ps->changelog_lost) continue;
            int64_t target = *next;
            if (!ps->shards.empty()) {
                // Every change must reach the changelog before the input offset that caused it is committed.
                auto allowed = table_gate(*ps, *next, start_flushes);
                if (!allowed) continue;
                target = *allowed;
            }
            if (target <= ps->committed.load() || (!sync && target == ps->commit_sent)) continue;
            rd_kafka_topic_partition_list_add(list, key.first.c_str(), key.second)->offset = target;
            ps->commit_sent = target;
        }
    }
    if (list->cnt > 0) {
        if (!sync) {
            rd_kafka_commit(consumer_.get(), list, 1);
        } else {
            // A commit that waits at most `timeout`: the broker may be gone at shutdown.
            rd_kafka_queue_t* q = rd_kafka_queue_new(consumer_.get());
            rd_kafka_commit_queue(consumer_.get(), list, q, nullptr, nullptr);
            rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(std::max<int64_t>(timeout.count(), 1)));
            if (!ev) {
                log_->warn("final offset commit not confirmed within {} ms; the uncommitted events will be "
                           "processed again", timeout.count());
            } else {
                rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
                const rd_kafka_topic_partition_list_t* done = rd_kafka_event_topic_partition_list(ev);
                if (err) log_->warn("final offset commit failed: {}", rd_kafka_err2str(err));
                std::lock_guard lock(partitions_mutex_);
                for (int i = 0; !err && done && i < done->cnt; ++i) {
                    auto it = partitions_.find({done->elems[i].topic, done->elems[i].partition});
                    if (it != partitions_.end() && !done->elems[i].err)
                        it->second->committed = std::max(it->second->committed.load(), done->elems[i].offset);
                }
                rd_kafka_event_destroy(ev);
            }
            rd_kafka_queue_destroy(q);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void Pipeline::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
    std::lock_guard swap_lock(swap_mutex_);
    const bool cooperative = !strcmp(rd_kafka_rebalance_protocol(consumer_.get()), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign(partitions);
        joined_ = true;
        if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_assign(consumer_.get(), partitions));
        else rd_kafka_assign(consumer_.get(), partitions);
        // Partitions with tables wait, paused, until their tables are recovered; the others start at once.
        std::vector<PartitionState*> to_recover;
        {
            std::lock_guard lock(partitions_mutex_);
            for (auto& [key, ps] : partitions_)
                if (ps->recovering) to_recover.push_back(ps.get());
        }
        if (!to_recover.empty()) {
            rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(to_recover.size()));
            for (auto* ps : to_recover) rd_kafka_topic_partition_list_add(list, ps->topic.c_str(), ps->partition);
            rd_kafka_pause_partitions(consumer_.get(), list);
            rd_kafka_topic_partition_list_destroy(list);
            if (recovery_thread_.joinable()) recovery_thread_.join();  // an incremental assignment's earlier one
            cancel_recovery_ = false;
            recovery_thread_ = std::thread([this, to_recover] { recovery_loop(to_recover); });
        }
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            log_->warn("rebalance error: {}; dropping the assignment", rd_kafka_err2str(err));
        revoke_all(config_.shutdown_timeout);
        if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_unassign(consumer_.get(), partitions));
        else rd_kafka_assign(consumer_.get(), nullptr);
    }
}

void Pipeline::assign(const rd_kafka_topic_partition_list_t* partitions) {
    std::string list;
    std::lock_guard lock(partitions_mutex_);
    for (int i = 0; i < partitions->cnt; ++i) {
        const auto& tp = partitions->elems[i];
        auto ps = std::make_unique<PartitionState>();
        ps->topic = tp.topic;
        ps->partition = tp.partition;
        if (const TopicSpec* spec = config_.topic(tp.topic)) ps->spec = *spec;
        if (auto it = topic_codecs_.find(ps->topic); it != topic_codecs_.end()) ps->value_codec = it->second;
        for (auto& agent : agents_) {
            const auto& from = agent->spec->from;
            if (std::find(from.begin(), from.end(), ps->topic) == from.end()) continue;
            for (auto& lane : make_lanes(*agent, *ps)) ps->lanes.push_back(std::move(lane));
        }
        ps->recovering = !ps->shards.empty();
        if (ps->topic == config_.leader_topic() && ps->partition == 0 && config_.has_leader_timers() && !leader_.exchange(true))
            log_->info("this host now leads {} (it owns {}[0]): on_leader timers fire here", config_.app_id,
                       config_.leader_topic());
        list += (list.empty() ? "" : " ") + ps->topic + "[" + std::to_string(ps->partition) + "]";
        partitions_[{ps->topic, ps->partition}] = std::move(ps);
    }
    last_rkt_ = nullptr;
    if (partitions->cnt == 0) log_->info("no partitions assigned: this host idles until a rebalance gives it some");
    else log_->info("assigned {} partition(s): {}", partitions->cnt, list);
}

std::vector<std::unique_ptr<Lane>> Pipeline::make_lanes(AgentRuntime& agent, PartitionState& ps) {
    std::vector<std::unique_ptr<Lane>> lanes;
    for (int slot = 0; slot < agent.spec->concurrency; ++slot) {
        lanes.push_back(make_lane(agent, ps));
        lanes.back()->slot = slot;
        lanes.back()->slots = agent.spec->concurrency;
    }
    return lanes;
}

std::unique_ptr<Lane> Pipeline::make_lane(AgentRuntime& agent, PartitionState& ps) {
    auto lane = std::make_unique<Lane>();
    lane->agent = &agent;
    lane->partition = &ps;
    lane->ctx.pipeline = this;
    lane->ctx.agent_name = agent.spec->name;
    lane->ctx.params = agent.params;
    lane->ctx.sinks = &agent.spec->sinks;
    lane->ctx.log = agent.log;
    lane->ctx.partition = ps.partition;
    lane->ctx.stats = &agent.stats;
    lane->ctx.lane = lane.get();
    lane->mailbox = std::make_shared<LaneMailbox>();
    lane->mailbox->lane = lane.get();
    for (const auto& name : agent.spec->tables) {
        TableStore* store = tables_.at(name).get();
        auto shard = store->shard(ps.partition);
        if (!shard) {
            fail(shard.error());
            continue;
        }
        lane->ctx.tables.push_back(TableBinding{name, store, *shard});
        if (store->spec().window) lane->windowed = true;
        if (std::find(ps.shards.begin(), ps.shards.end(), *shard) == ps.shards.end()) ps.shards.push_back(*shard);
    }
    return lane;
}

void Pipeline::revoke_all(milliseconds budget, std::vector<Lane*>* abandoned) {
    const auto deadline = Clock::now() + budget;
    std::set<const Lane*> left;  // lanes whose callback outlived the budget (only with `abandoned`)
    std::vector<std::unique_ptr<PartitionState>> revoked;
    {
        std::lock_guard lock(partitions_mutex_);
        if (partitions_.empty()) return;
    }
    // 0. A recovery in progress is abandoned: the next owner recovers from what was persisted.
    if (recovery_thread_.joinable()) {
        cancel_recovery_ = true;
        recovery_thread_.join();
    }
    // 1. Stop handing events to lanes and wait for the event each worker is running to finish. Then instances
    //    say goodbye (on_revoked) before anything is committed: what they acknowledge or send there counts.
    {
        std::lock_guard lock(partitions_mutex_);
        for (auto& [key, ps] : partitions_)
            for (auto& lane : ps->lanes) {
                if (!abandoned) {
                    stop_lane(*lane);
                } else if (!stop_lane(*lane, deadline)) {
                    left.insert(lane.get());
                    abandoned->push_back(lane.get());
                }
            }
        for (auto& [key, ps] : partitions_)
            for (auto& lane : ps->lanes)
                if (!left.count(lane.get())) revoke_instance(*lane);
    }
    // 2. Outputs of finished events must be acknowledged before their inputs are committed; so must the
    //    table changes they made: a last changelog flush of every table partition, then wait for both.
    auto half_remaining = [&] {
        return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>((deadline - Clock::now()) / 2));
    };
    if (producer_ && !producer_->flush(half_remaining()))
        log_->warn("outputs still unacknowledged at revoke; their inputs stay uncommitted");
    {
        std::lock_guard lock(partitions_mutex_);
        for (auto& [key, ps] : partitions_) {
            if (ps->shards.empty() || ps->recovering || ps->table_failed) continue;
            std::optional<int64_t> next;
            {
                std::lock_guard l(ps->mu);
                next = ps->tracker.committable();
            }
            // A flush in progress stays in ps->flushes, beside the last one: the commit below waits for both,
            // and a change either one did not get into the changelog blocks it (table_gate).
            for (auto& f : ps->flushes) f->shard->flush_in_progress = false;
            if (next && !ps->changelog_lost) start_flush(*ps, *next);
        }
    }
    if (producer_ && !producer_->flush(half_remaining()))
        log_->warn("table changes still unacknowledged at revoke; their inputs stay uncommitted");
    // 3. Commit the finished prefix of every partition.
    commit(true, std::max(milliseconds(100), std::chrono::duration_cast<milliseconds>(deadline - Clock::now())));
    // 4. Drop what was fetched but not finished (or not acknowledged, or waiting for a reply): it was not
    //    committed, so the next owner of the partition reads it again.
    {
        std::lock_guard lock(partitions_mutex_);
        for (auto& [key, ps] : partitions_) {
            // Flushes whose delivery reports may still come (the waits above can time out) stay alive.
            for (auto& f : ps->flushes)
                if (!f->done) abandoned_flushes_.push_back(std::move(f));
            ps->flushes.clear();
            for (auto& lane : ps->lanes) {
                if (left.count(lane.get())) continue;  // still in its callback: what it holds stays uncommitted
                lane->ctx.tables.clear();
                release_lane(*lane, 0);
            }
            // Another host may own the partition next; what it writes arrives through the changelog when the
            // partition comes back, so the cache must not outlive the assignment.
            for (TableShard* shard : ps->shards) {
                shard->drop_cache();
                if (auto it = followers_.find(shard->store().spec().name); it != followers_.end())
                    it->second->release(shard->partition());
            }
            ps->revoked.store(true, std::memory_order_relaxed);
            revoked.push_back(std::move(ps));
        }
        partitions_.clear();
        last_rkt_ = nullptr;
    }
    log_->info("revoked {} partition(s)", revoked.size());
    if (leader_.exchange(false)) log_->info("this host no longer leads {}: its on_leader timers stop", config_.app_id);
    // A revoked partition is kept while something still points at it: its unfinished events (an output's
    // delivery report, an ask's answer, a channel event caused by it); its lanes were stopped and released.
    // Without this sweep every eager rebalance would keep the old partitions until the host stops.
    std::erase_if(retired_, [](const auto& ps) { return ps->unfinished.load(std::memory_order_acquire) == 0; });
    for (auto& ps : revoked) retired_.push_back(std::move(ps));
}

bool Pipeline::stop_lane(Lane& lane, std::optional<std::chrono::steady_clock::time_point> deadline) {
    lane.stopping = true;
    if (scheduler_.remove(&lane)) {
        std::lock_guard lock(lane.mu);
        lane.scheduled = false;
    }
    std::unique_lock lock(lane.mu);
    auto idle = [&] { return !lane.scheduled; };
    if (deadline) return lane.idle.wait_until(lock, *deadline, idle);
    while (!lane.idle.wait_for(lock, std::chrono::seconds(5), idle))
        lane.agent->log->warn("still waiting for agent {} on {}[{}] to return from its callback", lane.agent->spec->name,
                              lane.partition->topic, lane.partition->partition);
    return true;
}

// ------------------------------------------------------------------------------------------------ workers

void Pipeline::worker_loop() {
    while (Lane* lane = scheduler_.pop()) run_lane(*lane);
}

void Pipeline::run_lane(Lane& lane) {
    Outcome outcome = Outcome::done;
    milliseconds delay{0};
    int budget = kLaneBudget;
    while (budget > 0 && !lane.stopping.load(std::memory_order_relaxed)) {
        // Read after the stopping check: a plugin swap changes the agent's image only while its lanes stop.
        const auto& cb = lane.agent->info->callbacks;
        if (lane.agent->stats.quarantined.load(std::memory_order_relaxed)) {
            outcome = Outcome::park;
            break;
        }
        if (lane.created && lane.generation != lane.agent->generation.load()) destroy_instance(lane);  // one_for_all
        std::string error;
        if (lane.has_replies.load(std::memory_order_acquire) && !deliver_replies(lane, error)) {
            outcome = on_failure(lane, 0, MPH_FATAL, "create failed: " + error, delay);
            if (outcome == Outcome::done) continue;
            break;
        }
        if (lane.local.empty()) {
            std::lock_guard lock(lane.mu);
            lane.local.swap(lane.queue);
        }
        const size_t dropped = lane.partition->channel ? drop_revoked_channel_events(lane) : 0;
        if (lane.local.empty() && lane.orphans.empty()) {
            if (dropped > 0) continue;  // all dropped: take what is queued
            break;
        }
        if (!channels_.empty() && !lane.partition->channel && writes_to_full_channel(lane)) {
            delay = kFullChannelWait;  // its events wait in its queue (the partition's marks bound them)
            outcome = Outcome::delay;
            break;
        }
        if (!ensure_instance(lane, error)) {
            outcome = on_failure(lane, 0, MPH_FATAL, "create failed: " + error, delay);
            if (outcome == Outcome::done) continue;
            break;
        }
        size_t filtered_limit = kMaxBatch;
        if (lane.agent->filter) {
            const size_t before = lane.local.size();
            outcome = filter_events(lane, filtered_limit, delay);
            budget -= static_cast<int>(before - lane.local.size());  // filtered events count: other lanes get a turn
            if (outcome != Outcome::done) break;
            if (lane.local.empty()) continue;  // all filtered: take what is queued
        }
        // One by one to on_event; to on_batch when the agent has no on_event, or takes batches (take:).
        if (cb.on_event && !lane.agent->spec->take) {
            outcome = deliver(lane, lane.local.front(), delay);
            --budget;
        } else {
            size_t limit = std::min(kMaxBatch, filtered_limit);
            if (const auto& take = lane.agent->spec->take) {
                // Gather up to take.max, or until the batch's first event has waited take.within.
                limit = std::min(static_cast<size_t>(take->max), filtered_limit);
                const auto now = std::chrono::steady_clock::now();
                std::lock_guard lock(lane.mu);
                while (lane.local.size() < limit && !lane.queue.empty()) {
                    lane.local.push_back(lane.queue.front());
                    lane.queue.pop_front();
                }
                if (lane.batch_since == std::chrono::steady_clock::time_point{}) lane.batch_since = now;
                const auto waited = std::chrono::duration_cast<milliseconds>(now - lane.batch_since);
                if (lane.local.size() < limit && waited < take->within) {
                    lane.batch_waiting = lane.local.size();
                    delay = take->within - waited;
                    outcome = Outcome::delay;
                    break;
                }
                lane.batch_waiting = 0;
                lane.batch_since = {};  // this batch goes; the next one starts gathering now
            }
            size_t n = std::min(lane.local.size(), limit);
            outcome = deliver_batch(lane, n, delay);
            budget -= static_cast<int>(n);
        }
        if (outcome != Outcome::done) break;
    }
    if (outcome == Outcome::delay && !lane.stopping) {
        scheduler_.push_after(&lane, delay);
        return;
    }
    {
        std::lock_guard lock(lane.mu);
        if (outcome == Outcome::park || lane.stopping || !lane.has_work()) {
            lane.scheduled = false;
            lane.idle.notify_all();
            return;
        }
    }
    scheduler_.push(&lane);  // more work: to the back, so other lanes get a turn
}

bool Pipeline::ensure_instance(Lane& lane, std::string& error) {
    if (lane.created) return true;
    const auto& cb = lane.agent->info->callbacks;
    lane.ctx.error.clear();
    void* instance = nullptr;
    mph_status st = MPH_OK;
    if (cb.create) {
        ClockedCall call(lane.call, call_record(lane, "create"));
        st = cb.create(&lane.ctx, &instance);
    }
    if (st != MPH_OK) {
        error = lane.ctx.error.empty() ? "create returned status " + std::to_string(st) : lane.ctx.error;
        if (instance && cb.destroy) {
            ClockedCall call(lane.call, call_record(lane, "destroy"));
            cb.destroy(instance);
        }
        return false;
    }
    lane.instance = instance;
    lane.created = true;
    lane.generation = lane.agent->generation.load();
    // Events its predecessor processed but never acknowledged (ack: manual) come to it first, in order.
    lane.local.insert(lane.local.begin(), lane.orphans.begin(), lane.orphans.end());
    lane.orphans.clear();
    if (cb.on_assigned) {
        lane.ctx.error.clear();
        ClockedCall call(lane.call, call_record(lane, "on_assigned"));
        st = cb.on_assigned(instance, &lane.ctx, lane.partition->partition);
        if (st != MPH_OK) lane.agent->log->warn("on_assigned returned {}: {}", st, lane.ctx.error);
    }
    return true;
}

void Pipeline::destroy_instance(Lane& lane) {
    if (!lane.created) return;
    // ack: manual: what it held unacknowledged goes to its successor (or, at a revoke, back to the broker).
    for (auto& [offset, f] : lane.held) lane.orphans.push_back(f);
    lane.agent->stats.unacked.fetch_sub(lane.held.size(), std::memory_order_relaxed);
    lane.held.clear();
    std::sort(lane.orphans.begin(), lane.orphans.end(),
              [](const InFlight* a, const InFlight* b) { return a->offset() < b->offset(); });
    if (lane.agent->info->callbacks.destroy) {
        ClockedCall call(lane.call, call_record(lane, "destroy"));
        lane.agent->info->callbacks.destroy(lane.instance);
    }
    lane.instance = nullptr;
    lane.created = false;
}

Pipeline::Outcome Pipeline::deliver(Lane& lane, InFlight* f, milliseconds& delay) {
    const rd_kafka_message_t* msg = f->message;  // null for a channel event
    if (!lane.agent->poison.empty() && msg)
        if (auto it = lane.agent->poison.find(where(*lane.partition, f->offset())); it != lane.agent->poison.end()) {
            dead_letter_poison(lane, f, it->second);  // never given to the agent again
            if (failed_) return Outcome::park;
            lane.local.pop_front();
            finish(f);
            return Outcome::done;
        }
    if (auto bad = decode_error(*lane.partition, f, call_record(lane, "the topic's value codec", f->offset()))) {
        lane.agent->stats.undecodable++;
        // Retrying cannot fix an undecodable value: the error policy applies at once.
        lane.attempts = lane.agent->spec->on_error.retry;
        lane.failing_offset = lane.local.front()->offset();  // the policy applies now
        return on_failure(lane, 1, MPH_RETRY, *bad, delay);
    }
    if (!lane.agent->spec->echo.empty())
        if (mph_status st = echo(lane, f); st != MPH_OK)
            return on_failure(lane, 1, MPH_RETRY, "echo to " + lane.agent->spec->echo.front() + " failed", delay);
    mph_event ev = make_event(*lane.partition, f, t_headers);
    lane.ctx.message = msg;
    lane.ctx.current = f;
    lane.ctx.inflight = f;
    lane.ctx.error.clear();
    lane.ctx.views.clear();
    lane.in_callback = 1;
    const auto started = std::chrono::steady_clock::now();
    mph_status verdict;
    {
        ClockedCall call(lane.call, call_record(lane, "on_event", f->offset()), started);
        verdict = lane.agent->info->callbacks.on_event(lane.instance, &lane.ctx, &ev);
    }
    lane.agent->stats.latency.record(std::chrono::steady_clock::now() - started);
    lane.ctx.message = nullptr;
    lane.ctx.current = nullptr;
    lane.ctx.inflight = nullptr;
    if (verdict == MPH_OK) {
        if (f->offset() >= lane.failing_offset) {
            lane.attempts = 0;
            lane.failing_offset = -1;
        }
        lane.agent->stats.processed.fetch_add(1, std::memory_order_relaxed);
        if (lane.windowed) advance_windows(lane, {msg}, f);  // on_window_close may still ack the event
        lane.in_callback = 0;
        lane.local.pop_front();
        finished_by_agent(lane, f);
        lane.early_acks.clear();
        return Outcome::done;
    }
    lane.in_callback = 0;
    lane.early_acks.clear();  // the event comes again: an acknowledgement of it meant this attempt
    return on_failure(lane, 1, verdict, lane.ctx.error, delay);
}

Pipeline::Outcome Pipeline::filter_events(Lane& lane, size_t& limit, milliseconds& delay) {
    const mph_predicate_descriptor& predicate = *lane.agent->filter;
    std::string why;
    auto keep = [&](InFlight* f) {
        std::vector<mph_header> headers;
        const mph_event ev = make_event(*lane.partition, f, headers);
        char errbuf[256] = {};
        PluginCallRecord record = call_record(lane, "the filter predicate", f->offset());
        record.plugin = lane.agent->filter_plugin->name().c_str();
        record.sha1 = lane.agent->filter_plugin->sha1().c_str();
        ClockedCall call(lane.call, record);
        const int32_t verdict = predicate.keep(&ev, errbuf, sizeof errbuf);
        errbuf[sizeof errbuf - 1] = '\0';
        why = errbuf[0] ? errbuf : "the predicate returned " + std::to_string(verdict);
        return verdict;
    };
    auto drop = [&](size_t i) {  // acknowledged: it is done as far as this agent is concerned
        InFlight* f = lane.local[i];
        lane.local.erase(lane.local.begin() + static_cast<std::ptrdiff_t>(i));
        lane.agent->stats.filtered.fetch_add(1, std::memory_order_relaxed);
        finish(f);
    };
    while (!lane.local.empty()) {
        const int32_t verdict = keep(lane.local.front());
        if (verdict == 1) break;
        if (verdict == 0) {
            drop(0);
            continue;
        }
        lane.attempts = lane.agent->spec->on_error.retry;  // a retry would ask the same predicate the same question
        lane.failing_offset = lane.local.front()->offset();  // the policy applies now
        return on_failure(lane, 1, MPH_RETRY, "filter " + lane.agent->spec->filter.name + ": " + why, delay);
    }
    if (lane.agent->info->callbacks.on_event && !lane.agent->spec->take)
        return Outcome::done;  // one event at a time: the head is enough
    for (size_t i = 1; i < lane.local.size() && i < limit;) {
        const int32_t verdict = keep(lane.local[i]);
        if (verdict == 1) ++i;
        else if (verdict == 0) drop(i);
        else limit = i;  // the batch stops before it; it is handled at the head next time
    }
    return Outcome::done;
}

Pipeline::Outcome Pipeline::deliver_batch(Lane& lane, size_t count, milliseconds& delay) {
    // Undecodable events at the head follow the error policy one by one; the batch is the decodable run.
    const PluginCallRecord in_codec = call_record(lane, "the topic's value codec");
    if (auto bad = decode_error(*lane.partition, lane.local.front(), in_codec)) {
        lane.agent->stats.undecodable++;
        lane.attempts = lane.agent->spec->on_error.retry;
        lane.failing_offset = lane.local.front()->offset();  // the policy applies now
        return on_failure(lane, 1, MPH_RETRY, *bad, delay);
    }
    size_t n = 1;
    while (n < count && !decode_error(*lane.partition, lane.local[n], in_codec)) ++n;
    std::vector<std::vector<mph_header>> headers(n);
    std::vector<mph_event> events(n);
    std::vector<const mph_event*> pointers(n);
    for (size_t i = 0; i < n; ++i) {
        events[i] = make_event(*lane.partition, lane.local[i], headers[i]);
        pointers[i] = &events[i];
    }
    if (!lane.agent->spec->echo.empty())
        for (size_t i = 0; i < n; ++i)  // each copy tracked against its own event
            if (mph_status st = echo(lane, lane.local[i]); st != MPH_OK)
                return on_failure(lane, n, MPH_RETRY, "echo to " + lane.agent->spec->echo.front() + " failed", delay);
    // Outputs are tracked against the first event: the commit cannot pass it before they are acknowledged. (A
    // channel has no such order: there they are tracked against a token holding every event of the batch.)
    InFlight* token = lane.partition->channel && n > 1 ? hold_batch(lane, n) : nullptr;
    lane.ctx.inflight = token ? token : lane.local.front();
    lane.ctx.error.clear();
    lane.ctx.views.clear();
    lane.in_callback = n;
    const auto started = std::chrono::steady_clock::now();
    mph_status verdict;
    {
        ClockedCall call(lane.call, call_record(lane, "on_batch", lane.local.front()->offset()), started);
        verdict = lane.agent->info->callbacks.on_batch(lane.instance, &lane.ctx, pointers.data(), n);
    }
    lane.agent->stats.latency.record(std::chrono::steady_clock::now() - started);
    lane.ctx.inflight = nullptr;
    // Also after a failure: what the failed attempt sent is on its way, and the events stay held by their lane.
    if (token) finish(token, 1);
    if (verdict == MPH_OK) {
        if (lane.local[n - 1]->offset() >= lane.failing_offset) {
            lane.attempts = 0;
            lane.failing_offset = -1;
        }
        lane.agent->stats.processed.fetch_add(n, std::memory_order_relaxed);
        if (lane.windowed) {
            std::vector<const rd_kafka_message_t*> messages;
            for (size_t i = 0; i < n; ++i) messages.push_back(lane.local[i]->message);
            advance_windows(lane, messages, lane.local.front());
        }
        lane.in_callback = 0;
        for (size_t i = 0; i < n; ++i) {
            InFlight* f = lane.local.front();
            lane.local.pop_front();
            finished_by_agent(lane, f);
        }
        lane.early_acks.clear();
        return Outcome::done;
    }
    lane.in_callback = 0;
    lane.early_acks.clear();
    return on_failure(lane, n, verdict, lane.ctx.error, delay);
}

Pipeline::Outcome Pipeline::on_failure(Lane& lane, size_t count, mph_status verdict, std::string error,
                                       milliseconds& delay) {
    AgentRuntime& agent = *lane.agent;
    const ErrorPolicy& policy = agent.spec->on_error;
    agent.stats.failures++;
    if (error.empty()) error = "no reason given (status " + std::to_string(verdict) + ")";
    const std::string at = count > 0 ? where(*lane.partition, lane.local.front()->offset())
                                     : lane.partition->topic + "[" + std::to_string(lane.partition->partition) + "]";
    if (count > 0) {
        const int64_t offset = lane.local.front()->offset();
        if (offset != lane.failing_offset) lane.attempts = 0;  // a new event fails: its own count
        lane.failing_offset = offset;
        ++lane.attempts;
    }

    bool restart = verdict != MPH_RETRY;
    if (restart) {
        destroy_instance(lane);
        RestartPolicy::Decision d;
        {
            std::lock_guard lock(agent.policy_mutex);
            d = agent.restarts.on_failure(Clock::now());
        }
        agent.stats.restarts++;
        if (agent.spec->supervisor.strategy == Strategy::one_for_all) agent.generation++;
        if (d.quarantine) {
            if (!agent.stats.quarantined.exchange(true))
                agent.log->error("agent {} quarantined: more than {} restarts within {} (last failure at {}: {}); "
                                 "its events stay uncommitted, the other agents keep running",
                                 agent.spec->name, agent.spec->supervisor.max_restarts,
                                 format_duration(agent.spec->supervisor.within), at, error);
            return Outcome::park;
        }
        agent.log->error("agent {} failed at {}: {}; restarting its instance in {} (restart {} of at most {} within {})",
                         agent.spec->name, at, error, format_duration(d.delay), d.restarts_in_window,
                         agent.spec->supervisor.max_restarts, format_duration(agent.spec->supervisor.within));
        delay = d.delay;
    }
    if (count > 0 && lane.attempts > policy.retry) {
        // Out of retries: the policy decides, for every event the verdict covered.
        for (size_t i = 0; i < count; ++i) {
            InFlight* f = lane.local.front();
            if (policy.then == ThenPolicy::crash) {
                fail("agent " + agent.spec->name + " failed at " + where(*lane.partition, f->offset()) +
                     " after " + std::to_string(lane.attempts) + " attempt(s) and its policy is crash: " + error);
                return Outcome::park;
            }
            apply_error_policy(lane, f, error);
            if (failed_) return Outcome::park;
            lane.local.pop_front();
            finish(f);
        }
        lane.attempts = 0;
        lane.failing_offset = -1;
        return restart ? Outcome::delay : Outcome::done;
    }
    if (!restart) {
        // RETRY: the same event again after a backoff that doubles per attempt, capped at 30 s.
        delay = policy.retry_backoff;
        for (int i = 1; i < lane.attempts && delay < std::chrono::seconds(30); ++i) delay *= 2;
        delay = std::min<milliseconds>(delay, std::chrono::seconds(30));
        agent.log->warn("agent {} asked to retry {} (attempt {} of {}): {}; retrying in {}", agent.spec->name, at,
                        lane.attempts, policy.retry + 1, error, format_duration(delay));
    }
    return Outcome::delay;
}

void Pipeline::finish(InFlight* f, int completed) {
    // A loop along the chain of causes, not a recursion: an agent writing back to the channel it reads makes
    // chains as long as it likes.
    while (f) {
        // completed == 0: the share is abandoned (revoke, shutdown, failed delivery); the offset stays unfinished,
        // so it is never committed and the next owner of the partition processes it again.
        if (completed == 0) f->abandoned.store(true, std::memory_order_relaxed);
        if (f->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        PartitionState* ps = f->partition;
        const bool abandoned = f->abandoned.load(std::memory_order_relaxed);
        if (!abandoned) {
            if (f->on_finished)
                for (auto& hook : *f->on_finished) hook();
            if (f->message) {  // a channel has no offsets to commit
                std::lock_guard lock(ps->mu);
                ps->tracker.done(f->message->offset);
            }
        }
        InFlight* cause = nullptr;
        std::vector<InFlight*> batch;
        if (f->channel_event) {
            cause = f->channel_event->cause;
            batch.swap(f->channel_event->batch);
        }
        // (release: a revoked partition may be freed once this reaches 0, see revoke_all)
        if (!f->channel_event || !f->channel_event->batch_token) ps->unfinished.fetch_sub(1, std::memory_order_release);
        if (f->message) rd_kafka_message_destroy(f->message);
        delete f;
        completed = abandoned ? 0 : 1;
        for (InFlight* held : batch) finish(held, completed);  // a batch token: one level per token in the chain
        f = cause;  // the event that sent it is done with it too
    }
}

// ------------------------------------------------------------------------------------------------- windows

void Pipeline::advance_windows(Lane& lane, const std::vector<const rd_kafka_message_t*>& events, InFlight* inflight) {
    for (const TableBinding& b : lane.ctx.tables) {
        if (!b.store->spec().window) continue;
        const WindowSpec& spec = *b.store->spec().window;
        int64_t t = -1;
        for (const rd_kafka_message_t* msg : events) {
            rd_kafka_timestamp_type_t type;
            const int64_t ts = rd_kafka_message_timestamp(msg, &type);
            t = std::max(t, event_time(spec, type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
                                       {static_cast<const char*>(msg->payload), msg->payload ? msg->len : 0}));
        }
        const auto closers = std::atomic_load(&window_closers_);  // a reload may replace it
        auto closer = closers->find(b.name);
        const bool takes = closer == closers->end() || closer->second == lane.agent->spec->name;
        uint64_t expired = 0;
        std::optional<int64_t> close_mark;
        auto closed = WindowedShard(*b.shard, spec).advance(t, takes, expired, close_mark);
        if (expired) b.store->windows_expired.fetch_add(expired, std::memory_order_relaxed);
        if (close_mark) {
            // Stored once what on_window_close sends for these windows is acknowledged, with the event: a crash
            // before that closes them again (at-least-once), never loses a close.
            TableShard* shard = b.shard;
            auto store_mark = [shard, &spec, mark = *close_mark] { WindowedShard(*shard, spec).persist_close_mark(mark); };
            if (!inflight->on_finished) inflight->on_finished = std::make_unique<std::vector<std::function<void()>>>();
            inflight->on_finished->push_back(std::move(store_mark));
        }
        if (closed.empty()) continue;
        if (spec.kind == WindowKind::session) {
            // Likewise for sessions: each is stored as closed once what its close sent is acknowledged.
            std::vector<std::pair<std::string, TimeWindow>> sessions;
            for (const auto& c : closed) sessions.emplace_back(c.key, c.window);
            TableShard* shard = b.shard;
            auto store_closes = [shard, &spec, sessions = std::move(sessions)] {
                WindowedShard(*shard, spec).persist_session_closes(sessions);
            };
            if (!inflight->on_finished) inflight->on_finished = std::make_unique<std::vector<std::function<void()>>>();
            inflight->on_finished->push_back(std::move(store_closes));
        }
        b.store->windows_closed.fetch_add(closed.size(), std::memory_order_relaxed);
        const auto on_close = lane.agent->info->callbacks.on_window_close;
        if (!on_close || closer == closers->end()) continue;
        lane.ctx.inflight = inflight;  // what it sends is acknowledged before the event's offset commits
        for (const auto& c : closed) {
            const mph_window window{sizeof(mph_window), c.window.start, c.window.end};
            lane.ctx.error.clear();
            lane.ctx.views.clear();
            ClockedCall call(lane.call, call_record(lane, "on_window_close", inflight->offset()));
            mph_status st = on_close(lane.instance, &lane.ctx, b.name.c_str(), c.key.data(), c.key.size(), &window,
                                     c.value.data(), c.value.size());
            if (st != MPH_OK) {
                lane.agent->stats.failures.fetch_add(1, std::memory_order_relaxed);
                lane.agent->log->warn("on_window_close of {} [{}, {}) returned {}: {}", b.name, c.window.start,
                                      c.window.end, st, lane.ctx.error);
            }
        }
        lane.ctx.inflight = nullptr;
    }
}

// -------------------------------------------------------------------------------------------------- timers

}  // namespace mephisto
