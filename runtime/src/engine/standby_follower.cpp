// The standby follower (engine/standby_follower.hpp). THREAD: the follower's, except where a function says.
#include "engine/standby_follower.hpp"

#include <algorithm>
#include <chrono>

#include "common/logging.hpp"
#include "common/thread_name.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;

// Records per write batch, over all replicas: bounds how long take_over() and the admin API's reads wait for a
// batch in progress (the follower holds its lock while RocksDB writes).
constexpr size_t kApplyBatch = 5'000;
constexpr auto kApplyEvery = std::chrono::milliseconds(50);  // bounds how far a standby trails what it read
constexpr auto kPlacementEvery = std::chrono::seconds(1);
constexpr size_t kReadBatch = 4096;  // messages taken from librdkafka's queue at a time

}  // namespace

StandbyFollower::StandbyFollower(Services services, std::map<std::string, TableStore*> stores)
    : s_(std::move(services)), stores_(std::move(stores)) {
    for (const auto& [name, store] : stores_) table_of_changelog_[store->spec().changelog_topic] = name;
}

StandbyFollower::~StandbyFollower() { stop(); }

Status StandbyFollower::start() {
    const std::map<std::string, std::string> defaults = {{"group.id", s_.app_id + "-standby"},
                                                         {"enable.auto.commit", "false"},
                                                         {"enable.partition.eof", "true"},
                                                         // Below the log start (retention): from what is left.
                                                         {"auto.offset.reset", "earliest"},
                                                         {"fetch.wait.max.ms", "100"},
                                                         {"queued.min.messages", "200000"},
                                                         {"client.id", "mephisto-" + s_.app_id + "-standby"}};
    auto conf = make_conf({&defaults, &s_.client_properties});
    if (!conf) return make_error("standby replicas: " + conf.error());
    route_logs(conf->get());
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!consumer) return make_error("standby replicas: " + consumer.error());
    consumer_ = std::move(*consumer);
    thread_ = std::thread([this] {
        name_this_thread("standby");
        follow();
    });
    return {};
}

void StandbyFollower::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (consumer_) {
        rd_kafka_assign(consumer_.get(), nullptr);
        rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
}

std::optional<int64_t> StandbyFollower::take_over(const std::string& table, int32_t partition) {
    std::lock_guard lock(mu_);  // waits for a batch being applied
    const TablePartition key{table, partition};
    active_.insert(key);
    auto it = followed_.find(key);
    if (it == followed_.end()) return std::nullopt;
    const int64_t applied = it->second.applied_next - 1;
    s_.log->info("table {}[{}]: the standby here becomes active, having applied changelog offset {}{}", table,
                 partition, applied,
                 it->second.high >= 0 ? " (" + std::to_string(std::max<int64_t>(0, it->second.high - it->second.applied_next)) +
                                            " record(s) behind at its last fetch)"
                                      : std::string());
    followed_.erase(it);
    changed_ = true;
    return applied;
}

void StandbyFollower::release(const std::string& table, int32_t partition) {
    std::lock_guard lock(mu_);
    if (active_.erase({table, partition})) changed_ = true;
}

Result<StandbyFollower::StaleRead> StandbyFollower::read(const std::string& table, int32_t partition,
                                                         std::string_view key) {
    std::lock_guard lock(mu_);
    auto it = followed_.find({table, partition});
    if (it == followed_.end())
        return make_error("this host keeps no standby of table " + table + "[" + std::to_string(partition) + "]");
    const Replica& r = it->second;
    StaleRead out;
    out.value = r.shard->get(key);
    out.offset = r.applied_next - 1;
    out.lag = r.high < 0 ? -1 : std::max<int64_t>(0, r.high - r.applied_next);
    return out;
}

std::vector<StandbyStatus> StandbyFollower::status() const {
    std::lock_guard lock(mu_);
    std::vector<StandbyStatus> out;
    for (const auto& [key, r] : followed_)
        out.push_back({key.first, key.second, r.applied_next - 1,
                       r.high < 0 ? -1 : std::max<int64_t>(0, r.high - r.applied_next)});
    return out;
}

