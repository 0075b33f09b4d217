#pragma once
// The range assignor's assignment, computed as librdkafka computes it (rdkafka_range_assignor.c, after Kafka's
// RangeAssignor): for each topic, the members in lexicographic order of their ids and the partitions in numeric
// order; every member gets `partitions / members` consecutive partitions, and the first `partitions % members`
// one more. The pipelines' consumers use this assignor, and every host knows every member's id from the control
// topic, so any host can tell who owns a partition, and who will own it when its owner leaves: where a standby
// replica of it belongs (Kafka Streams needs its own assignor for this; librdkafka has no public way to plug
// one in, CLUSTER.md).
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mephisto {

// Index, in `members` sorted lexicographically, of the member that owns `partition` of a topic with `partitions`
// partitions shared by `members` members. nullopt when there are no members or the partition is out of range.
std::optional<size_t> range_owner_index(int32_t partition, int partitions, size_t members);

// The member (of `member_ids`, in any order) owning `partition`; empty when none.
std::string range_owner(std::vector<std::string> member_ids, int32_t partition, int partitions);

// Where the standbys of `partition` belong: the member that would own it if its owner left, then the one that
// would own it if that one left too, and so on, `replicas` at most (fewer when there are not enough members).
// Never the owner itself.
std::vector<std::string> range_successors(std::vector<std::string> member_ids, int32_t partition, int partitions,
                                          int replicas);

// The partitions (of a topic or table with `partitions` partitions) whose standbys member `self` keeps: those
// where it is among the `replicas` successors of the owner. `member_ids` includes `self`.
std::vector<int32_t> standby_partitions(const std::vector<std::string>& member_ids, const std::string& self,
                                        int partitions, int replicas);

// The partitions of a topic or table with `partitions` partitions that member `self` owns among `member_ids`
// (which includes `self`): where a host that is about to join will get its share (a warm-up's placement).
std::vector<int32_t> owned_partitions(const std::vector<std::string>& member_ids, const std::string& self,
                                      int partitions);

// Whether the range assignor, ordering members by the ids given here, gives each exactly the partitions of one
// topic it holds: `held` maps each member's id to the partitions it holds, and the topic's partitions are all of
// those (0 to their count - 1, each held once; else false). A host learns this way from the cluster view which
// ids the group's leader orders by: group.instance.id when the broker passes them on, else member ids.
bool range_explains(const std::map<std::string, std::set<int32_t>>& held);

}  // namespace mephisto
