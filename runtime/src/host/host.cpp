#include "host/host.hpp"

#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <set>
#include <thread>

#include "host/admin_api.hpp"
#include "config/broker_address.hpp"
#include "config/topology_diff.hpp"
#include "common/logging.hpp"
#include "tables/codec.hpp"

namespace mephisto {

Result<std::map<std::string, std::shared_ptr<Plugin>>> load_pipeline_plugins(
    const PipelineConfig& config, const std::map<std::string, std::shared_ptr<Plugin>>& loaded,
    const std::function<void(const std::string& plugin)>& on_load) {
    std::map<std::string, std::shared_ptr<Plugin>> plugins;
    auto load = [&](const std::string& name, const Mark& mark) -> Status {
        if (plugins.count(name)) return {};
        if (auto it = loaded.find(name); it != loaded.end()) {
            plugins.emplace(name, it->second);
            return {};
        }
        if (on_load) on_load(name);
        auto plugin = load_plugin(config.plugin_dir / (name + ".so"), host_api(), config.plugin_load_timeout);
        if (!plugin) return make_error(mark.str() + ": " + plugin.error());
        logger("loader")->info("loaded plugin {} {} (ABI {}.{}) from {}", (*plugin)->name(), (*plugin)->version(),
                               (*plugin)->abi_major(), (*plugin)->abi_minor(), (*plugin)->path().string());
        plugins.emplace(name, std::move(*plugin));
        return {};
    };
    for (const auto& a : config.agents)
        if (a.builtin.empty())
            if (auto st = load(a.plugin, a.plugin_mark); !st) return make_error(st.error());
    for (const auto& t : config.timers)
        if (auto st = load(t.plugin, t.plugin_mark); !st) return make_error(st.error());
    for (const auto& [name, mark] : item_plugins(config))
        if (auto st = load(name, mark); !st) return make_error(st.error());
    return plugins;
}

Result<PipelineConfig> load_with_overrides(const std::filesystem::path& file, const HostOptions& options) {
    auto loaded = load_config(file, options.plugin_dir);
    if (!loaded) return loaded;
    PipelineConfig config = std::move(*loaded);
    if (options.state_dir) config.state_dir = std::filesystem::absolute(*options.state_dir).lexically_normal();
    if (options.broker) {
        if (*options.broker == "embedded") {
            config.broker.embedded = true;
        } else {
            auto servers = bootstrap_servers(*options.broker);
            if (!servers)
                return make_error("--broker must be 'embedded' or 'kafka://host:port[,host:port]', found '" +
                                  *options.broker + "'");
            config.broker.embedded = false;
            config.broker.bootstrap = *servers;
        }
    }
    return config;
}

Host::~Host() { stop(); }

std::chrono::milliseconds Host::shutdown_budget() const {
    std::lock_guard lock(running_mutex_);
    std::chrono::milliseconds longest{0};  // the pipelines stop at once
    for (const auto& r : running_) longest = std::max(longest, r.config.shutdown_timeout);
    return longest;
}

std::vector<std::shared_ptr<Pipeline>> Host::pipelines() const {
    std::lock_guard lock(running_mutex_);
    std::vector<std::shared_ptr<Pipeline>> out;
    for (const auto& r : running_) out.push_back(r.pipeline);
    return out;
}

std::vector<std::map<std::string, std::shared_ptr<Plugin>>> Host::plugin_sets() const {
    std::lock_guard lock(running_mutex_);
    std::vector<std::map<std::string, std::shared_ptr<Plugin>>> out;
    for (const auto& r : running_) out.push_back(r.plugins);
    return out;
}

Status Host::start_pipeline(PipelineConfig c, StartupControl* control) {
    auto log = logger("host");
    auto interrupted = [&] { return control && control->cancelled(); };
    auto at = [&](std::string step) {
        log->debug("{}", step);
        if (control) control->at(std::move(step));
    };
    {
        std::lock_guard lock(running_mutex_);
        for (const auto& other : running_)
            if (other.config.app_id == c.app_id)
                return make_error(c.file.string() + ": app id '" + c.app_id + "' is already used by " +
                                  other.config.file.string());
    }
    if (c.broker.embedded) {
        // One embedded broker serves every pipeline of this host that asks for one.
        if (!embedded()) {
            auto broker = EmbeddedBroker::start(c.broker.embedded_port, c.broker.embedded_brokers);
            if (!broker) return make_error(c.file.string() + ": " + broker.error());
            broker_ = std::move(*broker);
            log->info("embedded broker listening on {} (kcat -b {} -L)", broker_->bootstrap(), broker_->bootstrap());
        }
        // The embedded broker is this pipeline's broker: it starts with the topics the pipeline declares,
        // as an operator would provision a real cluster.
        std::vector<std::pair<std::string, int>> topics;
        for (const auto& t : c.topics) topics.emplace_back(t.name, t.partitions);
        at("creating the " + std::to_string(topics.size()) + " topic(s) of pipeline " + c.app_id + " on the embedded broker");
        if (auto st = embedded()->create_topics(topics, control ? &control->flag() : nullptr); !st) return make_error(st.error());
    }
    if (interrupted()) return make_error("startup interrupted");
    auto plugins = load_pipeline_plugins(c, {}, [&](const std::string& plugin) {
        at("loading plugin " + plugin + " of pipeline " + c.app_id + " (its constructors and init)");
    });
    if (!plugins) return make_error(plugins.error());
    if (interrupted()) return make_error("startup interrupted");
    at("starting pipeline " + c.app_id + " (internal topics, tables, the consumer)");
    auto pipeline = Pipeline::create(c, *plugins, c.broker.embedded ? embedded()->bootstrap() : c.broker.bootstrap,
                                     c.broker.embedded ? embedded() : nullptr);
    if (!pipeline) return make_error(pipeline.error());
    std::shared_ptr<Pipeline> running = std::move(*pipeline);
    running->quarantine(options_.poison);
    if (c.static_membership) {
        running->set_group_instance_id(c.app_id + "-" + host_id_);
        if (options_.host_id.empty())
            logger(c.app_id)->warn("static_membership: this host's id {} was generated and changes at every start; give "
                                   "--host-id for a restart to come back as the same member", host_id_);
    }
    if (auto st = running->start(); !st) {
        running->stop();
        return make_error(st.error());
    }
    // A pipeline started after the host: its plugins may live in a directory not watched yet.
    if (watcher_)
        if (auto st = watcher_->watch(c.plugin_dir); !st)
            logger(c.app_id)->warn("{}; its plugins reload on SIGHUP or POST /reload only", st.error());
    Running r;
    r.file_sha1 = file_sha1(c.file);
    r.config = std::move(c);
    r.plugins = std::move(*plugins);
    r.member = join_cluster(r.config, running);
    r.pipeline = std::move(running);
    std::lock_guard lock(running_mutex_);
    running_.push_back(std::move(r));
    return {};
}

Result<std::unique_ptr<Host>> Host::start(const HostOptions& options, StartupControl* control) {
    std::unique_ptr<Host> host(new Host());
    host->options_ = options;
    host->host_id_ = options.host_id.empty() ? generated_host_id() : options.host_id;
    auto log = logger("host");
    std::vector<std::filesystem::path> files = options.files;
    if (files.size() == 1 && std::filesystem::is_directory(files.front())) {
        host->pipeline_dir_ = std::filesystem::absolute(files.front()).lexically_normal();
        files.clear();
        for (const auto& entry : std::filesystem::directory_iterator(*host->pipeline_dir_))
            if (entry.is_regular_file() && entry.path().extension() == ".yaml") files.push_back(entry.path());
        std::sort(files.begin(), files.end());
        log->info("pipeline directory {}: {} pipeline file(s); files added, edited or removed take effect at once",
                  host->pipeline_dir_->string(), files.size());
    }
    std::vector<PipelineConfig> configs;
    for (const auto& file : files) {
        auto config = load_with_overrides(file, options);
        if (!config) return make_error(config.error());
        configs.push_back(std::move(*config));
    }
    for (auto& c : configs) {
        if (control && control->cancelled()) return make_error("startup interrupted");
        if (auto st = host->start_pipeline(std::move(c), control); !st) return make_error(st.error());
    }

    Host* self = host.get();
    if (options.watch) {
        std::vector<std::filesystem::path> dirs;
        for (const auto& r : host->running_)
            if (std::find(dirs.begin(), dirs.end(), r.config.plugin_dir) == dirs.end()) dirs.push_back(r.config.plugin_dir);
        auto watcher = FileWatcher::start(dirs, FileWatcher::suffix(".so"), std::chrono::milliseconds(300),
                                          [self] { self->reload("plugin directory", false, true, true); });
        if (!watcher) log->warn("{}; plugins reload on SIGHUP or POST /reload only", watcher.error());
        else host->watcher_ = std::move(*watcher);

        // Pipeline files: the directory given, or the directories of the files given (an editor's save
        // replaces the file, so the directory is what can be watched).
        std::vector<std::filesystem::path> file_dirs;
        std::function<bool(const std::string&)> matches = FileWatcher::suffix(".yaml");
        if (host->pipeline_dir_) {
            file_dirs.push_back(*host->pipeline_dir_);
        } else {
            std::set<std::string> names;  // only the files given: a log written beside them must not count
            for (const auto& f : files) {
                auto path = std::filesystem::absolute(f).lexically_normal();
                names.insert(path.filename().string());
                if (std::find(file_dirs.begin(), file_dirs.end(), path.parent_path()) == file_dirs.end())
                    file_dirs.push_back(path.parent_path());
            }
            matches = [names](const std::string& name) { return names.count(name) > 0; };
        }
        if (!file_dirs.empty() && options.watch_pipeline_files) {
            auto files_watcher = FileWatcher::start(file_dirs, matches, std::chrono::milliseconds(300),
                                                    [self] { self->reload("pipeline file", true, false, true); });
            if (!files_watcher) log->warn("{}; pipeline files reload on SIGHUP or POST /reload only", files_watcher.error());
            else host->pipeline_watcher_ = std::move(*files_watcher);
        }
    }
    host->samples_ = std::make_unique<SampleHistory>([self] {
        std::vector<SampleHistory::Reading> out;
        for (const auto& p : self->pipelines()) {
            SampleHistory::Reading r;
            r.pipeline = p->config().app_id;
            for (const auto& a : p->agents()) r.processed += a->stats.processed.load();
            bool known = true;
            int64_t lag = 0;
            for (const auto& ps : p->partition_status()) {
                if (ps.lag < 0) known = false;
                else lag += ps.lag;
            }
            r.lag = known ? lag : -1;
            out.push_back(std::move(r));
        }
        return out;
    });
    host->samples_->start();
    if (options.admin_listen) {
        auto server = HttpServer::start(*options.admin_listen, options.admin_token, HttpLimits{},
                                        [self, extra = options.extra_admin_routes](const HttpRequest& r) {
                                            if (extra)
                                                if (auto answer = extra(r)) return *answer;
                                            return handle_admin_request(*self, r);
                                        });
        if (!server) return make_error(server.error() + " (use --admin HOST:PORT to choose another, or --admin off)");
        host->admin_ = std::move(*server);
        {
            std::lock_guard lock(host->admin_url_mutex_);
            host->admin_url_ = "http://" + host->admin_->address();
        }
        log->info("admin API on http://{}/ (health, ready, metrics, agents, plugins, pipelines, cluster, tables, reloads){}",
                  host->admin_->address(), options.admin_token.empty() ? "" : "; a bearer token is required");
    }
    if (options.admin_socket) {  // a worker's, for its supervisor: the same API without a token
        auto server = HttpServer::listen_unix(*options.admin_socket, HttpLimits{},
                                              [self](const HttpRequest& r) { return handle_admin_request(*self, r); });
        // Not fatal: the pipeline runs, and the supervisor shows the worker without its figures.
        if (!server) log->error("{}; the supervisor's admin API cannot show this worker's figures", server.error());
        else host->admin_ = std::move(*server);
    }
    return host;
}

void Host::sync_pipelines(ReloadRecord& record) {
    auto log = logger("host");
    // The files that should run now: the directory's *.yaml, or the files given at start.
    std::set<std::filesystem::path> present;
    if (pipeline_dir_) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(*pipeline_dir_, ec))
            if (entry.is_regular_file() && entry.path().extension() == ".yaml") present.insert(entry.path());
    } else {
        std::error_code ec;
        for (const auto& f : options_.files)
            if (std::filesystem::is_regular_file(f, ec)) present.insert(f);
    }
    auto note = [&](TopologyChange change) {
        if (change.result == "refused") reload_stats_.topology_refused++;
        else if (change.result == "applied") reload_stats_.topology_applied++;
        else reload_stats_.topology_restarted++;
        record.topology.push_back(std::move(change));
    };

    std::vector<std::pair<std::string, std::string>> files;  // (file, app) of the running pipelines
    {
        std::lock_guard lock(running_mutex_);
        for (const auto& r : running_) files.emplace_back(r.config.file.string(), r.config.app_id);
    }
    for (const auto& [file, app] : files) {
        if (!present.count(file)) {
            if (!pipeline_dir_) continue;  // a file given on the command line: a save in progress, or a mistake
            std::optional<Running> removed;
            {
                std::lock_guard lock(running_mutex_);
                for (auto it = running_.begin(); it != running_.end(); ++it)
                    if (it->config.file == file) {
                        removed = std::move(*it);
                        running_.erase(it);
                        break;
                    }
            }
            if (!removed) continue;
            log->info("pipeline {}: its file {} was removed; stopping it", app, file);
            if (stop_running(std::move(*removed))) log->info("pipeline {} stopped", app);
            note({app, file, "stopped", "the file was removed", "", {}});
            continue;  // stopping it unloaded the plugins only it used
        }
        present.erase(file);
        const std::string sha1 = file_sha1(file);
        size_t index = 0;
        std::string running_sha1;
        {
            std::lock_guard lock(running_mutex_);
            for (index = 0; index < running_.size() && running_[index].config.file != file; ++index) {}
            if (index == running_.size()) continue;
            running_sha1 = running_[index].file_sha1;
        }
        if (sha1.empty() || sha1 == running_sha1) continue;
        auto edited = load_with_overrides(file, options_);
        if (!edited) {
            log->error("{}; pipeline {} keeps running as it was", edited.error(), app);
            std::lock_guard lock(running_mutex_);
            running_[index].file_sha1 = sha1;  // reported once, not at every event in the directory
            note({app, file, "refused", "", edited.error(), {}});
            continue;
        }
        note(apply_edit(index, std::move(*edited), sha1));
    }
    for (const auto& file : present) {  // new files in the directory
        auto config = load_with_overrides(file, options_);
        if (!config) {
            log->error("{}; not started", config.error());
            note({"", file.string(), "refused", "", config.error(), {}});
            continue;
        }
        const std::string app = config->app_id;
        if (auto st = start_pipeline(std::move(*config)); !st) {
            log->error("{}: not started: {}", file.string(), st.error());
            note({app, file.string(), "refused", "", st.error(), {}});
        } else {
            log->info("pipeline {} from {} started", app, file.string());
            note({app, file.string(), "started", "a new pipeline file", "", {}});
        }
    }
}

