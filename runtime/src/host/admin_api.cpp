#include "host/admin_api.hpp"

#include <cmath>
#include <ctime>

#include <nlohmann/json.hpp>

#include "admin/json_reply.hpp"
#include "host/host.hpp"

namespace mephisto {
namespace {

using nlohmann::json;

HttpResponse reply(int status, const json& body) { return json_reply(status, body); }
HttpResponse error(int status, const std::string& message) { return json_error(status, message); }

std::string iso8601(std::chrono::system_clock::time_point t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

json hung_json(const HungCall& h) {
    return {{"agent", h.agent},
            {"callback", h.callback},
            {"topic", h.topic.empty() ? json() : json(h.topic)},
            {"partition", h.partition >= 0 ? json(h.partition) : json()},
            {"offset", h.offset >= 0 ? json(h.offset) : json()},
            {"running_s", static_cast<double>(h.running.count()) / 1000.0},
            {"description", h.describe()}};
}

json agents(const Host& host) {
    json out = json::array();
    for (const auto& p : host.pipelines()) {
        const auto hung = p->hung_calls();
        for (const auto& a : p->agents()) {
            const AgentStats& s = a->stats;
            json hung_now = json::array();
            for (const auto& h : hung)
                if (h.agent == a->spec->name && !h.topic.empty()) hung_now.push_back(hung_json(h));
            out.push_back({{"pipeline", p->config().app_id},
                           {"agent", a->spec->name},
                           {"plugin", a->spec->builtin.empty() ? a->spec->plugin : "(builtin " + a->spec->builtin + ")"},
                           {"from", a->spec->from},
                           {"processed", s.processed.load()},
                           {"outputs", s.outputs.load()},
                           {"failures", s.failures.load()},
                           {"restarts", s.restarts.load()},
                           {"skipped", s.skipped.load()},
                           {"dead_lettered", s.dead_lettered.load()},
                           {"quarantined_records", s.poison_quarantined.load()},
                           {"undecodable", s.undecodable.load()},
                           {"filtered", s.filtered.load()},
                           {"asks", s.asks.load()},
                           {"replies", s.replies.load()},
                           {"ask_timeouts", s.ask_timeouts.load()},
                           {"unacked", s.unacked.load()},
                           {"quarantined", s.quarantined.load()},
                           {"hung", s.hung.load()},
                           {"hung_now", hung_now}});
        }
    }
    return out;
}

json plugins(const Host& host) {
    json out = json::array();
    for (const auto& set : host.plugin_sets())
        for (const auto& [name, plugin] : set) {
            json agents = json::array(), codecs = json::array(), aggregators = json::array(), functions = json::array();
            for (const auto& a : plugin->agents()) agents.push_back(a.name);
            for (const auto& c : plugin->codecs()) codecs.push_back(c.name);
            for (const auto& a : plugin->aggregators()) aggregators.push_back(a.name);
            for (const auto& k : plugin->key_functions()) functions.push_back(k.name);
            out.push_back({{"name", plugin->name()},
                           {"version", plugin->version()},
                           {"file", plugin->path().string()},
                           {"sha1", plugin->sha1()},
                           {"abi", std::to_string(plugin->abi_major()) + "." + std::to_string(plugin->abi_minor())},
                           {"loaded_at", iso8601(plugin->loaded_at())},
                           {"agents", agents},
                           {"codecs", codecs},
                           {"aggregators", aggregators},
                           {"key_functions", functions}});
        }
    return out;
}

json pipelines(const Host& host) {
    json out = json::array();
    for (const auto& p : host.pipelines()) {
        json partitions = json::array();
        for (const auto& ps : p->partition_status()) {
            json entry = {{"topic", ps.topic},
                          {"partition", ps.partition},
                          {"committed", ps.committed},
                          {"recovering", ps.recovering},
                          {"refused", ps.refused}};
            if (ps.end >= 0) {
                entry["end"] = ps.end;
                entry["lag"] = ps.lag;
            }
            partitions.push_back(std::move(entry));
        }
        json recovery = json::array();
        for (const auto& r : p->recovery_status())
            recovery.push_back({{"table", r.table}, {"partition", r.partition}, {"remaining", r.remaining}});
        json recoveries = json::array();  // the last ones done
        for (const auto& r : p->recovery_history())
            recoveries.push_back({{"table", r.table},
                                  {"partition", r.partition},
                                  {"replayed", r.replayed},
                                  {"from", r.from},
                                  {"end", r.end},
                                  {"standby_offset", r.standby_offset ? json(*r.standby_offset) : json()},
                                  {"started_ms", r.started_ms},
                                  {"duration_ms", r.duration_ms},
                                  {"completed", r.completed}});
        json standbys = json::array();
        for (const auto& s : p->standby_status())
            standbys.push_back({{"table", s.table},
                                {"partition", s.partition},
                                {"offset", s.offset},
                                {"lag", s.lag < 0 ? json() : json(s.lag)}});
        const WarmUp::Status w = p->warm_up_status();
        const json warm_up = w.state == WarmUp::State::off
                                 ? json()
                                 : json{{"state", WarmUp::name(w.state)},
                                        {"partitions", w.partitions},
                                        {"caught_up", w.caught_up},
                                        {"started_ms", w.started_ms},
                                        {"duration_ms", w.duration_ms < 0 ? json() : json(w.duration_ms)},
                                        {"reason", w.reason}};
        json channels = json::array();
        for (const auto& c : p->channel_status())
            channels.push_back({{"name", c.name}, {"sent", c.sent}, {"unfinished", c.unfinished}});
        json tables = json::array();
        for (const auto& [name, store] : p->tables()) tables.push_back(name);
        json hung = json::array();
        for (const auto& h : p->hung_calls()) hung.push_back(hung_json(h));
        out.push_back({{"app", p->config().app_id},
                       {"file", p->config().file.string()},
                       {"state", p->failed()                                ? "failed"
                                 : p->joined()                              ? "running"
                                 : w.state == WarmUp::State::warming ? "warming up"
                                                                            : "joining"},
                       {"failure", p->failed() ? json(p->failure()) : json()},
                       {"partitions", partitions},
                       {"recovery", recovery},
                       {"recoveries", recoveries},
                       {"records_replayed", p->records_replayed()},
                       {"standby", standbys},
                       {"standby_records_applied", p->standby_records_applied()},
                       {"warm_up", warm_up},
                       {"member", p->member_id()},
                       {"group_instance_id", p->group_instance_id().empty() ? json() : json(p->group_instance_id())},
                       {"rebalances", p->rebalances()},
                       {"channels", channels},
                       {"tables", tables},
                       {"hung", hung}});
    }
    return out;
}

// Each pipeline's events/s and lag over the last 15 minutes: [{pipeline, every_ms, samples: [[ms, events/s, lag]]}],
// lag null where it was not known.
json history(const Host& host) {
    json out = json::array();
    for (const auto& [pipeline, samples] : host.sample_history()) {
        json points = json::array();
        for (const auto& s : samples)
            points.push_back({s.at_ms, std::round(s.events_per_s * 10) / 10, s.lag < 0 ? json() : json(s.lag)});
        out.push_back({{"pipeline", pipeline}, {"every_ms", SampleHistory::kEvery.count()}, {"samples", points}});
    }
    return out;
}

// Ready: every pipeline joined its group and no assigned partition is recovering or refused.
std::pair<bool, std::string> readiness(const Host& host) {
    for (const auto& p : host.pipelines()) {
        if (p->failed()) return {false, "pipeline " + p->config().app_id + " failed: " + p->failure()};
        if (auto problem = p->broker_problem()) return {false, "pipeline " + p->config().app_id + ": " + *problem};
        if (const auto w = p->warm_up_status(); !p->joined() && w.state == WarmUp::State::warming)
            return {false, "pipeline " + p->config().app_id + " is warming up its tables before it joins its group (" +
                               std::to_string(w.caught_up) + " of " + std::to_string(w.partitions) +
                               " partition(s) caught up)"};
        if (!p->joined()) return {false, "pipeline " + p->config().app_id + " has not joined its group yet"};
        // A hung callback holds back its partition's commit, and nothing but a restart ends it.
        if (const auto hung = p->hung_calls(); !hung.empty())
            return {false, "pipeline " + p->config().app_id + ": " + hung.front().describe() +
                               (hung.size() > 1 ? " (and " + std::to_string(hung.size() - 1) + " more)" : "")};
        for (const auto& ps : p->partition_status()) {
            const std::string where = ps.topic + "[" + std::to_string(ps.partition) + "]";
            if (ps.refused) return {false, where + ": its tables refuse to serve"};
            if (ps.recovering) return {false, where + " is recovering its tables"};
        }
    }
    return {true, "ready"};
}

json reload_json(const ReloadRecord& r) {
    json changes = json::array();
    for (const auto& c : r.changes) {
        json pauses = json::array();
        for (const auto& [agent, pause] : c.pauses)
            pauses.push_back({{"agent", agent}, {"pause_ms", static_cast<double>(pause.count()) / 1000.0}});
        changes.push_back({{"pipeline", c.pipeline},
                           {"plugin", c.plugin},
                           {"file", c.file},
                           {"result", c.result},
                           {"reason", c.reason.empty() ? json() : json(c.reason)},
                           {"old_sha1", c.old_sha1},
                           {"new_sha1", c.new_sha1},
                           {"agents", pauses},
                           {"old_image_unloaded", c.old_unloaded}});
    }
    json topology = json::array();
    for (const auto& t : r.topology) {
        json pauses = json::array();
        for (const auto& [agent, pause] : t.pauses)
            pauses.push_back({{"agent", agent}, {"pause_ms", static_cast<double>(pause.count()) / 1000.0}});
        topology.push_back({{"pipeline", t.pipeline},
                            {"file", t.file},
                            {"result", t.result},
                            {"changed", t.summary},
                            {"reason", t.reason.empty() ? json() : json(t.reason)},
                            {"agents", pauses}});
    }
    return {{"at", iso8601(r.at)}, {"trigger", r.trigger}, {"changes", changes}, {"topology", topology}};
}

}  // namespace

HttpResponse handle_admin_request(Host& host, const HttpRequest& request) {
    const std::string& path = request.path;
    if (path == "/reload") {
        if (request.method != "POST") return error(405, "use POST /reload");
        const ReloadRecord record = host.reload("POST /reload", true, true);
        return reply(record.refused() ? 422 : 200, reload_json(record));
    }
    const bool get = request.method == "GET" || request.method == "HEAD";
    if (!get) return error(405, request.method + " " + path + ": only GET is served here");
    if (path == "/reloads") {
        json out = json::array();
        for (const auto& r : host.reload_history()) out.push_back(reload_json(r));
        return reply(200, out);
    }
    if (path == "/health") {
        if (host.failed()) return reply(503, {{"status", "failed"}, {"reason", host.failure()}});
        return reply(200, {{"status", "ok"}});
    }
    if (path == "/ready") {
        auto [ready, reason] = readiness(host);
        return reply(ready ? 200 : 503, {{"ready", ready}, {"reason", reason}});
    }
    if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(host)};
    if (path == "/agents") return reply(200, agents(host));
    if (path == "/plugins") return reply(200, plugins(host));
    if (path == "/pipelines") return reply(200, pipelines(host));
    if (path == "/cluster") return cluster_reply(host);
    if (path == "/history") return reply(200, history(host));
    if (path == "/workers") return reply(200, json::array());  // one process: no worker processes (the supervisor's)
    if (path.rfind("/tables/", 0) == 0) return table_reply(host, request);
    return error(404, "no such endpoint: " + path +
                          " (serving / (the status page), /health, /ready, /metrics, /agents, /plugins, /pipelines, "
                          "/history, /workers, /cluster, /tables/NAME/KEY, /reloads and POST /reload)");
}

}  // namespace mephisto
