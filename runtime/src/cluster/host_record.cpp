#include "cluster/host_record.hpp"

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"

namespace mephisto {
namespace {

using json = nlohmann::json;

json partitions_json(const std::vector<HeldPartition>& held) {
    json out = json::array();
    for (const auto& p : held) out.push_back({{"topic", p.topic}, {"partition", p.partition}, {"recovering", p.recovering}});
    return out;
}

// Reads `field` of `obj` as T; false (with `error` set) when it is missing or of another type.
template <typename T>
bool read(const json& obj, const char* field, T& out, std::string& error) {
    auto it = obj.find(field);
    if (it == obj.end()) {
        error = std::string("no field '") + field + "'";
        return false;
    }
    try {
        out = it->get<T>();
        return true;
    } catch (const json::exception&) {
        error = std::string("field '") + field + "' has the wrong type";
        return false;
    }
}

bool read_partitions(const json& obj, const char* field, std::vector<HeldPartition>& out, std::string& error) {
    auto it = obj.find(field);
    if (it == obj.end()) return true;  // absent: none
    if (!it->is_array()) {
        error = std::string("field '") + field + "' is not an array";
        return false;
    }
    for (const auto& p : *it) {
        HeldPartition held;
        if (!p.is_object() || !read(p, "topic", held.topic, error) || !read(p, "partition", held.partition, error))
            return error = std::string("an entry of '") + field + "': " + (error.empty() ? "not an object" : error),
                   false;
        if (p.contains("recovering") && !read(p, "recovering", held.recovering, error)) return false;
        out.push_back(std::move(held));
    }
    return true;
}

json standbys_json(const std::vector<StandbyReplica>& standbys) {
    json out = json::array();
    for (const auto& s : standbys)
        out.push_back({{"table", s.table}, {"partition", s.partition}, {"offset", s.offset}, {"lag", s.lag}});
    return out;
}

bool read_standbys(const json& obj, std::vector<StandbyReplica>& out, std::string& error) {
    auto it = obj.find("standby");
    if (it == obj.end()) return true;  // absent: none
    if (!it->is_array()) return error = "field 'standby' is not an array", false;
    for (const auto& s : *it) {
        StandbyReplica replica;
        if (!s.is_object() || !read(s, "table", replica.table, error) || !read(s, "partition", replica.partition, error) ||
            !read(s, "offset", replica.offset, error) || !read(s, "lag", replica.lag, error))
            return error = "an entry of 'standby': " + (error.empty() ? std::string("not an object") : error), false;
        out.push_back(std::move(replica));
    }
    return true;
}

}  // namespace

std::string to_json(const HostRecord& r) {
    json tables = json::array();
    for (const auto& t : r.tables) tables.push_back({{"table", t.table}, {"partition", t.partition}, {"offset", t.offset}});
    return json{{"host", r.host},
                {"pipeline", r.pipeline},
                {"admin", r.admin},
                {"member", r.member},
                {"instance", r.instance},
                {"active", partitions_json(r.active)},
                {"standby", standbys_json(r.standby)},
                {"tables", tables},
                {"started_ms", r.started_ms},
                {"heartbeat_ms", r.heartbeat_ms}}
        .dump();
}

Result<HostRecord> parse_host_record(std::string_view key, std::string_view value) {
    if (value.size() > kMaxHostRecordBytes)
        return make_error("record of " + std::to_string(value.size()) + " bytes, more than the " +
                          std::to_string(kMaxHostRecordBytes) + " allowed");
    const json obj = parse_json_bounded(value);
    if (obj.is_discarded() || !obj.is_object()) return make_error("not a JSON object");
    HostRecord r;
    std::string error;
    if (!read(obj, "host", r.host, error) || !read(obj, "pipeline", r.pipeline, error) ||
        !read(obj, "admin", r.admin, error) || !read(obj, "member", r.member, error) ||
        !read(obj, "heartbeat_ms", r.heartbeat_ms, error) || !read(obj, "started_ms", r.started_ms, error) ||
        !read_partitions(obj, "active", r.active, error) || !read_standbys(obj, r.standby, error))
        return make_error(error);
    if (obj.contains("instance") && !read(obj, "instance", r.instance, error)) return make_error(error);
    if (r.host != key) return make_error("the record names host '" + r.host + "' under the key '" + std::string(key) + "'");
    if (auto it = obj.find("tables"); it != obj.end()) {
        if (!it->is_array()) return make_error("field 'tables' is not an array");
        for (const auto& t : *it) {
            TablePartitionOffset offset;
            if (!t.is_object() || !read(t, "table", offset.table, error) || !read(t, "partition", offset.partition, error) ||
                !read(t, "offset", offset.offset, error))
                return make_error("an entry of 'tables': " + (error.empty() ? std::string("not an object") : error));
            r.tables.push_back(std::move(offset));
        }
    }
    return r;
}

}  // namespace mephisto
