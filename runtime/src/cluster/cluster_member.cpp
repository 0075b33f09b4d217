#include "cluster/cluster_member.hpp"

#include <algorithm>

#include "common/thread_name.hpp"
#include "common/wall_clock.hpp"
#include "kafka/topic_admin.hpp"

namespace mephisto {
namespace {

using std::chrono::milliseconds;

// Hosts remembered at most: records under ever new keys (a misbehaving writer) cannot grow the view without bound.
constexpr size_t kMaxHosts = 4096;

}  // namespace

std::string control_topic(const std::string& app) { return app + "-__cluster"; }

Result<std::unique_ptr<ClusterMember>> ClusterMember::start(ClusterMemberOptions options) {
    std::unique_ptr<ClusterMember> m(new ClusterMember(std::move(options)));
    const auto& o = m->options_;
    m->topic_ = control_topic(o.app_id);
    auto fail = [&](const std::string& why) { return make_error("cluster membership of " + o.app_id + ": " + why); };

    // The member's own clients: the pipeline's broker properties over the member's defaults.
    auto client = [&](rd_kafka_type_t type, const std::map<std::string, std::string>& defaults) -> Result<KafkaPtr> {
        auto conf = make_conf({&defaults, &o.client_properties});
        if (!conf) return fail(conf.error());
        route_logs(conf->get());
        auto made = make_client(type, std::move(*conf));
        if (!made) return fail(made.error());
        return std::move(*made);
    };
    const std::string client_id = "mephisto-" + o.app_id + "-cluster";
    auto producer = client(RD_KAFKA_PRODUCER, {{"client.id", client_id}, {"linger.ms", "0"}, {"message.timeout.ms", "10000"}});
    if (!producer) return make_error(producer.error());
    m->producer_ = std::move(*producer);
    auto consumer = client(RD_KAFKA_CONSUMER, {{"client.id", client_id},
                                              {"group.id", m->topic_ + "-reader"},  // never joined: assign() only
                                              {"enable.auto.commit", "false"},
                                              {"enable.partition.eof", "true"},
                                              {"auto.offset.reset", "earliest"},
                                              {"fetch.wait.max.ms", "100"}});
    if (!consumer) return make_error(consumer.error());
    m->consumer_ = std::move(*consumer);

    m->started_ms_ = wall_ms();
    ClusterMember* self = m.get();
    // The broker is asked for the topic on the member's thread: a host whose broker is away starts all the same,
    // and joins the cluster view once it is back.
    m->thread_ = std::thread([self] {
        name_this_thread("cluster");
        self->run();
    });
    return m;
}

Status ClusterMember::open_topic() {
    // A short look first: while no broker answers, a stop must not wait for the longer calls below.
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t reachable = rd_kafka_metadata(producer_.get(), 0, nullptr, &md, 500);
    if (md) rd_kafka_metadata_destroy(md);
    if (reachable) return make_error(std::string("no broker answers: ") + rd_kafka_err2str(reachable));
    // One partition: a host's records stay in order, and a reader gets the whole cluster from one log.
    TopicAdmin admin(producer_.get(), options_.embedded, options_.log);
    if (auto st = admin.ensure(topic_, 1); !st) return st;
    const int partitions = admin.partitions_of(topic_);
    if (partitions <= 0) return make_error("the control topic " + topic_ + " does not exist");
    std::vector<int64_t> ends(partitions, 0);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int32_t p = 0; p < partitions; ++p) {
        int64_t low = 0;
        if (auto err = rd_kafka_query_watermark_offsets(consumer_.get(), topic_.c_str(), p, &low, &ends[p], 2000)) {
            rd_kafka_topic_partition_list_destroy(list);
            return make_error("cannot read the end of " + topic_ + ": " + rd_kafka_err2str(err));
        }
        rd_kafka_topic_partition_list_add(list, topic_.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    const rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) return make_error("cannot read " + topic_ + ": " + rd_kafka_err2str(err));
    initial_end_ = std::move(ends);
    caught_up_ = std::all_of(initial_end_.begin(), initial_end_.end(), [](int64_t e) { return e == 0; });
    return {};
}

ClusterMember::~ClusterMember() { leave(milliseconds(1000)); }

void ClusterMember::run() {
    std::string last_error;
    while (!stop_.load()) {
        auto st = open_topic();
        if (st) break;
        if (st.error() != last_error)
            options_.log->warn("cluster: {}; this host is missing from the cluster view until it can publish (trying "
                               "again every second)",
                               st.error());
        last_error = st.error();
        std::unique_lock lock(stop_mu_);
        stop_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
    }
    if (stop_.load()) return;
    opened_ = true;
    if (options_.version) published_version_ = options_.version();
    publish();
    options_.log->info("cluster: host {} publishes on {} every {} ms (a host silent for {} ms counts as gone)",
                       options_.host_id, topic_, options_.heartbeat.count(), options_.stale_after.count());
    auto next = std::chrono::steady_clock::now() + options_.heartbeat;
    while (!stop_.load()) {
        const auto now = std::chrono::steady_clock::now();
        const uint64_t version = options_.version ? options_.version() : 0;
        if (version != published_version_ || now >= next) {
            published_version_ = version;
            publish();
            forget_stale();
            next = now + options_.heartbeat;
        }
        rd_kafka_poll(producer_.get(), 0);  // delivery reports
        // Short waits: a change of this host's record goes out within 50 ms.
        const auto wait = std::clamp<int64_t>(
            std::chrono::duration_cast<milliseconds>(next - std::chrono::steady_clock::now()).count(), 0, 50);
        if (rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer_.get(), static_cast<int>(wait))) {
            read(*msg);
            rd_kafka_message_destroy(msg);
        }
    }
}

