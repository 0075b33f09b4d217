// The state manager (engine/state_manager.hpp): opening stores, the copartitioning check, and the changelog
// flushes that gate input commits (the restore of newly assigned partitions: changelog_restorer.cpp).
#include "engine/state_manager.hpp"

#include <algorithm>
#include <set>

#include "common/logging.hpp"
#include "kafka/producer.hpp"
#include "kafka/topic_admin.hpp"

namespace mephisto {

StateManager::StateManager(Services services, std::map<std::string, TableTypes> types)
    : s_(std::move(services)), types_(std::move(types)) {
    restorer_ = std::make_unique<ChangelogRestorer>(ChangelogRestorer::Services{
        s_.bootstrap, s_.config->app_id, s_.config->broker.properties, s_.log, s_.fail,
        [this](const std::string& table) { return follower(table); }, [this] { return standby_.get(); }});
}

Status StateManager::open(TopicAdmin& topics, Producer& producer) {
    producer_ = &producer;
    if (auto st = check_copartitioning(topics); !st) return st;
    if (auto st = open_stores(topics); !st) return st;
    if (auto st = start_followers(); !st) return st;
    return start_standbys();
}

void StateManager::close() {
    restorer_->cancel();
    abandoned_flushes_.clear();
    for (auto& [name, follower] : followers_) follower->stop();
    if (standby_) standby_->stop();
}

TableStore* StateManager::store(const std::string& table) const {
    auto it = stores_.find(table);
    return it == stores_.end() ? nullptr : it->second.get();
}

int StateManager::partitions(const std::string& table) const {
    auto it = partitions_.find(table);
    return it == partitions_.end() ? 0 : it->second;
}

GlobalTableFollower* StateManager::follower(const std::string& table) const {
    auto it = followers_.find(table);
    return it == followers_.end() ? nullptr : it->second.get();
}

void StateManager::release(PartitionState& ps) {
    for (TableShard* shard : ps.shards) {
        shard->drop_cache();
        if (GlobalTableFollower* f = follower(shard->store().spec().name)) f->release(shard->partition());
        if (standby_) standby_->release(shard->store().spec().name, shard->partition());
    }
}

Status StateManager::check_copartitioning(TopicAdmin& topics) {
    // A table shard is the partition of its agents' source topics; if those have different partition counts,
    // keys would meet their state on the wrong shard. Refused before the group is joined (RELIABILITY 20).
    for (const auto& table : s_.config->tables) {
        std::map<std::string, int> counts;
        for (const auto& a : s_.config->agents) {
            if (std::find(a.tables.begin(), a.tables.end(), table.name) == a.tables.end()) continue;
            for (const auto& topic : a.from) {
                int partitions = topics.partitions_of(topic);
                if (partitions == 0 && s_.config->topic(topic)) partitions = s_.config->topic(topic)->partitions;
                if (partitions > 0) counts[topic] = partitions;
            }
        }
        std::string list;
        std::set<int> distinct;
        for (const auto& [topic, n] : counts) {
            distinct.insert(n);
            list += (list.empty() ? "" : ", ") + topic + " (" + std::to_string(n) + ")";
        }
        if (table.partitions > 0) {
            distinct.insert(table.partitions);
            list += (list.empty() ? "" : ", ") + std::string("the table's own setting (") +
                    std::to_string(table.partitions) + ")";
        }
        if (distinct.size() > 1)
            return make_error(table.mark.str() + ": table " + table.name +
                              " is shared by topics with different partition counts: " + list +
                              "; copartitioned topics and tables need equal counts");
        const int partitions = distinct.empty() ? 1 : *distinct.begin();
        partitions_[table.name] = partitions;
    }
    return {};
}

Status StateManager::open_stores(TopicAdmin& topics) {
    for (const auto& table : s_.config->tables) {
        auto store = TableStore::open(table, s_.config->state_dir / table.name);
        if (!store) return make_error(store.error());
        const int partitions = partitions_[table.name];
        if (auto st = topics.ensure(table.changelog_topic, partitions); !st)
            s_.log->warn("{}; relying on the broker to create it on first use", st.error());
        // Partition p of the table is partition p of its changelog: too few cannot hold the table; more (a
        // broker's auto-created default) leave the extra ones unused.
        if (int existing = topics.partitions_of(table.changelog_topic); existing > 0 && existing < partitions)
            return make_error(table.mark.str() + ": table " + table.name + ": its changelog " + table.changelog_topic +
                              " has " + std::to_string(existing) + " partitions, the table " + std::to_string(partitions));
        else if (existing > partitions)
            s_.log->info("table {}: its changelog {} has {} partitions; the table uses the first {}", table.name,
                       table.changelog_topic, existing, partitions);
        s_.log->info("table {}: {} store{}, changelog {} ({} partitions)", table.name,
                   table.store == StoreKind::rocksdb ? "rocksdb" : "memory",
                   table.store == StoreKind::rocksdb ? " at " + (s_.config->state_dir / table.name).string() : "",
                   table.changelog_topic, partitions_[table.name]);
        (*store)->bind_types(types_.at(table.name));
        // A changelog record must fit what the producer sends: a larger write is refused where it is made.
        size_t max_message = 1'000'000;  // librdkafka's default message.max.bytes
        for (const auto* props : {&s_.config->broker.properties, &s_.config->producer_properties})
            if (auto it = props->find("message.max.bytes"); it != props->end())
                max_message = static_cast<size_t>(std::max(1024LL, std::atoll(it->second.c_str())));
        (*store)->set_max_record_bytes(max_message - 512);
        stores_[table.name] = std::move(*store);
    }
    return {};
}

Status StateManager::start_followers() {
    for (const auto& table : s_.config->tables) {
        if (!table.global) continue;
        std::map<std::string, std::string> props = s_.config->broker.properties;
        props["bootstrap.servers"] = s_.bootstrap;
        props["client.id"] = "mephisto-" + s_.config->app_id + "-global";
        auto follower = std::make_unique<GlobalTableFollower>(*stores_.at(table.name), partitions_.at(table.name),
                                                              std::move(props), s_.log);
        if (auto st = follower->start(); !st) return st;
        followers_[table.name] = std::move(follower);
    }
    return {};
}

Status StateManager::start_standbys() {
    std::map<std::string, TableStore*> stores;
    for (const auto& table : s_.config->tables)
        if ((table.standby_replicas > 0 || s_.config->warm_up.enabled) && !table.global)
            stores[table.name] = stores_.at(table.name).get();
    if (stores.empty()) return {};
    std::map<std::string, std::string> props = s_.config->broker.properties;
    props["bootstrap.servers"] = s_.bootstrap;
    std::function<StandbyPlacement()> placement = s_.standby_placement;
    if (!placement) placement = [] { return StandbyPlacement{}; };
    standby_ = std::make_unique<StandbyFollower>(
        StandbyFollower::Services{s_.config->app_id, std::move(props), s_.log, std::move(placement), s_.generation},
        std::move(stores));
    return standby_->start();
}

std::optional<int64_t> StateManager::gate(PartitionState& ps, int64_t next, bool start_flushes) {
    if (!ps.flushes.empty()) {
        for (const auto& f : ps.flushes)
            if (!f->done) return std::nullopt;
        bool lost = false;
        for (auto& f : ps.flushes) {
            lost = lost || f->lost;
            f->shard->flush_in_progress = false;
        }
        ps.flushes.clear();
        // A change that never reached the changelog: no input of this partition is committed from here on
        // (the pipeline has failed; after a restart they are processed again). A flush that reached the
        // changelog but not the local store (a full disk) may commit: recovery rebuilds the store from it.
        if (lost) {
            ps.changelog_lost = true;
            return std::nullopt;
        }
        return ps.flush_commit;
    }
    if (!start_flushes || !ps.needs_commit(next, false)) return std::nullopt;
    for (TableShard* shard : ps.shards)
        if (shard->flush_in_progress) return std::nullopt;  // another topic's flush of a shared shard
    start_flush(ps, next);
    for (const auto& f : ps.flushes)
        if (!f->done) return std::nullopt;
    return gate(ps, next);  // nothing to send: the commit may go ahead now
}

void StateManager::start_flush(PartitionState& ps, int64_t next) {
    ps.flush_commit = next;
    for (TableShard* shard : ps.shards) {
        auto flush = std::make_unique<ShardFlush>();
        flush->shard = shard;
        flush->epoch = shard->epoch();
        flush->changes = shard->take_changes();
        shard->flush_in_progress = true;
        const std::string& topic = shard->store().spec().changelog_topic;
        s_.log->debug("table {}[{}]: flushing {} change(s) for input offset {}", shard->store().spec().name,
                    shard->partition(), flush->changes.size(), next);
        flush->outstanding = static_cast<int>(flush->changes.size()) + 1;  // +1: held until all are sent
        for (const auto& change : flush->changes) {
            std::string why;
            mph_status st = producer_->produce(topic, change.key.data(), change.key.size(),
                                               change.value ? change.value->data() : nullptr,
                                               change.value ? change.value->size() : 0, nullptr, shard->partition(), 0,
                                               static_cast<DeliveryTag*>(flush.get()), &why);
            if (st != MPH_OK) {
                s_.fail("table " + shard->store().spec().name + ": " + why);
                flush->failed = true;
                flush->lost = true;
                flush->outstanding--;
            }
        }
        // Release the hold; the last acknowledgement (or this, when nothing was sent) completes the flush.
        rd_kafka_message_t none{};
        on_flush_delivery(flush.get(), RD_KAFKA_RESP_ERR_NO_ERROR, none);
        ps.flushes.push_back(std::move(flush));
    }
}

void StateManager::on_flush_delivery(ShardFlush* flush, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) {
    if (err) {
        flush->failed = true;
        flush->lost = true;
        if (err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            s_.fail("changelog " + flush->shard->store().spec().changelog_topic + "[" +
                 std::to_string(flush->shard->partition()) + "]: delivery failed: " + rd_kafka_err2str(err) +
                 "; the inputs that changed the table stay uncommitted");
    } else if (msg.rkt) {
        flush->last_offset = std::max(flush->last_offset, msg.offset);
    }
    if (flush->outstanding.fetch_sub(1) != 1) return;
    if (!flush->failed && !flush->changes.empty()) {
        if (auto st = flush->shard->persist(flush->changes, flush->last_offset, flush->epoch); !st) {
            flush->failed = true;
            s_.fail(st.error());
        }
    }
    flush->changes.clear();
    flush->changes.shrink_to_fit();
    flush->done = true;
    flush_completed_ = true;
}

}  // namespace mephisto
