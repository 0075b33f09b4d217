#include "supervisor/supervisor_admin.hpp"

#include <nlohmann/json.hpp>

namespace mephisto {
namespace {

using nlohmann::json;

HttpResponse reply(int status, const json& body) {
    return {status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
}

json worker_json(const WorkerStatus& w) {
    return {{"worker", w.name},
            {"pipelines", w.pipelines},
            {"files", w.files},
            {"state", w.state},
            {"pid", w.pid > 0 ? json(w.pid) : json()},
            {"restarts", w.restarts},
            {"last_exit", w.last_exit.empty() ? json() : json(w.last_exit)},
            {"reason", w.reason.empty() ? json() : json(w.reason)},
            {"since_ms", w.since_ms}};
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

}  // namespace

HttpResponse handle_supervisor_request(const std::vector<WorkerStatus>& workers, const HttpRequest& request) {
    if (request.method != "GET")
        return reply(405, {{"error", "the supervisor answers GET only (reload: SIGHUP, or edit the pipeline file)"}});
    const std::string& path = request.path;
    if (path == "/health") {
        json down = json::array();
        for (const auto& w : workers)
            if (w.state == "failed" || w.state == "refused") down.push_back(describe(w));
        if (!down.empty()) return reply(503, {{"status", "failed"}, {"reason", down[0]}, {"failed", down}});
        return reply(200, {{"status", "ok"}});
    }
    if (path == "/ready") {
        json not_ready = json::array();
        for (const auto& w : workers)
            if (w.state != "running") not_ready.push_back(describe(w));
        if (workers.empty()) not_ready.push_back("no pipeline runs");
        const bool ready = not_ready.empty();
        return reply(ready ? 200 : 503, {{"ready", ready}, {"reason", ready ? json() : not_ready[0]}, {"not_ready", not_ready}});
    }
    if (path == "/workers") {
        json list = json::array();
        for (const auto& w : workers) list.push_back(worker_json(w));
        return reply(200, list);
    }
    return reply(404, {{"error", "no such endpoint: " + path + " (the supervisor serves /health, /ready and /workers)"}});
}

}  // namespace mephisto
