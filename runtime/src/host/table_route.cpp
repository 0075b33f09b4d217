// GET /tables/NAME/KEY on any host of a cluster (Faust's table_route, Kafka Streams' interactive queries): the key
// is read here when this host holds it; otherwise its partition is computed with the producer's partitioner
// (murmur2, Kafka's Java default, which the host's own producer uses), its owner is looked up in the cluster view
// (cluster/cluster_member.hpp), and the request is forwarded there (or redirected, with ?redirect=1). While the
// owner is unknown, ambiguous or recovering (a rebalance), the answer is 503 with Retry-After: never a value from
// a host that does not own the key (KAFKA-4537), never a 404 for a key that may exist elsewhere.
//
// `?stale=ok` (KIP-535's stale stores) also takes a standby replica's value: this host's own standby of the key's
// partition, or, while the owner cannot answer (a rebalance, a recovery), the standby with the least lag in the
// view. Such answers say who served them and how far behind it was (Mephisto-Lag-Records; 0 from the owner) and
// that a standby served them (Mephisto-Replica: standby).
#include <strings.h>

#include <algorithm>

#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include "admin/http_client.hpp"
#include "admin/json_reply.hpp"
#include "common/json_bounds.hpp"
#include "host/admin_api.hpp"
#include "host/host.hpp"
#include "tables/codec.hpp"

namespace mephisto {
namespace {

using nlohmann::json;

constexpr std::chrono::milliseconds kForwardTimeout{2000};

HttpResponse retry_later(const std::string& why) {
    HttpResponse r = json_error(503, why);
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

HttpResponse served_by(HttpResponse r, const std::string& host) {
    r.headers.emplace_back("Mephisto-Served-By", host);
    return r;
}

// A stale-ok answer: `lag` records behind the changelog's end (-1: not known yet), from a standby or the owner.
HttpResponse with_lag(HttpResponse r, int64_t lag, bool standby) {
    r.headers.emplace_back("Mephisto-Lag-Records", lag < 0 ? "unknown" : std::to_string(lag));
    r.headers.emplace_back("Mephisto-Replica", standby ? "standby" : "active");
    return r;
}

// A table's value as JSON: itself for JSON codecs, a string for raw bytes (and for what does not render).
json value_json(const TableStore& store, const std::string& value) {
    json shown = store.spec().value == ValueCodec::raw ? json(value) : parse_json_bounded(to_json_with(store.codec(), value));
    return shown.is_discarded() ? json(value) : shown;
}

// "http://host:port" -> "host:port"; empty when the URL is not of that form.
std::string admin_address(const std::string& url) {
    const std::string scheme = "http://";
    if (url.rfind(scheme, 0) != 0) return {};
    std::string rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos) return {};
    return rest;
}

}  // namespace

int32_t key_partition(const std::string& key, int partitions) {
    return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partitions, nullptr, nullptr);
}