TopologyChange Host::apply_edit(size_t index, PipelineConfig edited, const std::string& sha1) {
    auto log = logger("host");
    Running* r;
    std::map<std::string, std::shared_ptr<Plugin>> current;
    {
        std::lock_guard lock(running_mutex_);
        r = &running_[index];  // only reloads (serialized, and this is one) change running_'s shape
        current = r->plugins;
    }
    TopologyChange change;
    change.pipeline = r->config.app_id;
    change.file = r->config.file.string();
    const TopologyDiff diff = diff_topology(r->config, edited);
    change.summary = diff.summary();
    // A refusal the file causes is reported once; one of the moment (a callback that did not return in time)
    // is tried again at the next reload.
    auto refuse = [&](const std::string& why, bool retry_later = false) {
        change.result = "refused";
        change.reason = why;
        log->error("pipeline {}: the edit of {} is refused and nothing changed: {}", change.pipeline, change.file, why);
        std::lock_guard lock(running_mutex_);
        if (!retry_later) r->file_sha1 = sha1;
        return change;
    };
    if (diff.empty()) {  // comments, formatting or order only
        std::lock_guard lock(running_mutex_);
        r->config = std::move(edited);
        r->file_sha1 = sha1;
        change.result = "applied";
        return change;
    }
    if (diff.in_place()) {
        auto plugins = load_pipeline_plugins(edited, current);
        if (!plugins) return refuse(plugins.error());
        if (edited.broker.embedded && embedded())
            for (const auto& name : diff.topics_added)
                for (const auto& t : edited.topics)
                    if (t.name == name)
                        if (auto st = embedded()->create_topic(t.name, t.partitions); !st) return refuse(st.error());
        auto applied = r->pipeline->apply_topology(edited, diff, *plugins);
        if (!applied)
            return refuse(applied.error(), applied.error().find("did not return within") != std::string::npos ||
                                               applied.error().find("is stopping") != std::string::npos);
        change.result = "applied";
        change.pauses = applied->agents;
        for (const auto& [agent, pause] : change.pauses)
            if (pause.count() > 0) reload_stats_.pauses.record(pause);
        std::string pauses;  // of the agents that restarted (the others did not pause, or just started)
        for (const auto& [agent, pause] : change.pauses)
            if (pause.count() > 0)
                pauses += (pauses.empty() ? "" : ", ") + agent + " " + fmt::format("{:.3f}", pause.count() / 1000.0) + " ms";
        log->info("pipeline {}: {} applied in place ({}); the other agents ran on; restarted agents paused: {}",
                  change.pipeline, change.file, change.summary, pauses.empty() ? "none" : pauses);
        std::lock_guard lock(running_mutex_);
        r->config = std::move(edited);
        r->file_sha1 = sha1;
        r->plugins = std::move(*plugins);  // plugins no longer named are unloaded once nothing runs them
        return change;
    }
    // Anything else restarts this pipeline only, once the edited file is known to build: its plugins load and
    // every agent, codec and aggregator it names resolves (building a pipeline starts nothing).
    std::string reasons;
    for (const auto& why : diff.restart_reasons) reasons += (reasons.empty() ? "" : "; ") + why;
    {
        auto plugins = load_pipeline_plugins(edited);
        if (!plugins) return refuse(plugins.error());
        TopicProvisioner* broker = edited.broker.embedded ? embedded() : nullptr;
        auto built = Pipeline::create(edited, *plugins, broker ? broker->bootstrap() : edited.broker.bootstrap, broker);
        if (!built) return refuse(built.error());
    }
    change.result = "restarted";
    change.reason = reasons;
    log->info("pipeline {}: {} changed ({}); restarting this pipeline, the others run on", change.pipeline,
              change.file, reasons);
    Running stopping;
    {
        std::lock_guard lock(running_mutex_);
        stopping = std::move(running_[index]);
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(index));
    }
    (void)stop_running(std::move(stopping));  // unloads the plugins only this pipeline used
    if (auto st = start_pipeline(std::move(edited)); !st) {
        change.result = "refused";
        change.reason = "restarting failed, the pipeline is stopped: " + st.error();
        log->error("pipeline {}: {}", change.pipeline, change.reason);
    }
    return change;
}

