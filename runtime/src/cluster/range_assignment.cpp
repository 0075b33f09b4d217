#include "cluster/range_assignment.hpp"

#include <algorithm>

namespace mephisto {

std::optional<size_t> range_owner_index(int32_t partition, int partitions, size_t members) {
    if (members == 0 || partition < 0 || partition >= partitions) return std::nullopt;
    const size_t per_member = static_cast<size_t>(partitions) / members;
    const size_t with_extra = static_cast<size_t>(partitions) % members;
    const auto p = static_cast<size_t>(partition);
    // The first `with_extra` members hold per_member + 1 partitions each, the others per_member.
    const size_t in_larger = with_extra * (per_member + 1);
    if (p < in_larger) return p / (per_member + 1);
    return with_extra + (p - in_larger) / per_member;  // per_member > 0 here: p < partitions
}

std::string range_owner(std::vector<std::string> member_ids, int32_t partition, int partitions) {
    std::sort(member_ids.begin(), member_ids.end());
    member_ids.erase(std::unique(member_ids.begin(), member_ids.end()), member_ids.end());
    const auto owner = range_owner_index(partition, partitions, member_ids.size());
    return owner ? member_ids[*owner] : std::string();
}

std::vector<std::string> range_successors(std::vector<std::string> member_ids, int32_t partition, int partitions,
                                          int replicas) {
    std::vector<std::string> out;
    std::string owner = range_owner(member_ids, partition, partitions);
    while (!owner.empty() && static_cast<int>(out.size()) < replicas) {
        std::erase(member_ids, owner);
        owner = range_owner(member_ids, partition, partitions);
        if (!owner.empty()) out.push_back(owner);
    }
    return out;
}

std::vector<int32_t> standby_partitions(const std::vector<std::string>& member_ids, const std::string& self,
                                        int partitions, int replicas) {
    std::vector<int32_t> out;
    if (replicas <= 0) return out;
    for (int32_t p = 0; p < partitions; ++p) {
        const auto successors = range_successors(member_ids, p, partitions, replicas);
        if (std::find(successors.begin(), successors.end(), self) != successors.end()) out.push_back(p);
    }
    return out;
}

std::vector<int32_t> owned_partitions(const std::vector<std::string>& member_ids, const std::string& self,
                                      int partitions) {
    std::vector<int32_t> out;
    for (int32_t p = 0; p < partitions; ++p)
        if (range_owner(member_ids, p, partitions) == self) out.push_back(p);
    return out;
}

bool range_explains(const std::map<std::string, std::set<int32_t>>& held) {
    size_t count = 0;
    for (const auto& [id, parts] : held) count += parts.size();
    if (count == 0) return false;
    std::vector<std::string> ids;
    for (const auto& [id, parts] : held) ids.push_back(id);
    for (const auto& [id, parts] : held)
        for (int32_t p : parts)
            if (p < 0 || static_cast<size_t>(p) >= count || range_owner(ids, p, static_cast<int>(count)) != id)
                return false;  // out of range, held twice (then some partition is missing), or owned by another
    return true;
}

}  // namespace mephisto
