// GET /metrics: the host's figures in the Prometheus text format, rendered by prometheus-cpp's serializer from
// families collected at scrape time. Counters live where the work happens (AgentStats atomics, the offset
// bookkeeping, the stores), so a scrape reads them and the hot path never touches a metrics registry.
#include <algorithm>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "host/admin_api.hpp"
#include "host/host.hpp"

namespace mephisto {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct Families {
    std::vector<MetricFamily> list;

    MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
        for (auto& f : list)
            if (f.name == name) return f;
        list.push_back(MetricFamily{name, help, type, {}});
        return list.back();
    }
    void counter(const std::string& name, const std::string& help, std::vector<ClientMetric::Label> labels,
                 double value) {
        ClientMetric m;
        m.label = std::move(labels);
        m.counter.value = value;
        family(name, help, MetricType::Counter).metric.push_back(std::move(m));
    }
    void histogram(const std::string& name, const std::string& help, std::vector<ClientMetric::Label> labels,
                   const LatencyHistogram& h) {
        ClientMetric m;
        m.label = std::move(labels);
        uint64_t cumulative = 0;
        for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
            cumulative += h.buckets[i].load();
            m.histogram.bucket.push_back({cumulative, LatencyHistogram::kBounds[i]});
        }
        cumulative += h.buckets.back().load();
        m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
        m.histogram.sample_count = cumulative;
        m.histogram.sample_sum = static_cast<double>(h.sum_ns.load()) / 1e9;
        family(name, help, MetricType::Histogram).metric.push_back(std::move(m));
    }
    void gauge(const std::string& name, const std::string& help, std::vector<ClientMetric::Label> labels,
               double value) {
        ClientMetric m;
        m.label = std::move(labels);
        m.gauge.value = value;
        family(name, help, MetricType::Gauge).metric.push_back(std::move(m));
    }
};

void agent_metrics(Families& out, const Pipeline& p, const AgentRuntime& a, const std::vector<HungCall>& hung) {
    const std::vector<ClientMetric::Label> labels = {{"pipeline", p.config().app_id}, {"agent", a.spec->name}};
    const AgentStats& s = a.stats;
    out.counter("mephisto_agent_events_processed_total", "Events an agent finished with MPH_OK", labels,
                static_cast<double>(s.processed.load()));
    out.counter("mephisto_agent_outputs_total", "Messages an agent produced (emit, send, forward)", labels,
                static_cast<double>(s.outputs.load()));
    out.counter("mephisto_agent_errors_total", "MPH_RETRY and MPH_FATAL verdicts and failed creates", labels,
                static_cast<double>(s.failures.load()));
    out.counter("mephisto_agent_skipped_total", "Events skipped by the error policy", labels,
                static_cast<double>(s.skipped.load()));
    out.counter("mephisto_agent_dead_lettered_total", "Events sent to the dead-letter topic", labels,
                static_cast<double>(s.dead_lettered.load()));
    out.counter("mephisto_agent_quarantined_records_total",
                "Records dead-lettered unprocessed because they crashed the worker on_crash.quarantine_after times",
                labels, static_cast<double>(s.poison_quarantined.load()));
    out.counter("mephisto_agent_undecodable_total", "Values the topic's codec refused", labels,
                static_cast<double>(s.undecodable.load()));
    out.counter("mephisto_agent_filtered_total", "Events the agent's filter predicate kept from it", labels,
                static_cast<double>(s.filtered.load()));
    out.counter("mephisto_agent_restarts_total", "Instance restarts by the supervisor", labels,
                static_cast<double>(s.restarts.load()));
    out.counter("mephisto_agent_asks_total", "Requests the agent sent with ask", labels, static_cast<double>(s.asks.load()));
    out.counter("mephisto_agent_replies_total", "Replies delivered to the agent's on_reply", labels,
                static_cast<double>(s.replies.load()));
    out.counter("mephisto_agent_ask_timeouts_total", "Asks that got no reply within their timeout", labels,
                static_cast<double>(s.ask_timeouts.load()));
    out.gauge("mephisto_agent_unacked_events", "ack: manual: events processed and not yet acknowledged", labels,
              static_cast<double>(s.unacked.load()));
    out.gauge("mephisto_agent_quarantined", "1 while the agent is quarantined", labels, s.quarantined.load() ? 1 : 0);
    out.counter("mephisto_agent_hung_callbacks_total", "Callbacks that ran past hung_callback_after", labels,
                static_cast<double>(s.hung.load()));
    size_t hung_now = 0;
    for (const auto& h : hung)
        if (h.agent == a.spec->name && !h.topic.empty()) ++hung_now;
    out.gauge("mephisto_agent_hung_callbacks", "Callbacks of the agent running past hung_callback_after now", labels,
              static_cast<double>(hung_now));

    out.histogram("mephisto_agent_processing_seconds", "Time spent in on_event / on_batch calls", labels, s.latency);
}

}  // namespace