namespace {

// Pipelines that did not stop cleanly (a callback never returned): a thread still runs their plugin's code, so
// neither they nor their plugins are ever destroyed. The process ends soon after (run_host).
std::mutex g_abandoned_mutex;
std::vector<std::shared_ptr<void>>* g_abandoned = new std::vector<std::shared_ptr<void>>();

}  // namespace

bool Host::stop_running(Running r) {
    if (r.member) r.member->leave(std::chrono::seconds(1));  // the other hosts see it gone at once
    r.member.reset();
    if (r.pipeline->stop()) return true;  // `r` unloads the plugins only it used
    std::lock_guard lock(g_abandoned_mutex);
    g_abandoned->push_back(r.pipeline);
    for (auto& [name, plugin] : r.plugins) g_abandoned->push_back(plugin);
    abandoned_ = true;
    return false;
}

bool Host::stop() {
    pipeline_watcher_.reset();
    watcher_.reset();  // joins: a reload in progress finishes first
    if (admin_) admin_->stop();
    admin_.reset();
    samples_.reset();  // joins its thread, which reads the pipelines
    std::vector<Running> running;
    {
        std::lock_guard lock(running_mutex_);
        running.swap(running_);
    }
    // All at once: each pipeline keeps to its own shutdown_timeout, so the host stops within the longest.
    std::vector<std::thread> stopping;
    for (auto& r : running) stopping.emplace_back([this, &r] { (void)stop_running(std::move(r)); });
    for (auto& t : stopping) t.join();
    running.clear();
    if (abandoned_) {
        std::lock_guard lock(g_abandoned_mutex);
        g_abandoned->push_back(std::shared_ptr<void>(broker_.release(), [](void*) {}));  // a stuck client may use it
        return false;
    }
    broker_.reset();
    return true;
}

