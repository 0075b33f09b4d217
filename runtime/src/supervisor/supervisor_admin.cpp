#include "supervisor/supervisor_admin.hpp"

#include <future>
#include <map>

#include <nlohmann/json.hpp>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "admin/json_reply.hpp"
#include "admin/http_client.hpp"
#include "supervisor/metrics_merge.hpp"

namespace mephisto {
namespace {

using nlohmann::json;

HttpResponse reply(int status, const json& body) { return json_reply(status, body); }
HttpResponse error(int status, const std::string& message) { return json_error(status, message); }

json worker_json(const WorkerStatus& w) {
    return {{"worker", w.name},
            {"pipelines", w.pipelines},
            {"files", w.files},
            {"state", w.state},
            {"pid", w.pid > 0 ? json(w.pid) : json()},
            {"restarts", w.restarts},
            {"last_exit", w.last_exit.empty() ? json() : json(w.last_exit)},
            {"reason", w.reason.empty() ? json() : json(w.reason)},
            {"since_ms", w.since_ms},
            {"admin_socket", w.admin_socket.empty() ? json() : json(w.admin_socket)}};
}

// "pipeline a (worker a): restarting: killed by SIGSEGV"
std::string describe(const WorkerStatus& w) {
    std::string names;
    for (const auto& p : w.pipelines) names += (names.empty() ? "" : ", ") + p;
    if (names.empty()) names = w.name;
    std::string text = "pipeline " + names + ": " + w.state;
    if (!w.reason.empty()) text += ": " + w.reason;
    return text;
}

// One worker's answer to the request passed on, or why there is none.
struct Answer {
    const WorkerStatus* worker;
    Result<HttpResponse> response;
    // The answer's body as JSON; discarded when there is none or it does not parse.
    json body() const {
        if (!response) return json(json::value_t::discarded);
        return json::parse(response->body, nullptr, false);
    }
};

// Asks every worker that has a process, all at once: one slow worker costs the request its timeout, once.
std::vector<Answer> ask_workers(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers,
                                const std::string& method, const std::string& target) {
    std::vector<std::pair<const WorkerStatus*, std::future<Result<HttpResponse>>>> pending;
    for (const auto& w : workers) {
        if (w.pid <= 0 || w.admin_socket.empty() || w.state == "stopping") continue;
        pending.emplace_back(&w, std::async(std::launch::async, [&admin, &w, method, target] {
                                 return unix_http_request(w.admin_socket, method, target, admin.worker_timeout);
                             }));
    }
    std::vector<Answer> out;
    for (auto& [w, future] : pending) out.push_back({w, future.get()});
    return out;
}

// The JSON lists of every worker joined, each entry told its worker.
json joined_lists(const std::vector<Answer>& answers) {
    json out = json::array();
    for (const auto& a : answers) {
        const json body = a.body();
        if (!a.response || a.response->status != 200 || !body.is_array()) continue;
        for (json entry : body) {
            if (entry.is_object()) {
                entry["worker"] = a.worker->name;
                entry["pid"] = a.worker->pid;
            }
            out.push_back(std::move(entry));
        }
    }
    return out;
}

HttpResponse pipelines(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers) {
    const auto answers = ask_workers(admin, workers, "GET", "/pipelines");
    json out = joined_lists(answers);
    // A pipeline whose worker did not answer (down, restarting, starting) is shown with the worker's state.
    for (const auto& w : workers)
        for (size_t i = 0; i < w.pipelines.size(); ++i) {
            const bool listed = std::any_of(out.begin(), out.end(), [&](const json& p) {
                return p.value("app", std::string()) == w.pipelines[i];
            });
            if (listed) continue;
            std::string why = w.reason.empty() ? w.last_exit : w.reason;
            for (const auto& a : answers)
                if (a.worker->name == w.name && !a.response) why = "its worker does not answer: " + a.response.error();
            out.push_back({{"app", w.pipelines[i]},
                           {"file", i < w.files.size() ? w.files[i] : std::string()},
                           {"state", w.state == "running" ? "unknown" : w.state},
                           {"failure", why.empty() ? json() : json(why)},
                           {"worker", w.name},
                           {"pid", w.pid > 0 ? json(w.pid) : json()},
                           {"partitions", json::array()},
                           {"recovery", json::array()},
                           {"channels", json::array()},
                           {"tables", json::array()},
                           {"hung", json::array()}});
        }
    return reply(200, out);
}

// Every worker's metrics, and the supervisor's own series per worker: up, restarts.
HttpResponse metrics(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers) {
    using prometheus::ClientMetric;
    using prometheus::MetricFamily;
    using prometheus::MetricType;
    MetricFamily running{"mephisto_worker_running", "1 while the worker process runs its pipelines", MetricType::Gauge, {}};
    MetricFamily restarts{"mephisto_worker_restarts_total", "Restarts of the worker process after it crashed",
                          MetricType::Counter, {}};
    MetricFamily failed{"mephisto_worker_failed", "1 while the pipeline failed: past its restart limit, or refused",
                        MetricType::Gauge, {}};
    for (const auto& w : workers) {
        ClientMetric m;
        m.label = {{"pipeline", w.name}};
        m.gauge.value = w.state == "running" ? 1 : 0;
        running.metric.push_back(m);
        m.gauge.value = w.state == "failed" || w.state == "refused" ? 1 : 0;
        failed.metric.push_back(m);
        m.counter.value = w.restarts;
        restarts.metric.push_back(m);
    }
    std::vector<std::string> expositions{prometheus::TextSerializer().Serialize({running, failed, restarts})};
    for (auto& a : ask_workers(admin, workers, "GET", "/metrics"))
        if (a.response && a.response->status == 200) expositions.push_back(std::move(a.response->body));
    return {200, "text/plain; version=0.0.4; charset=utf-8", merge_expositions(expositions)};
}

HttpResponse ready(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers) {
    json not_ready = json::array();
    for (const auto& w : workers)
        if (w.state != "running") not_ready.push_back(describe(w));
    if (workers.empty()) not_ready.push_back("no pipeline runs");
    for (const auto& a : ask_workers(admin, workers, "GET", "/ready")) {
        if (a.worker->state != "running") continue;
        const json body = a.body();
        if (!a.response) not_ready.push_back("worker " + a.worker->name + " does not answer: " + a.response.error());
        else if (a.response->status != 200) not_ready.push_back(body.is_object() ? body.value("reason", a.response->body) : a.response->body);
    }
    const bool ok = not_ready.empty();
    return reply(ok ? 200 : 503, {{"ready", ok}, {"reason", ok ? json("ready") : not_ready[0]}, {"not_ready", not_ready}});
}

// The worker that holds the key answers; else the most telling refusal: "no such key" over "no table here".
HttpResponse table_read(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers, const HttpRequest& request) {
    std::optional<HttpResponse> best;
    int best_rank = -1;
    for (auto& a : ask_workers(admin, workers, "GET", request.target)) {
        if (!a.response) continue;
        const int status = a.response->status;
        const json body = a.body();
        const bool no_table = status == 404 && body.is_object() &&
                              body.value("error", std::string()).rfind("no table", 0) == 0;
        const int rank = status == 200 ? 3 : status == 503 ? 2 : no_table ? 0 : 1;
        if (rank > best_rank) {
            best_rank = rank;
            best = std::move(*a.response);
        }
    }
    if (!best) return error(404, "no table of that name in any running pipeline");
    return *best;
}

HttpResponse reload(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers) {
    if (admin.reload_files) admin.reload_files();  // pipeline files added or removed: the supervisor's to handle
    json changes = json::array(), topology = json::array();
    bool refused = false;
    for (const auto& a : ask_workers(admin, workers, "POST", "/reload")) {
        const json body = a.body();
        if (!a.response || !body.is_object()) {
            refused = true;
            topology.push_back({{"pipeline", a.worker->name},
                                {"file", a.worker->files.empty() ? std::string() : a.worker->files.front()},
                                {"result", "refused"},
                                {"changed", ""},
                                {"reason", "its worker does not answer: " +
                                               (a.response ? a.response->body : a.response.error())},
                                {"agents", json::array()}});
            continue;
        }
        refused = refused || a.response->status != 200;
        for (const auto& c : body.value("changes", json::array())) changes.push_back(c);
        for (const auto& t : body.value("topology", json::array())) topology.push_back(t);
    }
    return reply(refused ? 422 : 200, {{"trigger", "POST /reload"}, {"changes", changes}, {"topology", topology}});
}

// GET /cluster: each worker knows the cluster of its own pipelines; one host entry per host id, with the
// pipelines every worker saw it run.
HttpResponse cluster(const SupervisorAdmin& admin, const std::vector<WorkerStatus>& workers) {
    std::map<std::string, json> hosts;
    json pipelines = json::array();
    json self;
    for (const auto& a : ask_workers(admin, workers, "GET", "/cluster")) {
        const json body = a.body();
        if (!body.is_object()) continue;
        if (self.is_null() && body.contains("host")) self = body["host"];
        for (const auto& p : body.value("pipelines", json::array())) pipelines.push_back(p);
        for (const auto& h : body.value("hosts", json::array())) {
            if (!h.is_object() || !h.contains("host") || !h["host"].is_string()) continue;
            json& entry = hosts[h["host"].get<std::string>()];
            if (entry.is_null()) {
                entry = h;
                continue;
            }
            for (const auto& p : h.value("pipelines", json::array())) entry["pipelines"].push_back(p);
            if (h.value("age_ms", int64_t{0}) < entry.value("age_ms", int64_t{0})) {
                entry["age_ms"] = h["age_ms"];
                entry["last_heartbeat_ms"] = h["last_heartbeat_ms"];
            }
        }
    }
    json list = json::array();
    for (auto& [id, entry] : hosts) list.push_back(std::move(entry));
    return reply(200, {{"host", self}, {"pipelines", pipelines}, {"hosts", list}});
}

}  // namespace

HttpResponse handle_supervisor_request(const SupervisorAdmin& admin, const HttpRequest& request) {
    const std::string& path = request.path;
    const auto workers = admin.workers();
    if (path == "/reload") {
        if (request.method != "POST") return error(405, "use POST /reload");
        return reload(admin, workers);
    }
    if (request.method != "GET" && request.method != "HEAD")
        return error(405, request.method + " " + path + ": only GET is served here");
    if (path == "/health") {
        json down = json::array();
        for (const auto& w : workers)
            if (w.state == "failed" || w.state == "refused") down.push_back(describe(w));
        if (!down.empty()) return reply(503, {{"status", "failed"}, {"reason", down[0]}, {"failed", down}});
        return reply(200, {{"status", "ok"}});
    }
    if (path == "/ready") return ready(admin, workers);
    if (path == "/workers") {
        json list = json::array();
        for (const auto& w : workers) list.push_back(worker_json(w));
        return reply(200, list);
    }
    if (path == "/metrics") return metrics(admin, workers);
    if (path == "/pipelines") return pipelines(admin, workers);
    if (path == "/cluster") return cluster(admin, workers);
    if (path == "/agents" || path == "/plugins" || path == "/reloads" || path == "/history")
        return reply(200, joined_lists(ask_workers(admin, workers, "GET", path)));
    if (path.rfind("/tables/", 0) == 0) return table_read(admin, workers, request);
    return error(404, "no such endpoint: " + path +
                          " (the supervisor serves / (the status page), /health, /ready, /workers, /metrics, /agents, "
                          "/pipelines, /history, /cluster, /plugins, /reloads, /tables/NAME/KEY and POST /reload)");
}

}  // namespace mephisto
