#pragma once
// The host process: starts the embedded broker when a pipeline asks for it, loads each pipeline's plugins,
// runs the pipelines, and stops them in order.
#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin/http_server.hpp"
#include "host/sample_history.hpp"
#include "cluster/cluster_member.hpp"
#include "config/config.hpp"
#include "engine/pipeline.hpp"
#include "engine/file_watcher.hpp"
#include "engine/reload.hpp"
#include "kafka/embedded_broker.hpp"
#include "kafka/topic_provisioner.hpp"

namespace mephisto {

struct HostOptions {
    // Pipeline files, or one directory: then every *.yaml in it is a pipeline, and adding or removing a file
    // while the host runs starts or stops that pipeline. An edited file is reloaded (Host::reload).
    std::vector<std::filesystem::path> files;
    std::optional<std::string> broker;  // overrides every pipeline's broker: "embedded" or "kafka://..."
    std::optional<std::filesystem::path> plugin_dir;
    std::optional<std::filesystem::path> state_dir;
    // The admin HTTP API: "host:port" to listen on (port 0: any free one), unset for none. With a token,
    // requests must carry "Authorization: Bearer <token>".
    std::optional<std::string> admin_listen;
    std::string admin_token;
    // More routes of the admin API, asked first (the deployments' PUT /pipelines/NAME, set by `mephisto run
    // --deployments`): an answer, or nullopt for the host's own routes. Not passed on to worker processes.
    std::function<std::optional<HttpResponse>(const HttpRequest&)> extra_admin_routes;
    // Reload when a .so in a pipeline's plugin directory or a pipeline file changes (DESIGN.md §5). Off:
    // SIGHUP and POST /reload still do.
    bool watch = true;
    // Reload when a pipeline file changes (with `watch`); off in a worker process, whose supervisor watches them.
    bool watch_pipeline_files = true;
    // In a worker process: the supervisor's embedded broker, which creates the topics (the pipelines that ask
    // for an embedded broker use it instead of starting one).
    std::shared_ptr<TopicProvisioner> embedded_broker;
    // In a worker process: the records that crashed earlier workers (its supervisor's crash ledger); each
    // pipeline dead-letters those that reached their agent's on_crash.quarantine_after.
    std::vector<PoisonRecord> poison;
    // In a worker process: the admin API on a Unix socket at this path (in the worker's private directory),
    // for the supervisor, which answers for every worker; and the worker's name, given as the `pipeline` label
    // to the metrics that have none (the host's own: mephisto_up, the reload counters).
    std::optional<std::filesystem::path> admin_socket;
    std::string worker_name;
    // This host's id in its pipelines' clusters (the control topics, GET /cluster); empty: "<hostname>-<pid>-<4
    // random hex digits>", new at every start, as Kafka Streams' process id is.
    std::string host_id;
    // The admin URL this host gives the other hosts ("http://host:port"); empty: its own admin API's address. A
    // worker gets its supervisor's.
    std::string advertised_admin;
};

// Loads every plugin a pipeline names from its plugin dir, each within the file's plugins.load_timeout. Errors
// name the YAML position of the reference. Images in `loaded` are used as they are (a topology reload keeps
// the running images). `on_load`, when given, hears of each plugin before it loads.
Result<std::map<std::string, std::shared_ptr<Plugin>>> load_pipeline_plugins(
    const PipelineConfig& config, const std::map<std::string, std::shared_ptr<Plugin>>& loaded = {},
    const std::function<void(const std::string& plugin)>& on_load = {});

// Lets a starting host be stopped (run_host's signal thread): `cancelled` is checked between the steps of
// Host::start, and `step` says what runs meanwhile, for the message of a stop that cannot wait for it.
class StartupControl {
public:
    void cancel() { cancelled_ = true; }
    bool cancelled() const { return cancelled_.load(); }
    const std::atomic<bool>& flag() const { return cancelled_; }
    void at(std::string step) {
        std::lock_guard lock(mu_);
        step_ = std::move(step);
    }
    std::string step() const {
        std::lock_guard lock(mu_);
        return step_;
    }

private:
    std::atomic<bool> cancelled_{false};
    mutable std::mutex mu_;
    std::string step_ = "reading the pipeline files";
};

// A new id for this host in the cluster view: "<hostname>-<pid>-<4 random hex digits>".
std::string generated_host_id();

// Loads a pipeline file with the command line's overrides applied.
Result<PipelineConfig> load_with_overrides(const std::filesystem::path& file, const HostOptions& options);

class Host {
public:
    // Starts every pipeline; with `control`, gives up between steps once it is cancelled (an error saying so).
    static Result<std::unique_ptr<Host>> start(const HostOptions& options, StartupControl* control = nullptr);
    ~Host();
    // Stops every pipeline at once, each within its shutdown_timeout. False when a callback did not return in
    // time: its pipeline and plugins are then kept (never destroyed), and the process should end at once.
    bool stop();
    // Some pipeline, stopped by a reload or by stop(), left a thread inside a plugin. THREAD: any.
    bool abandoned() const { return abandoned_.load(); }
    bool failed() const;
    std::string failure() const;
    EmbeddedBroker* broker() const { return broker_.get(); }
    // Where the topics of pipelines on the embedded broker are created: this host's broker, or the one a worker's
    // supervisor runs; null when there is none (yet).
    TopicProvisioner* embedded() const {
        return options_.embedded_broker ? options_.embedded_broker.get() : static_cast<TopicProvisioner*>(broker_.get());
    }
    // The running pipelines (a snapshot: a pipeline directory may add or remove some). THREAD: any.
    std::vector<std::shared_ptr<Pipeline>> pipelines() const;
    // The plugins each pipeline runs, by name (a copy: a reload may swap them). THREAD: any.
    std::vector<std::map<std::string, std::shared_ptr<Plugin>>> plugin_sets() const;
    // Reload (DESIGN.md §5), of the pipeline files, the plugins or both; returns the record, also kept in the
    // history (a watcher's reload that found nothing changed is not). THREAD: any; reloads are serialized.
    //  - Pipeline files: an edited file is parsed and validated whole, then diffed against its running
    //    pipeline. Agents, timers and declared topics are applied in place: the agents the edit does not name
    //    never pause. Other changes (the topics read, tables, broker...) restart that pipeline only. A file
    //    that does not load is reported (file:line:column) and changes nothing. With a pipeline directory,
    //    a file added starts its pipeline and a file removed stops it.
    //  - Plugins: every plugin whose file changed is loaded and checked, then swapped into the pipelines that
    //    run it, agent by agent; a file that is refused changes nothing and is reported with its path and reason.
    ReloadRecord reload(const std::string& trigger, bool pipeline_files, bool plugins, bool watcher = false);
    ReloadRecord reload_plugins(const std::string& trigger) { return reload(trigger, false, true); }
    std::vector<ReloadRecord> reload_history() const;
    const ReloadStats& reload_stats() const { return reload_stats_; }
    // The worker's name (HostOptions::worker_name); empty for a host that is not a worker.
    const std::string& worker_name() const { return options_.worker_name; }
    // "host:port" of the admin API, empty when it is off.
    std::string admin_address() const { return admin_ ? admin_->address() : std::string(); }
    // Each pipeline's events/s and lag over the last 15 minutes, a sample a second. THREAD: any.
    std::map<std::string, std::vector<PipelineSample>> sample_history() const {
        return samples_ ? samples_->snapshot() : std::map<std::string, std::vector<PipelineSample>>{};
    }
    // This host's id in the cluster view, and the admin URL it gives the other hosts ("http://host:port", empty
    // when the admin API is off). THREAD: any.
    const std::string& host_id() const { return host_id_; }
    std::string advertised_admin() const;
    // The bearer token of the admin API (empty: none); a request forwarded to another host of the cluster carries
    // it, so the hosts of a cluster share one.
    const std::string& admin_token() const { return options_.admin_token; }
    // Each running pipeline's membership in its cluster (app id, member), for GET /cluster. THREAD: any.
    std::vector<std::pair<std::string, std::shared_ptr<ClusterMember>>> cluster_members() const;
    // How long a stop may take: the longest shutdown_timeout (the pipelines stop at once).
    std::chrono::milliseconds shutdown_budget() const;

private:
    Host() = default;
    // Loads the plugins of `config`, then creates and starts its pipeline, and adds it to the running ones.
    Status start_pipeline(PipelineConfig config, StartupControl* control = nullptr);
    // The halves of reload(); the caller holds reload_mutex_.
    void sync_pipelines(ReloadRecord& record);
    void reload_plugin_files(ReloadRecord& record);
    // Applies an edit of a running pipeline's file, in place or by restarting that pipeline.
    TopologyChange apply_edit(size_t index, PipelineConfig edited, const std::string& sha1);
    struct Running;
    // Stops one pipeline that left running_; false (the pipeline kept forever) when a callback outlived it.
    bool stop_running(Running r);

