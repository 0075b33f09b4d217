// `mephisto status`, `mephisto agents` and `mephisto reload`: a running host, through its admin API (a
// Boost.Beast client).
#include <iostream>

#include <nlohmann/json.hpp>

#include "admin/http_request.hpp"
#include "cli/admin_request.hpp"
#include "cli/commands.hpp"

namespace mephisto::cli {

using nlohmann::json;

int status(const AdminOptions& o) {
    auto health = admin_get_json(o, "/health", true);
    auto ready = admin_get_json(o, "/ready", true);
    auto pipelines = admin_get_json(o, "/pipelines");
    if (!health || !ready || !pipelines) return 1;
    // A supervisor (pipelines in worker processes) also lists its workers; a host answers 404 here.
    std::optional<json> workers;
    if (auto reply = admin_request(o, "GET", "/workers"); reply && reply->status == 200) {
        workers = json::parse(reply->body, nullptr, false);
        if (workers->is_discarded()) workers.reset();
    }
    if (o.json) {
        json out{{"health", *health}, {"ready", *ready}, {"pipelines", *pipelines}};
        if (workers) out["workers"] = *workers;
        std::cout << out.dump(2) << "\n";
    } else {
        std::cout << "host     " << o.address << ": " << (*health)["status"].get<std::string>() << ", "
                  << ((*ready)["ready"].get<bool>() ? "ready" : "not ready: " + (*ready)["reason"].get<std::string>())
                  << "\n";
        for (const auto& p : *pipelines) {
            int64_t lag = 0;
            int recovering = 0;
            for (const auto& part : p["partitions"]) {
                lag += part.value("lag", int64_t{0});
                recovering += part["recovering"].get<bool>() ? 1 : 0;
            }
            std::cout << "pipeline " << p["app"].get<std::string>() << " (" << p["file"].get<std::string>()
                      << "): " << p["state"].get<std::string>() << ", " << p["partitions"].size()
                      << " partition(s), lag " << lag;
            if (recovering) std::cout << ", " << recovering << " recovering";
            std::cout << "\n";
            for (const auto& h : p.value("hung", json::array()))
                std::cout << "  HUNG: " << h["description"].get<std::string>() << "\n";
        }
        if (workers) {
            std::cout << "worker               state        pid  restarts  last exit\n";
            for (const auto& w : *workers) {
                auto text = [&](const char* key) { return w[key].is_string() ? w[key].get<std::string>() : std::string("-"); };
                char line[512];
                std::snprintf(line, sizeof line, "%-20s %-10s %7s %9d  %s\n", text("worker").c_str(), text("state").c_str(),
                              w["pid"].is_number() ? std::to_string(w["pid"].get<long>()).c_str() : "-",
                              w.value("restarts", 0), text("last_exit").c_str());
                std::cout << line;
                if (w["reason"].is_string() && w["state"] != "running")
                    std::cout << "  " << w["reason"].get<std::string>() << "\n";
            }
        }
    }
    return (*ready)["ready"].get<bool>() ? 0 : 2;
}

int table_get_remote(const AdminOptions& o, const std::string& table, const std::string& key, bool stale) {
    auto reply = admin_request(o, "GET",
                         "/tables/" + percent_encode(table) + "/" + percent_encode(key) + (stale ? "?stale=ok" : ""));
    if (!reply) return 1;
    const json body = json::parse(reply->body, nullptr, false);
    if (stale && reply->status == 200 && body.is_object() && body.value("standby", false))
        std::cerr << "(from a standby replica"
                  << (body["lag"].is_number() ? ", " + std::to_string(body["lag"].get<int64_t>()) + " record(s) behind" : "")
                  << ")\n";
    if (reply->status == 200 && body.is_object() && body.contains("value")) {
        if (o.json) std::cout << body.dump() << "\n";
        else std::cout << (body["value"].is_string() ? body["value"].get<std::string>() : body["value"].dump()) << "\n";
        return 0;
    }
    const std::string why = body.is_object() && body.contains("error") ? body["error"].get<std::string>() : reply->body;
    std::cerr << "table " << table << ": " << why << "\n";
    if (reply->status == 404) return 3;
    return reply->status == 503 ? 2 : 1;
}

int cluster_status(const AdminOptions& o) {
    auto cluster = admin_get_json(o, "/cluster");
    if (!cluster) return 1;
    if (o.json) {
        std::cout << cluster->dump(2) << "\n";
        return 0;
    }
    for (const auto& p : (*cluster)["pipelines"])
        std::cout << "pipeline " << p["pipeline"].get<std::string>() << ": " << p["hosts"].get<size_t>()
                  << " host(s) on " << p["control_topic"].get<std::string>()
                  << (p["caught_up"].get<bool>() ? "" : " (still reading it)") << "\n";
    std::cout << "host                               admin                       heartbeat  pipeline: active partitions; standby replicas\n";
    for (const auto& h : (*cluster)["hosts"]) {
        char line[512];
        const std::string id = h["host"].get<std::string>() + (h["self"].get<bool>() ? " *" : "");
        std::snprintf(line, sizeof line, "%-34s %-27s %6.1f s ago", id.c_str(),
                      h["admin"].is_string() ? h["admin"].get<std::string>().c_str() : "-",
                      static_cast<double>(h["age_ms"].get<int64_t>()) / 1000.0);
        std::cout << line;
        for (const auto& p : h["pipelines"]) {
            std::string parts;
            for (const auto& a : p["active"])
                parts += (parts.empty() ? "" : " ") + a["topic"].get<std::string>() + "[" +
                         std::to_string(a["partition"].get<int>()) + "]" + (a["recovering"].get<bool>() ? "(recovering)" : "");
            std::string standbys;
            for (const auto& s : p["standby"])
                standbys += (standbys.empty() ? "" : " ") + s["table"].get<std::string>() + "[" +
                            std::to_string(s["partition"].get<int>()) + "] lag " +
                            (s["lag"].is_number() ? std::to_string(s["lag"].get<int64_t>()) : std::string("?"));
            std::cout << "  " << p["pipeline"].get<std::string>() << ": " << (parts.empty() ? "none" : parts);
            if (!standbys.empty()) std::cout << "; standby " << standbys;
        }
        std::cout << "\n";
    }
    return 0;
}

int agents(const AdminOptions& o) {
    auto list = admin_get_json(o, "/agents");
    if (!list) return 1;
    if (o.json) {
        std::cout << list->dump(2) << "\n";
        return 0;
    }
    std::cout << "pipeline/agent                 processed    outputs   failures   restarts  state\n";
    for (const auto& a : *list) {
        char line[256];
        std::snprintf(line, sizeof line, "%-28s %11llu %10llu %10llu %10llu  %s\n",
                      (a["pipeline"].get<std::string>() + "/" + a["agent"].get<std::string>()).c_str(),
                      a["processed"].get<unsigned long long>(), a["outputs"].get<unsigned long long>(),
                      a["failures"].get<unsigned long long>(), a["restarts"].get<unsigned long long>(),
                      a["quarantined"].get<bool>()             ? "QUARANTINED"
                      : !a.value("hung_now", json::array()).empty() ? "HUNG"
                                                                    : "running");
        std::cout << line;
    }
    return 0;
}

int reload(const AdminOptions& o) {
    auto reply = admin_request(o, "POST", "/reload");
    if (!reply) return 1;
    auto body = json::parse(reply->body, nullptr, false);
    if (body.is_discarded() || (reply->status != 200 && reply->status != 422)) {
        std::cerr << "POST /reload: HTTP " << reply->status << " " << reply->body;
        return 1;
    }
    if (o.json) {
        std::cout << body.dump(2) << "\n";
    } else if (body["changes"].empty() && body["topology"].empty()) {
        std::cout << "nothing changed: no plugin and no pipeline file\n";
    } else {
        for (const auto& t : body["topology"]) {
            std::cout << (t["pipeline"].get<std::string>().empty() ? "" : t["pipeline"].get<std::string>() + ": ")
                      << t["file"].get<std::string>() << ": " << t["result"].get<std::string>();
            if (!t["changed"].get<std::string>().empty()) std::cout << " (" << t["changed"].get<std::string>() << ")";
            if (t["reason"].is_string()) std::cout << ": " << t["reason"].get<std::string>();
            for (const auto& a : t["agents"])
                std::cout << "\n  " << a["agent"].get<std::string>() << " paused " << a["pause_ms"].get<double>() << " ms";
            std::cout << "\n";
        }
        for (const auto& c : body["changes"]) {
            std::cout << c["pipeline"].get<std::string>() << ": " << c["file"].get<std::string>() << ": "
                      << c["result"].get<std::string>();
            if (c["result"] == "refused") std::cout << ": " << c["reason"].get<std::string>();
            for (const auto& a : c["agents"])
                std::cout << "\n  " << a["agent"].get<std::string>() << " paused " << a["pause_ms"].get<double>() << " ms";
            std::cout << "\n";
        }
    }
    return reply->status == 200 ? 0 : 2;
}

}  // namespace mephisto::cli