void StandbyFollower::reconcile(rd_kafka_t* rk) {
    StandbyPlacement placement = s_.placement();
    const std::set<TablePartition>& wanted = placement.partitions;
    const uint64_t generation = s_.generation ? s_.generation() : 0;
    if (std::any_of(members_.begin(), members_.end(), [&](const std::string& m) { return !placement.members.count(m); }))
        member_lost_in_ = generation;
    else if (member_lost_in_ && generation > *member_lost_in_)
        member_lost_in_.reset();  // the group has rebalanced since: the assignment knows
    members_ = std::move(placement.members);
    std::vector<std::pair<TablePartition, TableShard*>> adding;
    {
        std::lock_guard lock(mu_);
        changed_ = false;
        bool moved = false;
        const auto now = Clock::now();
        for (auto it = followed_.begin(); it != followed_.end();) {
            Replica& r = it->second;
            if (wanted.count(it->first)) r.unwanted_since.reset();
            else if (!r.unwanted_since) r.unwanted_since = now;
            const bool lingers = r.unwanted_since && member_lost_in_ && now - *r.unwanted_since < kStandbyLinger;
            if (!active_.count(it->first) && (!r.unwanted_since || lingers)) {
                ++it;
                continue;
            }
            s_.log->info("table {}[{}]: no longer a standby here (changelog offset {} applied)", it->first.first,
                         it->first.second, r.applied_next - 1);
            it = followed_.erase(it);
            moved = true;
        }
        for (const auto& key : wanted) {
            if (followed_.count(key) || active_.count(key)) continue;
            auto store = stores_.find(key.first);
            if (store == stores_.end()) continue;
            auto shard = store->second->shard(key.second);
            if (!shard) {
                s_.log->error("table {}[{}]: cannot keep a standby: {}", key.first, key.second, shard.error());
                continue;
            }
            adding.emplace_back(key, *shard);
        }
        if (moved && adding.empty()) reassign(rk);
    }
    if (adding.empty()) return;
    // Where each new standby starts: after what the store persisted, unless the store is ahead of its changelog
    // (state from a reset or recreated topic), which is left alone: its recovery refuses it with the reason.
    std::vector<std::pair<TablePartition, Replica>> ready;
    for (auto& [key, shard] : adding) {
        Replica r;
        r.shard = shard;
        r.changelog = shard->store().spec().changelog_topic;
        int64_t low = 0, high = 0;
        if (auto err = rd_kafka_query_watermark_offsets(rk, r.changelog.c_str(), key.second, &low, &high, 2000)) {
            s_.log->debug("table {}[{}]: standby waits for the changelog's end: {}", key.first, key.second,
                          rd_kafka_err2str(err));
            continue;  // asked again at the next placement
        }
        const int64_t persisted = shard->persisted_offset();
        if (persisted + 1 > high) {
            s_.log->warn("table {}[{}]: no standby here: the store holds changelog {} up to offset {}, which ends at {}",
                         key.first, key.second, r.changelog, persisted, high);
            continue;
        }
        r.read_next = r.applied_next = std::max(persisted + 1, low);
        r.high = high;
        ready.emplace_back(key, std::move(r));
    }
    std::lock_guard lock(mu_);
    for (auto& [key, r] : ready) {
        if (active_.count(key) || followed_.count(key)) continue;  // taken over meanwhile
        s_.log->info("table {}[{}]: standby here, following {} from offset {} ({} record(s) behind)", key.first,
                     key.second, r.changelog, r.read_next, r.high - r.read_next);
        followed_.emplace(key, std::move(r));
    }
    reassign(rk);
}

void StandbyFollower::reassign(rd_kafka_t* rk) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(followed_.size()));
    for (const auto& [key, r] : followed_)
        rd_kafka_topic_partition_list_add(list, r.changelog.c_str(), key.second)->offset = r.read_next;
    // The follower's own consumer: records read and not applied yet are in `pending`, so each position given
    // here is exactly the next record to apply.
    if (auto err = rd_kafka_assign(rk, list)) s_.log->error("standby replicas: assign: {}", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
}

void StandbyFollower::apply_pending() {
    for (auto& [key, r] : followed_) {
        if (r.read_next == r.applied_next) continue;
        if (!r.pending.empty()) {
            if (auto st = r.shard->apply(r.pending, r.read_next - 1, /*invalidate_cache=*/true); !st) {
                s_.log->error("table {}[{}]: standby: {}", key.first, key.second, st.error());
                continue;  // tried again with the next batch
            }
            records_applied_ += r.pending.size();
            r.pending.clear();
        }
        r.applied_next = r.read_next;
    }
}

void StandbyFollower::follow() {
    rd_kafka_t* rk = consumer_.get();
    rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
    std::vector<rd_kafka_message_t*> fetched(kReadBatch);
    auto next_placement = Clock::now();
    auto last_apply = Clock::now();
    size_t buffered = 0;
    while (!stop_) {
        bool changed;
        {
            std::lock_guard lock(mu_);
            changed = changed_;
        }
        if (changed || Clock::now() >= next_placement) {
            reconcile(rk);
            next_placement = Clock::now() + kPlacementEvery;
        }
        const ssize_t count = rd_kafka_consume_batch_queue(queue, 100, fetched.data(), fetched.size());
        {
            std::lock_guard lock(mu_);
            for (ssize_t i = 0; i < count; ++i) {
                rd_kafka_message_t* m = fetched[i];
                Replica* r = nullptr;
                if (m->rkt) {
                    auto table = table_of_changelog_.find(rd_kafka_topic_name(m->rkt));
                    if (table != table_of_changelog_.end()) {
                        auto it = followed_.find({table->second, m->partition});
                        if (it != followed_.end()) r = &it->second;
                    }
                } else if (m->err) {
                    s_.log->warn("standby replicas: {}", rd_kafka_message_errstr(m));
                }
                if (r) {
                    if (!m->err && m->offset >= r->read_next) {
                        TableChange c;
                        c.key.assign(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
                        if (m->payload) c.value.emplace(static_cast<const char*>(m->payload), m->len);
                        r->pending.push_back(std::move(c));
                        r->read_next = m->offset + 1;
                        r->high = std::max(r->high, r->read_next);
                        ++buffered;
                    } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        r->read_next = std::max(r->read_next, m->offset);  // gaps end here
                        r->high = m->offset;
                    } else if (m->err) {
                        s_.log->warn("table {}[{}]: standby: {}", table_of_changelog_[rd_kafka_topic_name(m->rkt)],
                                     m->partition, rd_kafka_message_errstr(m));
                    }
                }
                rd_kafka_message_destroy(m);
            }
            const auto now = Clock::now();
            if (buffered >= kApplyBatch || now - last_apply >= kApplyEvery) {
                // The end each fetch saw (librdkafka keeps it): a standby's lag while records keep coming.
                for (auto& [key, r] : followed_) {
                    int64_t low = 0, high = 0;
                    if (!rd_kafka_get_watermark_offsets(rk, r.changelog.c_str(), key.second, &low, &high) && high >= 0)
                        r.high = std::max(r.high, high);
                }
                apply_pending();
                buffered = 0;
                last_apply = now;
            }
        }
    }
    rd_kafka_queue_destroy(queue);
}

}  // namespace mephisto