void ClusterMember::publish() {
    HostRecord record = options_.describe ? options_.describe() : HostRecord{};
    record.host = options_.host_id;
    record.pipeline = options_.app_id;
    record.started_ms = started_ms_;
    record.heartbeat_ms = wall_ms();
    const std::string value = to_json(record);
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_TOPIC(topic_.c_str()),
        RD_KAFKA_V_KEY(options_.host_id.data(), options_.host_id.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    if (err) options_.log->warn("cluster: cannot publish this host's record on {}: {}", topic_, rd_kafka_err2str(err));
    std::lock_guard lock(mu_);
    hosts_[record.host] = std::move(record);  // known at once, before the topic echoes it
}

void ClusterMember::read(const rd_kafka_message_t& msg) {
    const int32_t p = msg.partition;
    const bool known = p >= 0 && p < static_cast<int32_t>(initial_end_.size());
    if (msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (known && msg.offset >= initial_end_[p]) initial_end_[p] = 0;  // reached: nothing more to wait for
        if (!caught_up_ && std::all_of(initial_end_.begin(), initial_end_.end(), [](int64_t e) { return e == 0; }))
            caught_up_ = true;
        return;
    }
    if (msg.err) {
        options_.log->warn("cluster: reading {}: {}", topic_, rd_kafka_message_errstr(&msg));
        return;
    }
    if (!msg.key || msg.key_len == 0 || msg.key_len > 1024) {
        skipped("a record at offset " + std::to_string(msg.offset) + " has no usable key");
        return;
    }
    const std::string host(static_cast<const char*>(msg.key), msg.key_len);
    // This host's own records: known since it published them. (Its tombstone is written after it stopped reading;
    // one under its id from elsewhere is not its word.)
    if (host == options_.host_id) return;
    if (!msg.payload) {  // a tombstone: the host left
        std::lock_guard lock(mu_);
        hosts_.erase(host);
        return;
    }
    auto record = parse_host_record(host, {static_cast<const char*>(msg.payload), msg.len});
    if (!record) {
        skipped("the record of host " + host + " at offset " + std::to_string(msg.offset) + ": " + record.error());
        return;
    }
    // A heartbeat from the future would keep a host listed forever.
    if (record->heartbeat_ms > wall_ms() + options_.stale_after.count()) {
        skipped("the record of host " + host + " at offset " + std::to_string(msg.offset) +
                ": its heartbeat is in the future (clocks apart by more than the stale time)");
        return;
    }
    std::lock_guard lock(mu_);
    if (hosts_.size() >= kMaxHosts && !hosts_.count(host)) {
        skipped("the record of host " + host + ": already " + std::to_string(kMaxHosts) + " hosts known");
        return;
    }
    hosts_[host] = std::move(*record);
}

void ClusterMember::skipped(const std::string& what) {
    // The first ten, then one in a thousand: a flood of bad records must not flood the log too.
    if (++skipped_ <= 10 || skipped_ % 1000 == 0)
        options_.log->warn("cluster: skipped on {} ({} so far): {}", topic_, skipped_, what);
}

void ClusterMember::forget_stale() {
    const int64_t now = wall_ms();
    std::lock_guard lock(mu_);
    std::erase_if(hosts_, [&](const auto& entry) {
        return entry.first != options_.host_id && now - entry.second.heartbeat_ms > options_.stale_after.count();
    });
}

std::vector<ClusterHost> ClusterMember::hosts() const {
    const int64_t now = wall_ms();
    std::vector<ClusterHost> out;
    std::lock_guard lock(mu_);
    for (const auto& [id, record] : hosts_) {
        const milliseconds age(std::max<int64_t>(0, now - record.heartbeat_ms));
        if (id != options_.host_id && age > options_.stale_after) continue;  // silent too long: gone
        out.push_back({record, age});
    }
    return out;
}

void ClusterMember::leave(milliseconds budget) {
    if (left_) return;
    left_ = true;
    {
        std::lock_guard lock(stop_mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (producer_ && opened_) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_.get(), RD_KAFKA_V_TOPIC(topic_.c_str()),
            RD_KAFKA_V_KEY(options_.host_id.data(), options_.host_id.size()), RD_KAFKA_V_VALUE(nullptr, 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err || rd_kafka_flush(producer_.get(), static_cast<int>(budget.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
            options_.log->warn("cluster: could not say on {} that this host left; the others see it gone {} ms after "
                               "its last heartbeat",
                               topic_, options_.stale_after.count());
    }
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
    producer_.reset();
}

}  // namespace mephisto