std::string render_metrics(const Host& host) {
    Families out;
    out.gauge("mephisto_up", "1 while the host runs, 0 once a pipeline failed", {}, host.failed() ? 0 : 1);
    const ReloadStats& reloads = host.reload_stats();
    out.counter("mephisto_plugin_reloads_total", "Plugin replacements by result", {{"result", "swapped"}},
                static_cast<double>(reloads.swapped.load()));
    out.counter("mephisto_plugin_reloads_total", "Plugin replacements by result", {{"result", "refused"}},
                static_cast<double>(reloads.refused.load()));
    for (const auto& [result, count] : {std::pair{"applied", &reloads.topology_applied},
                                        std::pair{"restarted", &reloads.topology_restarted},
                                        std::pair{"refused", &reloads.topology_refused}})
        out.counter("mephisto_topology_reloads_total",
                    "Pipeline file changes by result: applied in place, pipeline restarted (or started, stopped), refused",
                    {{"result", result}}, static_cast<double>(count->load()));
    out.histogram("mephisto_plugin_swap_pause_seconds",
                  "How long an agent took no events while a plugin swap or a topology edit restarted it", {},
                  reloads.pauses);
    for (const auto& p : host.pipelines()) {
        const std::string app = p->config().app_id;
        const auto hung = p->hung_calls();
        for (const auto& a : p->agents()) agent_metrics(out, *p, *a, hung);
        size_t assigned = 0;
        for (const auto& ps : p->partition_status()) {
            ++assigned;
            const std::vector<ClientMetric::Label> labels = {
                {"pipeline", app}, {"topic", ps.topic}, {"partition", std::to_string(ps.partition)}};
            if (ps.lag >= 0)
                out.gauge("mephisto_consumer_lag", "Messages between the committed offset and the partition's end",
                          labels, static_cast<double>(ps.lag));
            out.gauge("mephisto_partition_recovering", "1 while the partition waits for its tables to recover", labels,
                      ps.recovering ? 1 : 0);
        }
        out.gauge("mephisto_assigned_partitions", "Partitions assigned to this host", {{"pipeline", app}},
                  static_cast<double>(assigned));
        out.gauge("mephisto_broker_reachable", "0 while librdkafka reports no broker of the pipeline reachable",
                  {{"pipeline", app}}, p->broker_problem() ? 0 : 1);
        for (const auto& r : p->recovery_status())
            out.gauge("mephisto_table_recovery_remaining", "Changelog records left to recover",
                      {{"pipeline", app}, {"table", r.table}, {"partition", std::to_string(r.partition)}},
                      static_cast<double>(r.remaining));
        out.counter("mephisto_table_records_replayed_total",
                    "Changelog records the recoveries of table partitions applied (a standby's lag, or whole changelogs)",
                    {{"pipeline", app}}, static_cast<double>(p->records_replayed()));
        for (const auto& s : p->standby_status())
            if (s.lag >= 0)
                out.gauge("mephisto_standby_lag", "Changelog records a standby replica kept here is behind",
                          {{"pipeline", app}, {"table", s.table}, {"partition", std::to_string(s.partition)}},
                          static_cast<double>(s.lag));
        for (const auto& [name, store] : p->tables()) {
            if (!store->spec().window) continue;
            const std::vector<ClientMetric::Label> labels = {{"pipeline", app}, {"table", name}};
            out.counter("mephisto_window_late_events_total", "Events later than their windows' grace period, dropped",
                        labels, static_cast<double>(store->late_events.load()));
            out.counter("mephisto_windows_closed_total", "Windows (key, window) closed", labels,
                        static_cast<double>(store->windows_closed.load()));
            out.counter("mephisto_windows_expired_total", "Windows (key, window) removed from the store and changelog",
                        labels, static_cast<double>(store->windows_expired.load()));
        }
        for (const auto& [name, store] : p->tables())
            for (int32_t partition : store->stored_partitions())
                out.gauge("mephisto_table_keys", "Keys in a table partition's local store (RocksDB's estimate)",
                          {{"pipeline", app}, {"table", name}, {"partition", std::to_string(partition)}},
                          static_cast<double>(store->estimate_keys(partition)));
    }
    // A worker's series all carry a `pipeline` label: its supervisor merges every worker's into one exposition.
    if (!host.worker_name().empty())
        for (auto& family : out.list)
            for (auto& metric : family.metric)
                if (std::none_of(metric.label.begin(), metric.label.end(), [](const auto& l) { return l.name == "pipeline"; }))
                    metric.label.insert(metric.label.begin(), ClientMetric::Label{"pipeline", host.worker_name()});
    return prometheus::TextSerializer().Serialize(out.list);
}

}  // namespace mephisto
