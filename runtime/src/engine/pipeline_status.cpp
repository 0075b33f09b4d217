// What the admin API reads of a running pipeline: committed offsets, partitions and their lag, recoveries, and
// table lookups on the partitions this host serves. THREAD: any.
#include "engine/pipeline.hpp"

#include <algorithm>
#include <tuple>

namespace mephisto {

std::map<std::string, int64_t> Pipeline::committed_offsets() const {
    std::map<std::string, int64_t> out;
    auto partitions = partitions_.lock();
    for (const auto& [key, ps] : *partitions)
        out[key.first + "/" + std::to_string(key.second)] = ps->committed();
    return out;
}

size_t Pipeline::assigned_partitions() const {
    return partitions_.size();
}

std::vector<PartitionStatus> Pipeline::partition_status() const {
    std::vector<PartitionStatus> out;
    auto partitions = partitions_.lock();
    for (const auto& [key, ps] : *partitions) {
        PartitionStatus st;
        st.topic = ps->topic;
        st.partition = ps->partition;
        st.committed = ps->committed();
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

std::string Pipeline::member_id() const {
    std::lock_guard lock(member_id_mutex_);
    return member_id_;
}

std::vector<Pipeline::TableOffset> Pipeline::table_offsets() const {
    std::vector<TableOffset> out;
    auto partitions = partitions_.lock();
    for (const auto& [key, ps] : *partitions)
        for (TableShard* shard : ps->shards) {
            const bool listed = std::any_of(out.begin(), out.end(), [&](const TableOffset& t) {
                return t.table == shard->store().spec().name && t.partition == shard->partition();
            });
            if (!listed) out.push_back({shard->store().spec().name, shard->partition(), shard->persisted_offset()});
        }
    std::sort(out.begin(), out.end(), [](const TableOffset& a, const TableOffset& b) {
        return std::tie(a.table, a.partition) < std::tie(b.table, b.partition);
    });
    return out;
}

std::vector<RecoveryStatus> Pipeline::recovery_status() const { return state_->restorer().status(); }

void Pipeline::set_standby_placement(std::function<StandbyPlacement()> placement) {
    std::lock_guard lock(standby_placement_mutex_);
    standby_placement_ = std::move(placement);
}

std::vector<Pipeline::StandbyTable> Pipeline::standby_tables() const {
    std::vector<StandbyTable> out;
    for (const auto& [name, store] : state_->stores())
        if (store->spec().standby_replicas > 0 && !store->spec().global)
            out.push_back({name, state_->partitions(name), store->spec().standby_replicas});
    return out;
}

std::vector<Pipeline::StandbyTable> Pipeline::warm_up_tables() const {
    std::vector<StandbyTable> out;
    for (const auto& [name, store] : state_->stores())
        if (!store->spec().global) out.push_back({name, state_->partitions(name), 0});
    return out;
}

StandbyPlacement Pipeline::standby_placement_now() const {
    std::function<StandbyPlacement()> placement;
    {
        std::lock_guard lock(standby_placement_mutex_);
        placement = standby_placement_;
    }
    return placement ? placement() : StandbyPlacement{};
}

std::vector<StandbyStatus> Pipeline::standby_status() const {
    const StandbyFollower* standby = state_->standby();
    return standby ? standby->status() : std::vector<StandbyStatus>{};
}

Result<StandbyFollower::StaleRead> Pipeline::read_standby(const std::string& table, int32_t partition,
                                                          const std::string& key) {
    StandbyFollower* standby = state_->standby();
    if (!standby) return make_error("table " + table + " has no standby replicas here");
    return standby->read(table, partition, key);
}

Result<std::optional<std::pair<int32_t, std::string>>> Pipeline::read_table(const std::string& table,
                                                                            const std::string& key) {
    TableStore* found = state_->store(table);
    if (!found) return std::optional<std::pair<int32_t, std::string>>{};
    TableStore& store = *found;
    std::vector<TableShard*> shards;
    if (store.spec().global) {
        if (GlobalTableFollower* f = state_->follower(table); !f || !f->caught_up())
            return make_error("global table " + table + " is still catching up");
        shards = store.shards();
    } else {
        auto partitions = partitions_.lock();
        for (const auto& [k, ps] : *partitions)
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
    const TableStore* store = state_->store(table);
    if (!store) return {{}, 0};
    const int count = state_->partitions(table);
    std::vector<int32_t> served;
    if (store->spec().global) {
        for (int32_t p = 0; p < count; ++p) served.push_back(p);
        return {served, count};
    }
    auto partitions = partitions_.lock();
    for (const auto& [key, ps] : *partitions)
        for (const TableShard* shard : ps->shards)
            if (&shard->store() == store &&
                std::find(served.begin(), served.end(), shard->partition()) == served.end())
                served.push_back(shard->partition());
    std::sort(served.begin(), served.end());
    return {served, count};
}

}  // namespace mephisto
