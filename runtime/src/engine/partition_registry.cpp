#include "engine/partition_registry.hpp"

#include <algorithm>

namespace mephisto {

size_t PartitionRegistry::size() const {
    std::lock_guard lock(mu_);
    return partitions_.size();
}

PartitionState* PartitionRegistry::find(const rd_kafka_message_t* msg) {
    if (msg->rkt == last_rkt_ && msg->partition == last_partition_) return last_state_;
    std::lock_guard lock(mu_);
    auto it = partitions_.find({rd_kafka_topic_name(msg->rkt), msg->partition});
    if (it == partitions_.end()) return nullptr;
    last_rkt_ = msg->rkt;
    last_partition_ = msg->partition;
    last_state_ = it->second.get();
    return last_state_;
}

void PartitionRegistry::add(std::unique_ptr<PartitionState> ps) {
    std::lock_guard lock(mu_);
    Key key{ps->topic, ps->partition};
    partitions_[std::move(key)] = std::move(ps);
    last_rkt_ = nullptr;  // the partition it remembers may have been replaced
}

std::vector<std::unique_ptr<PartitionState>> PartitionRegistry::take_all() {
    std::vector<std::unique_ptr<PartitionState>> out;
    std::lock_guard lock(mu_);
    for (auto& [key, ps] : partitions_) out.push_back(std::move(ps));
    partitions_.clear();
    last_rkt_ = nullptr;
    return out;
}

void PartitionRegistry::retire(std::vector<std::unique_ptr<PartitionState>> revoked) {
    // Without this sweep every eager rebalance would keep the old partitions until the pipeline stops.
    std::erase_if(retired_, [](const auto& ps) { return ps->unfinished() == 0; });
    for (auto& ps : revoked) retired_.push_back(std::move(ps));
}

}  // namespace mephisto