    // One running pipeline: its file's configuration and content hash, its plugins and the pipeline.
    struct Running {
        PipelineConfig config;
        std::string file_sha1;
        std::map<std::string, std::shared_ptr<Plugin>> plugins;
        std::shared_ptr<Pipeline> pipeline;
        std::shared_ptr<ClusterMember> member;  // null when the control topic could not be used
    };
    // Joins the pipeline's cluster (cluster/cluster_member.hpp); a failure is logged, never fatal.
    std::shared_ptr<ClusterMember> join_cluster(const PipelineConfig& config, const std::shared_ptr<Pipeline>& pipeline);
    HostOptions options_;
    std::optional<std::filesystem::path> pipeline_dir_;  // set: every *.yaml in it; else options_.files
    std::unique_ptr<EmbeddedBroker> broker_;
    mutable std::mutex running_mutex_;  // guards running_: the admin API reads it while reloads change it
    std::vector<Running> running_;
    std::mutex reload_mutex_;
    mutable std::mutex history_mutex_;
    std::deque<ReloadRecord> history_;  // the last kReloadHistory reloads
    ReloadStats reload_stats_;
    std::unique_ptr<SampleHistory> samples_;  // throughput and lag over time (GET /history); reads the pipelines
    std::unique_ptr<HttpServer> admin_;  // started last, stopped first: it reads the pipelines
    std::unique_ptr<FileWatcher> watcher_;           // plugin directories
    std::unique_ptr<FileWatcher> pipeline_watcher_;  // the pipeline directory, or the files' directories
    std::atomic<bool> abandoned_{false};
    std::string host_id_;
    mutable std::mutex admin_url_mutex_;
    std::string admin_url_;  // guarded by admin_url_mutex_; set once the admin API listens
};

// `mephisto run`: starts the host and serves until SIGINT/SIGTERM or a pipeline failure. Returns the exit
// code: 0 after a clean stop, 1 when a pipeline failed or startup was refused.
// `on_started`, when given, runs once every pipeline started.
int run_host(const HostOptions& options, const std::function<void()>& on_started = {});

}  // namespace mephisto
