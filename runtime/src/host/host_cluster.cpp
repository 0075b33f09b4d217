// The host in its pipelines' clusters: each running pipeline has a ClusterMember (cluster/cluster_member.hpp)
// publishing what this host holds on the pipeline's control topic and following what the other hosts hold; from
// that view the pipeline learns where its standby replicas belong.
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <random>

#include "cluster/range_assignment.hpp"
#include "common/logging.hpp"
#include "host/host.hpp"

namespace mephisto {
namespace {

constexpr std::chrono::milliseconds kHeartbeat{1000};
constexpr int64_t kDefaultSessionTimeoutMs = 45'000;  // librdkafka's session.timeout.ms

// A host counts as gone once silent longer than the group waits for a member: by then the group has given its
// partitions to the others too. Two heartbeats more, so a live host's record is never judged stale in between.
std::chrono::milliseconds stale_after(const PipelineConfig& config) {
    int64_t session = kDefaultSessionTimeoutMs;
    if (auto it = config.consumer_properties.find("session.timeout.ms"); it != config.consumer_properties.end()) {
        try {
            session = std::stoll(it->second);
        } catch (const std::exception&) {  // librdkafka refused it already: the pipeline would not run
        }
    }
    return std::chrono::milliseconds(session) + 2 * kHeartbeat;
}

// Which ids the group's leader orders members by for the range assignor: group.instance.id when every member has
// one and the broker passes them on to the leader, else member ids. A broker may read the field and not keep it
// (the embedded broker, CLUSTER.md), so it is read from the view: the ordering that explains what every joined
// host holds now. nullopt: the view does not tell (both explain it, or neither: between two assignments).
std::optional<bool> ordered_by_instance(const std::vector<ClusterHost>& hosts) {
    std::map<std::string, std::map<std::string, std::set<int32_t>>> by_instance, by_member;  // topic -> id -> held
    for (const auto& [record, age] : hosts) {
        if (record.member.empty()) continue;
        if (record.instance.empty()) return false;  // one dynamic member: the group orders by member id
        for (const auto& a : record.active) {
            by_instance[a.topic][record.instance].insert(a.partition);
            by_member[a.topic][record.member].insert(a.partition);
        }
    }
    if (by_instance.empty()) return std::nullopt;
    auto explains = [](const auto& topics) {
        return std::all_of(topics.begin(), topics.end(), [](const auto& t) { return range_explains(t.second); });
    };
    const bool instance = explains(by_instance), member = explains(by_member);
    if (instance == member) return std::nullopt;
    return instance;
}

// Where `pipeline` keeps standby replicas: the table partitions this host's consumer would take over if their
// owner left, by the range assignor over the group's members as the control topic tells them (this host's own
// member id as its consumer has it now), ordered as the group orders them (ordered_by_instance; when the view
// does not tell, by group.instance.id if all have one, as librdkafka's assignor does). Nothing until the view is
// whole: a partial view would put standbys where the partitions will not go.
StandbyPlacement standby_placement(const Pipeline& pipeline, const ClusterMember& member) {
    StandbyPlacement out;
    if (pipeline.member_id().empty() || !member.caught_up()) return out;
    const auto hosts = member.hosts();
    bool all_static = !pipeline.group_instance_id().empty();
    for (const auto& [record, age] : hosts)
        if (record.host != member.host_id() && !record.member.empty()) all_static = all_static && !record.instance.empty();
    const bool by_instance = all_static && ordered_by_instance(hosts).value_or(true);
    const std::string self = by_instance ? pipeline.group_instance_id() : pipeline.member_id();
    std::vector<std::string> members{self};
    for (const auto& [record, age] : hosts) {
        const std::string& id = by_instance ? record.instance : record.member;
        if (record.host != member.host_id() && !record.member.empty() && id != self) members.push_back(id);
    }
    for (const auto& table : pipeline.standby_tables())
        for (int32_t p : standby_partitions(members, self, table.partitions, table.replicas))
            out.partitions.emplace(table.table, p);
    out.members.insert(members.begin(), members.end());
    out.view_whole = true;
    return out;
}

// What `pipeline` warms up before it joins (engine/warm_up.hpp): nothing when no other host runs it; its own
// share when the group is seen to order members by group.instance.id (known before joining: this host's is
// `<app>-<host id>`); else, since a member id is only known after joining, every partition of every table.
StandbyPlacement warm_up_placement(const Pipeline& pipeline, const ClusterMember& member) {
    StandbyPlacement out;
    if (!member.caught_up()) return out;
    out.view_whole = true;
    const auto hosts = member.hosts();
    const std::string& self = pipeline.group_instance_id();
    const bool share = !self.empty() && ordered_by_instance(hosts) == true;
    // The members by the ids the placement will use once joined (a member missing from them later means one left).
    std::vector<std::string> others;
    for (const auto& [record, age] : hosts)
        if (record.host != member.host_id() && !record.member.empty()) others.push_back(share ? record.instance : record.member);
    if (others.empty()) return out;
    out.members.insert(others.begin(), others.end());
    std::vector<std::string> instances = others;
    instances.push_back(self);
    for (const auto& table : pipeline.warm_up_tables()) {
        if (share) {
            for (int32_t p : owned_partitions(instances, self, table.partitions)) out.partitions.emplace(table.table, p);
        } else {
            for (int32_t p = 0; p < table.partitions; ++p) out.partitions.emplace(table.table, p);
        }
    }
    return out;
}

}  // namespace

std::string generated_host_id() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || !name[0]) std::snprintf(name, sizeof name, "host");
    std::random_device random;
    char id[300];
    std::snprintf(id, sizeof id, "%s-%d-%04x", name, static_cast<int>(getpid()), random() & 0xffff);
    return id;
}

