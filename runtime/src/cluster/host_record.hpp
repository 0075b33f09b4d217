#pragma once
// What one host says about itself on a pipeline's control topic `<app>-__cluster` (compacted, keyed by host
// id): where its admin API is, its group member id, the partitions it holds, and for each table partition the
// changelog offset it has applied. Every host of the pipeline follows the topic, so every host knows the whole
// cluster (CLUSTER.md: librdkafka has no custom assignor to carry this in the group protocol, as Kafka Streams'
// subscription userData does). The value is JSON; records come from other hosts, so parsing is bounded.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mephisto {

// Larger records are refused: thousands of partitions fit far below this.
inline constexpr size_t kMaxHostRecordBytes = 1 << 20;

struct HeldPartition {
    std::string topic;
    int32_t partition = 0;
    bool recovering = false;  // its tables are being restored: not serving yet
    bool operator==(const HeldPartition&) const = default;
};

struct TablePartitionOffset {
    std::string table;
    int32_t partition = 0;
    int64_t offset = -1;  // the changelog offset applied (persisted) there; -1: none yet
    bool operator==(const TablePartitionOffset&) const = default;
};

// A standby replica of a table partition held here: its changelog followed, never served as active.
struct StandbyReplica {
    std::string table;
    int32_t partition = 0;
    int64_t offset = -1;  // the changelog offset applied; -1: none yet
    int64_t lag = -1;     // changelog records behind the end it last saw; -1: not known yet
    bool operator==(const StandbyReplica&) const = default;
};

struct HostRecord {
    std::string host;      // the host's id (the record's key)
    std::string pipeline;  // the app id
    std::string admin;     // its admin API, "http://host:port"; empty when it has none
    std::string member;    // its consumer group member id; empty before it joined
    std::string instance;  // its group.instance.id under static membership; empty otherwise
    std::vector<HeldPartition> active;
    std::vector<StandbyReplica> standby;
    std::vector<TablePartitionOffset> tables;  // the active table partitions
    int64_t started_ms = 0;    // wall clock, when the host started the pipeline
    int64_t heartbeat_ms = 0;  // wall clock, when the host wrote this record
    bool operator==(const HostRecord&) const = default;
};

std::string to_json(const HostRecord& record);
// The record in `value`, for host `key`. Errors name what is wrong (too large, not JSON, a missing field, a
// record naming another host than its key).
Result<HostRecord> parse_host_record(std::string_view key, std::string_view value);

}  // namespace mephisto
