// GET /tables/NAME/KEY on any host of a cluster (Faust's table_route, Kafka Streams' interactive queries): the key
// is read here when this host holds it; otherwise its partition is computed with the producer's partitioner
// (murmur2, Kafka's Java default, which the host's own producer uses), its owner is looked up in the cluster view
// (cluster/cluster_member.hpp), and the request is forwarded there (or redirected, with ?redirect=1). While the
// owner is unknown, ambiguous or recovering (a rebalance), the answer is 503 with Retry-After: never a value from
// a host that does not own the key (KAFKA-4537), never a 404 for a key that may exist elsewhere.
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
    std::shared_ptr<Pipeline> pipeline;  // the first that declares the table
    for (const auto& p : host.pipelines()) {
        if (!p->tables().count(table)) continue;
        if (!pipeline) pipeline = p;
        auto found = p->read_table(table, key);
        if (!found) return served_by(retry_later(found.error()), host.host_id());
        if (!*found) continue;
        const TableStore& store = *p->tables().at(table);
        const auto& [partition, value] = **found;
        json shown = store.spec().value == ValueCodec::raw ? json(value) : parse_json_bounded(to_json_with(store.codec(), value));
        // A codec whose JSON does not parse, or nests too deep to render: the bytes, as a string.
        if (shown.is_discarded()) shown = value;
        return served_by(json_reply(200, {{"table", table}, {"key", key}, {"partition", partition}, {"value", shown}}),
                         host.host_id());
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
    if (query_param(request.target, "forwarded"))  // the asking host thought it was here: the view is moving
        return retry_later("this host does not hold " + where + " (it moved: a rebalance in progress?)");

    std::shared_ptr<ClusterMember> member;
    for (const auto& [app, m] : host.cluster_members())
        if (app == pipeline->config().app_id) member = m;
    if (!member || !member->caught_up())
        return retry_later("this host does not hold " + where + ", and does not know the cluster yet");
    std::vector<HostRecord> owners;
    for (const auto& [record, age] : member->hosts()) {
        const bool holds = std::any_of(record.tables.begin(), record.tables.end(), [&](const TablePartitionOffset& t) {
            return t.table == table && t.partition == partition;
        });
        if (holds) owners.push_back(record);
    }
    if (owners.size() != 1)
        return retry_later(where + " has " + (owners.empty() ? std::string("no owner") : "several owners") +
                           " in the cluster view now (a rebalance in progress?)");
    const HostRecord& owner = owners.front();
    if (owner.host == host.host_id()) return retry_later("this host's record still claims " + where + ", which it left");
    const bool recovering = std::any_of(owner.active.begin(), owner.active.end(),
                                        [&](const HeldPartition& p) { return p.partition == partition && p.recovering; });
    if (recovering) return retry_later("host " + owner.host + " is still recovering " + where);
    const std::string address = admin_address(owner.admin);
    if (address.empty())
        return retry_later("host " + owner.host + " holds " + where + " but advertises no usable admin URL ('" +
                           owner.admin + "')");
    const std::string target = "/tables/" + percent_encode(table) + "/" + percent_encode(key) + "?forwarded=1";
    if (query_param(request.target, "redirect") == "1") {
        HttpResponse r = json_reply(307, {{"location", "http://" + address + target}, {"host", owner.host}});
        r.headers.emplace_back("Location", "http://" + address + target);
        return r;
    }
    HttpHeaders headers;
    if (!host.admin_token().empty()) headers.emplace_back("Authorization", "Bearer " + host.admin_token());
    auto answer = tcp_http_request(address, "GET", target, headers, kForwardTimeout);
    if (!answer) return retry_later("host " + owner.host + " holds " + where + " and cannot be asked: " + answer.error());
    const bool named = std::any_of(answer->headers.begin(), answer->headers.end(),
                                   [](const auto& h) { return !strcasecmp(h.first.c_str(), "Mephisto-Served-By"); });
    if (!named) answer->headers.emplace_back("Mephisto-Served-By", owner.host);
    answer->headers.emplace_back("Mephisto-Forwarded-By", host.host_id());
    return *answer;
}

}  // namespace mephisto
