#pragma once
// The partitions assigned to a pipeline, by (topic, partition), and those revoked whose events are not all
// finished yet. The consumer thread alone changes its shape (assign, revoke); any thread may read it under its
// lock (the admin API, the watch thread, a reload). Internal to the engine.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "engine/partition_state.hpp"

namespace mephisto {

class PartitionRegistry {
public:
    using Key = std::pair<std::string, int32_t>;
    using Map = std::map<Key, std::unique_ptr<PartitionState>>;

    // The assigned partitions, held still while the view lives:
    //     auto partitions = registry.lock();
    //     for (auto& [key, ps] : *partitions) ...
    // (not `for (... : *registry.lock())`: before C++23 the view, and so the lock, would end before the loop).
    template <typename M>
    class View {
    public:
        View(std::mutex& mu, M& map) : lock_(mu), map_(map) {}
        M& operator*() const { return map_; }
        M* operator->() const { return &map_; }
        // The partition, or null when it is not assigned.
        PartitionState* find(const std::string& topic, int32_t partition) const {
            auto it = map_.find({topic, partition});
            return it == map_.end() ? nullptr : it->second.get();
        }

    private:
        std::unique_lock<std::mutex> lock_;
        M& map_;
    };
    View<Map> lock() { return {mu_, partitions_}; }
    View<const Map> lock() const { return {mu_, partitions_}; }

    size_t size() const;
    bool empty() const { return size() == 0; }

    // Consumer thread: the partition a fetched message belongs to, or null when it is not assigned here (a stale
    // fetch after a revoke). Remembers the last one: most messages come in runs of one partition.
    PartitionState* find(const rd_kafka_message_t* msg);

    // Consumer thread: `ps` is assigned now.
    void add(std::unique_ptr<PartitionState> ps);
    // Consumer thread: every partition leaves the assignment; the caller keeps them (see retire).
    std::vector<std::unique_ptr<PartitionState>> take_all();
    // Revoked partitions stay alive while something still points at them: an output's delivery report, an ask's
    // answer, a channel event they caused. Those whose events all finished since the last call are freed now.
    void retire(std::vector<std::unique_ptr<PartitionState>> revoked);
    // At the end of the pipeline, once nothing can point at them any more.
    void clear_retired() { retired_.clear(); }

private:
    mutable std::mutex mu_;  // guards the map's shape
    Map partitions_;
    std::vector<std::unique_ptr<PartitionState>> retired_;  // consumer thread (or the stopping one)
    // find()'s memory (consumer thread): the last message's topic handle and partition, and where it went.
    rd_kafka_topic_t* last_rkt_ = nullptr;
    int32_t last_partition_ = -1;
    PartitionState* last_state_ = nullptr;
};

}  // namespace mephisto
