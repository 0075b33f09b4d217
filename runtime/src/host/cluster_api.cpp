// GET /cluster: every host of this host's pipelines, as the control topics tell it (cluster/cluster_member.hpp),
// grouped by host: its admin URL, last heartbeat, and per pipeline its group member id, the partitions it holds
// active, the changelog offset of each table partition it holds, and its standby replicas with their lag.
#include <map>

#include <nlohmann/json.hpp>

#include "admin/json_reply.hpp"
#include "host/admin_api.hpp"
#include "host/host.hpp"

namespace mephisto {
namespace {

using nlohmann::json;

json partitions_json(const std::vector<HeldPartition>& held) {
    json out = json::array();
    for (const auto& p : held) out.push_back({{"topic", p.topic}, {"partition", p.partition}, {"recovering", p.recovering}});
    return out;
}

// Each standby with the changelog offset it applied and how far it is behind (null: not known yet).
json standbys_json(const std::vector<StandbyReplica>& standbys) {
    json out = json::array();
    for (const auto& s : standbys)
        out.push_back({{"table", s.table},
                       {"partition", s.partition},
                       {"offset", s.offset},
                       {"lag", s.lag < 0 ? json() : json(s.lag)}});
    return out;
}

}  // namespace

HttpResponse cluster_reply(const Host& host) {
    // host id -> its entry; a host can run several of this host's pipelines.
    std::map<std::string, json> hosts;
    json pipelines = json::array();
    for (const auto& [app, member] : host.cluster_members()) {
        const auto members = member->hosts();
        pipelines.push_back({{"pipeline", app},
                             {"control_topic", control_topic(app)},
                             {"caught_up", member->caught_up()},
                             {"hosts", members.size()}});
        for (const auto& [record, age] : members) {
            json& h = hosts[record.host];
            if (h.is_null())
                h = {{"host", record.host},
                     {"admin", record.admin.empty() ? json() : json(record.admin)},
                     {"self", record.host == host.host_id()},
                     {"last_heartbeat_ms", record.heartbeat_ms},
                     {"age_ms", age.count()},
                     {"pipelines", json::array()}};
            if (record.heartbeat_ms > h["last_heartbeat_ms"].get<int64_t>()) {
                h["last_heartbeat_ms"] = record.heartbeat_ms;
                h["age_ms"] = age.count();
            }
            if (h["admin"].is_null() && !record.admin.empty()) h["admin"] = record.admin;
            json tables = json::array();
            for (const auto& t : record.tables)
                tables.push_back({{"table", t.table}, {"partition", t.partition}, {"offset", t.offset}});
            h["pipelines"].push_back({{"pipeline", app},
                                      {"member", record.member},
                                      {"started_ms", record.started_ms},
                                      {"active", partitions_json(record.active)},
                                      {"standby", standbys_json(record.standby)},
                                      {"tables", tables}});
        }
    }
    json list = json::array();
    for (auto& [id, entry] : hosts) list.push_back(std::move(entry));
    return json_reply(200, {{"host", host.host_id()}, {"pipelines", pipelines}, {"hosts", list}});
}

}  // namespace mephisto