HttpResponse table_reply(const Host& host, const HttpRequest& request) {
    const std::string rest = request.path.substr(8);  // after "/tables/"
    const auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size())
        return json_error(400, "use GET /tables/NAME/KEY");
    const std::string table = rest.substr(0, slash), key = rest.substr(slash + 1);
    const bool stale_ok = query_param(request.target, "stale") == "ok";
    std::shared_ptr<Pipeline> pipeline;  // the first that declares the table
    for (const auto& p : host.pipelines()) {
        if (!p->tables().count(table)) continue;
        if (!pipeline) pipeline = p;
        auto found = p->read_table(table, key);
        if (!found) return served_by(retry_later(found.error()), host.host_id());
        if (!*found) continue;
        const auto& [partition, value] = **found;
        HttpResponse r = served_by(json_reply(200, {{"table", table},
                                                    {"key", key},
                                                    {"partition", partition},
                                                    {"value", value_json(*p->tables().at(table), value)}}),
                                   host.host_id());
        return stale_ok ? with_lag(std::move(r), 0, false) : r;
    }
    if (!pipeline) return json_error(404, "no table '" + table + "' on this host");
    const auto [served, partitions] = pipeline->served_partitions(table);
    if (partitions <= 0 || static_cast<int>(served.size()) >= partitions)  // every partition is here (or global)
        return served_by(json_error(404, "no such key '" + key + "' in table " + table), host.host_id());
    const int32_t partition = key_partition(key, partitions);
    if (std::find(served.begin(), served.end(), partition) != served.end())
        return served_by(json_error(404, "no such key '" + key + "' in table " + table + " (partition " +
                                             std::to_string(partition) + ", held here)"),
                         host.host_id());
    const std::string where = "partition " + std::to_string(partition) + " of table " + table;
    if (stale_ok) {
        if (auto standby = pipeline->read_standby(table, partition, key)) {
            json body = {{"table", table}, {"key", key}, {"partition", partition}, {"standby", true},
                         {"lag", standby->lag < 0 ? json() : json(standby->lag)}};
            HttpResponse r = standby->value ? json_reply(200, [&] {
                body["value"] = value_json(*pipeline->tables().at(table), *standby->value);
                return body;
            }())
                                            : json_error(404, "no such key '" + key + "' in table " + table +
                                                                  " (in the standby of partition " +
                                                                  std::to_string(partition) + " here)");
            return with_lag(served_by(std::move(r), host.host_id()), standby->lag, true);
        }
    }
    if (query_param(request.target, "forwarded"))  // the asking host thought it was here: the view is moving
        return retry_later("this host does not hold " + where + " (it moved: a rebalance in progress?)");

    std::shared_ptr<ClusterMember> member;
    for (const auto& [app, m] : host.cluster_members())
        if (app == pipeline->config().app_id) member = m;
    if (!member || !member->caught_up())
        return retry_later("this host does not hold " + where + ", and does not know the cluster yet");
    std::vector<HostRecord> owners;
    std::optional<HostRecord> freshest_standby;  // for a stale-ok read the owner cannot answer
    int64_t freshest_lag = -1;
    for (const auto& [record, age] : member->hosts()) {
        const bool holds = std::any_of(record.tables.begin(), record.tables.end(), [&](const TablePartitionOffset& t) {
            return t.table == table && t.partition == partition;
        });
        if (holds) owners.push_back(record);
        for (const auto& s : record.standby)
            if (s.table == table && s.partition == partition && record.host != host.host_id() && s.lag >= 0 &&
                !admin_address(record.admin).empty() && (!freshest_standby || s.lag < freshest_lag)) {
                freshest_standby = record;
                freshest_lag = s.lag;
            }
    }
    std::string unavailable;  // why the owner cannot answer now
    const HostRecord* owner = owners.size() == 1 ? &owners.front() : nullptr;
    if (!owner)
        unavailable = where + " has " + (owners.empty() ? std::string("no owner") : "several owners") +
                      " in the cluster view now (a rebalance in progress?)";
    else if (owner->host == host.host_id())
        unavailable = "this host's record still claims " + where + ", which it left";
    else if (std::any_of(owner->active.begin(), owner->active.end(),
                         [&](const HeldPartition& p) { return p.partition == partition && p.recovering; }))
        unavailable = "host " + owner->host + " is still recovering " + where;
    else if (admin_address(owner->admin).empty())
        unavailable = "host " + owner->host + " holds " + where + " but advertises no usable admin URL ('" +
                      owner->admin + "')";
    if (!unavailable.empty()) {
        if (!stale_ok || !freshest_standby) return retry_later(unavailable);
        owner = &*freshest_standby;  // a standby answers, and says so
    }
    const std::string address = admin_address(owner->admin);
    const std::string target = "/tables/" + percent_encode(table) + "/" + percent_encode(key) + "?forwarded=1" +
                               (stale_ok ? "&stale=ok" : "");
    if (query_param(request.target, "redirect") == "1") {
        HttpResponse r = json_reply(307, {{"location", "http://" + address + target}, {"host", owner->host}});
        r.headers.emplace_back("Location", "http://" + address + target);
        return r;
    }
    HttpHeaders headers;
    if (!host.admin_token().empty()) headers.emplace_back("Authorization", "Bearer " + host.admin_token());
    auto answer = tcp_http_request(address, "GET", target, headers, kForwardTimeout);
    if (!answer) return retry_later("host " + owner->host + " holds " + where + " and cannot be asked: " + answer.error());
    const bool named = std::any_of(answer->headers.begin(), answer->headers.end(),
                                   [](const auto& h) { return !strcasecmp(h.first.c_str(), "Mephisto-Served-By"); });
    if (!named) answer->headers.emplace_back("Mephisto-Served-By", owner->host);
    answer->headers.emplace_back("Mephisto-Forwarded-By", host.host_id());
    return *answer;
}

}  // namespace mephisto
