// The pipeline's table bookkeeping: opening stores, the copartitioning check, changelog flushes that gate
// input commits, and resuming a partition once its tables are recovered (the recovery: table_recovery.cpp).
#include <algorithm>
#include <set>

#include "common/logging.hpp"
#include "engine/pipeline.hpp"
#include "tables/codec.hpp"

namespace mephisto {

Status Pipeline::check_copartitioning() {
    // A table shard is the partition of its agents' source topics; if those have different partition counts,
    // keys would meet their state on the wrong shard. Refused before the group is joined (RELIABILITY 20).
    for (const auto& table : config_.tables) {
        std::map<std::string, int> counts;
        for (const auto& a : config_.agents) {
            if (std::find(a.tables.begin(), a.tables.end(), table.name) == a.tables.end()) continue;
            for (const auto& topic : a.from) {
                int partitions = topic_admin_->partitions_of(topic);
                if (partitions == 0 && config_.topic(topic)) partitions = config_.topic(topic)->partitions;
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
        table_partitions_[table.name] = partitions;
    }
    return {};
}

Status Pipeline::open_tables() {
    for (const auto& table : config_.tables) {
        auto store = TableStore::open(table, config_.state_dir / table.name);
        if (!store) return make_error(store.error());
        const int partitions = table_partitions_[table.name];
        if (auto st = topic_admin_->ensure(table.changelog_topic, partitions); !st)
            log_->warn("{}; relying on the broker to create it on first use", st.error());
        // Partition p of the table is partition p of its changelog: too few cannot hold the table; more (a
        // broker's auto-created default) leave the extra ones unused.
        if (int existing = topic_admin_->partitions_of(table.changelog_topic); existing > 0 && existing < partitions)
            return make_error(table.mark.str() + ": table " + table.name + ": its changelog " + table.changelog_topic +
                              " has " + std::to_string(existing) + " partitions, the table " + std::to_string(partitions));
        else if (existing > partitions)
            log_->info("table {}: its changelog {} has {} partitions; the table uses the first {}", table.name,
                       table.changelog_topic, existing, partitions);
        log_->info("table {}: {} store{}, changelog {} ({} partitions)", table.name,
                   table.store == StoreKind::rocksdb ? "rocksdb" : "memory",
                   table.store == StoreKind::rocksdb ? " at " + (config_.state_dir / table.name).string() : "",
                   table.changelog_topic, table_partitions_[table.name]);
        (*store)->bind_types(table_types_.at(table.name));
        // A changelog record must fit what the producer sends: a larger write is refused where it is made.
        size_t max_message = 1'000'000;  // librdkafka's default message.max.bytes
        for (const auto* props : {&config_.broker.properties, &config_.producer_properties})
            if (auto it = props->find("message.max.bytes"); it != props->end())
                max_message = static_cast<size_t>(std::max(1024LL, std::atoll(it->second.c_str())));
        (*store)->set_max_record_bytes(max_message - 512);
        tables_[table.name] = std::move(*store);
    }
    return {};
}

Status Pipeline::start_followers() {
    for (const auto& table : config_.tables) {
        if (!table.global) continue;
        std::map<std::string, std::string> props = config_.broker.properties;
        props["bootstrap.servers"] = bootstrap_;
        props["client.id"] = "mephisto-" + config_.app_id + "-global";
        auto follower = std::make_unique<GlobalTableFollower>(*tables_.at(table.name), table_partitions_.at(table.name),
                                                              std::move(props), log_);
        if (auto st = follower->start(); !st) return st;
        followers_[table.name] = std::move(follower);
    }
    return {};
}

std::optional<int64_t> Pipeline::table_gate(PartitionState& ps, int64_t next, bool start_flushes) {
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
    return table_gate(ps, next);  // nothing to send: the commit may go ahead now
}

void Pipeline::start_flush(PartitionState& ps, int64_t next) {
    ps.flush_commit = next;
    for (TableShard* shard : ps.shards) {
        auto flush = std::make_unique<ShardFlush>();
        flush->shard = shard;
        flush->epoch = shard->epoch();
        flush->changes = shard->take_changes();
        shard->flush_in_progress = true;
        const std::string& topic = shard->store().spec().changelog_topic;
        log_->debug("table {}[{}]: flushing {} change(s) for input offset {}", shard->store().spec().name,
                    shard->partition(), flush->changes.size(), next);
        flush->outstanding = static_cast<int>(flush->changes.size()) + 1;  // +1: held until all are sent
        for (const auto& change : flush->changes) {
            std::string why;
            mph_status st = producer_->produce(topic, change.key.data(), change.key.size(),
                                               change.value ? change.value->data() : nullptr,
                                               change.value ? change.value->size() : 0, nullptr, shard->partition(), 0,
                                               static_cast<DeliveryTag*>(flush.get()), &why);
            if (st != MPH_OK) {
                fail("table " + shard->store().spec().name + ": " + why);
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

void Pipeline::on_flush_delivery(ShardFlush* flush, rd_kafka_resp_err_t err, const rd_kafka_message_t& msg) {
    if (err) {
        flush->failed = true;
        flush->lost = true;
        if (err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            fail("changelog " + flush->shard->store().spec().changelog_topic + "[" +
                 std::to_string(flush->shard->partition()) + "]: delivery failed: " + rd_kafka_err2str(err) +
                 "; the inputs that changed the table stay uncommitted");
    } else if (msg.rkt) {
        flush->last_offset = std::max(flush->last_offset, msg.offset);
    }
    if (flush->outstanding.fetch_sub(1) != 1) return;
    if (!flush->failed && !flush->changes.empty()) {
        if (auto st = flush->shard->persist(flush->changes, flush->last_offset, flush->epoch); !st) {
            flush->failed = true;
            fail(st.error());
        }
    }
    flush->changes.clear();
    flush->changes.shrink_to_fit();
    flush->done = true;
    flush_completed_ = true;
}

void Pipeline::finish_recoveries() {
    bool all_done = true;
    std::lock_guard lock(partitions_mutex_);
    for (auto& [key, ps] : partitions_) {
        if (!ps->recovering) continue;
        if (!ps->recovered) {
            all_done = false;
            continue;
        }
        if (ps->table_failed) continue;  // stays paused: the error was logged by the recovery
        ps->recovering = false;
        set_paused(*ps, false);
        for (auto& lane : ps->lanes) lane->wake();  // a stopped one: the swap resumes it
    }
    if (all_done && recovery_thread_.joinable()) recovery_thread_.join();
}

}  // namespace mephisto