namespace {
constexpr size_t kReloadHistory = 20;
}

ReloadRecord Host::reload(const std::string& trigger, bool pipeline_files, bool plugins, bool watcher) {
    std::lock_guard reload_lock(reload_mutex_);
    ReloadRecord record;
    record.at = std::chrono::system_clock::now();
    record.trigger = trigger;
    if (pipeline_files) sync_pipelines(record);
    if (plugins) reload_plugin_files(record);
    if (record.changes.empty() && record.topology.empty()) {
        // Asked for (SIGHUP, POST /reload): said and kept. A watcher's wake-up for some other file: neither.
        if (watcher) return record;
        logger("reload")->info("{}: nothing changed", trigger);
    }
    std::lock_guard lock(history_mutex_);
    history_.push_back(record);
    while (history_.size() > kReloadHistory) history_.pop_front();
    return record;
}

void Host::reload_plugin_files(ReloadRecord& record) {
    auto log = logger("reload");
    std::vector<std::pair<std::shared_ptr<Pipeline>, std::map<std::string, std::shared_ptr<Plugin>>>> snapshot;
    {
        std::lock_guard lock(running_mutex_);
        for (const auto& r : running_) snapshot.emplace_back(r.pipeline, r.plugins);
    }
    for (auto& [pipeline, current] : snapshot) {
        for (auto& [name, old] : current) {
            std::error_code ec;
            if (!std::filesystem::exists(old->path(), ec)) continue;  // removed: the running image stays
            const std::string sha1 = file_sha1(old->path());
            if (sha1.empty() || sha1 == old->sha1()) continue;
            PluginChange change;
            change.pipeline = pipeline->config().app_id;
            change.plugin = name;
            change.file = old->path().string();
            change.old_sha1 = old->sha1();
            change.new_sha1 = sha1;
            auto refuse = [&](const std::string& reason) {
                change.result = "refused";
                change.reason = reason;
                reload_stats_.refused++;
                log->error("reload of {} refused, the running version stays: {}", change.file, reason);
            };
            if (!pipeline->uses_plugin(name)) {
                refuse("the plugin provides codecs, aggregators or key functions only; those take effect at the "
                       "next start");
            } else if (auto fresh = load_plugin(old->path(), host_api(), pipeline->config().plugin_load_timeout); !fresh) {
                refuse(fresh.error());
            } else if (auto swapped = pipeline->swap_plugin(name, *fresh); !swapped) {
                refuse(swapped.error());
            } else {
                change.result = "swapped";
                change.pauses = swapped->agents;
                reload_stats_.swapped++;
                for (const auto& [agent, pause] : change.pauses) reload_stats_.pauses.record(pause);
                {
                    std::lock_guard lock(running_mutex_);
                    for (auto& r : running_)
                        if (r.pipeline == pipeline) r.plugins[name] = *fresh;
                }
                std::shared_ptr<Plugin> previous = std::move(old);
                std::string unload_problem;
                if (previous.use_count() == 1) {  // nothing else runs it: unload now, and check it really left
                    if (auto st = previous->unload(); st) change.old_unloaded = true;
                    else unload_problem = st.error();
                }
                previous.reset();
                if (!unload_problem.empty()) log->warn("{}", unload_problem);
                std::string pauses;
                for (const auto& [agent, pause] : change.pauses)
                    pauses += (pauses.empty() ? "" : ", ") + agent + " " + fmt::format("{:.3f}", pause.count() / 1000.0) + " ms";
                log->info("{}: plugin {} swapped ({} -> {}), {} instance(s) re-created; pauses: {}; old image {}",
                          change.pipeline, name, change.old_sha1.substr(0, 12), change.new_sha1.substr(0, 12),
                          swapped->instances, pauses.empty() ? "none" : pauses,
                          change.old_unloaded ? "unloaded" : unload_problem.empty() ? "still in use (its codecs)" : "NOT unloaded");
            }
            record.changes.push_back(std::move(change));
        }
    }
}

std::vector<ReloadRecord> Host::reload_history() const {
    std::lock_guard lock(history_mutex_);
    return {history_.begin(), history_.end()};
}

bool Host::failed() const {
    for (const auto& p : pipelines())
        if (p->failed()) return true;
    return false;
}

std::string Host::failure() const {
    for (const auto& p : pipelines())
        if (p->failed()) return p->failure();
    return {};
}

}  // namespace mephisto