std::string Host::advertised_admin() const {
    if (!options_.advertised_admin.empty()) return options_.advertised_admin;
    std::lock_guard lock(admin_url_mutex_);
    return admin_url_;
}

std::vector<std::pair<std::string, std::shared_ptr<ClusterMember>>> Host::cluster_members() const {
    std::vector<std::pair<std::string, std::shared_ptr<ClusterMember>>> out;
    std::lock_guard lock(running_mutex_);
    for (const auto& r : running_)
        if (r.member) out.emplace_back(r.config.app_id, r.member);
    return out;
}

std::shared_ptr<ClusterMember> Host::join_cluster(const PipelineConfig& config, const std::shared_ptr<Pipeline>& pipeline) {
    ClusterMemberOptions o;
    o.app_id = config.app_id;
    o.host_id = host_id_;
    o.client_properties = config.broker.properties;
    TopicProvisioner* broker = config.broker.embedded ? embedded() : nullptr;
    o.client_properties["bootstrap.servers"] = broker ? broker->bootstrap() : config.broker.bootstrap;
    o.embedded = broker;
    o.heartbeat = kHeartbeat;
    o.stale_after = stale_after(config);
    o.log = logger(config.app_id);
    o.version = [pipeline] { return pipeline->rebalances(); };
    o.describe = [this, pipeline] {
        HostRecord r;
        r.admin = advertised_admin();
        r.member = pipeline->member_id();
        r.instance = pipeline->group_instance_id();
        for (const auto& p : pipeline->partition_status()) r.active.push_back({p.topic, p.partition, p.recovering});
        for (const auto& t : pipeline->table_offsets()) r.tables.push_back({t.table, t.partition, t.offset});
        for (const auto& s : pipeline->standby_status()) r.standby.push_back({s.table, s.partition, s.offset, s.lag});
        return r;
    };
    auto member = ClusterMember::start(std::move(o));
    if (!member) {
        logger(config.app_id)->warn("{}; this host is missing from the cluster view", member.error());
        pipeline->skip_warm_up("no cluster view: " + member.error());
        return nullptr;
    }
    std::shared_ptr<ClusterMember> joined(std::move(*member));
    // The pipeline holds the placement and the member's describe holds the pipeline: a weak reference back.
    if (!pipeline->standby_tables().empty() || config.warm_up.enabled)
        pipeline->set_standby_placement([p = pipeline.get(), weak = std::weak_ptr<ClusterMember>(joined)] {
            auto m = weak.lock();
            if (!m) return StandbyPlacement{};
            return p->warming_up() ? warm_up_placement(*p, *m) : standby_placement(*p, *m);
        });
    return joined;
}

}  // namespace mephisto
