#include "engine/host.hpp"

#include <signal.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "admin/admin_api.hpp"
#include "common/logging.hpp"
#include "tables/codec.hpp"

namespace mephisto {

Result<std::map<std::string, std::shared_ptr<Plugin>>> load_pipeline_plugins(const PipelineConfig& config) {
    std::map<std::string, std::shared_ptr<Plugin>> plugins;
    auto load = [&](const std::string& name, const Mark& mark) -> Status {
        if (plugins.count(name)) return {};
        auto plugin = load_plugin(config.plugin_dir / (name + ".so"), host_api());
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
        std::string b = *options.broker;
        if (b == "embedded") {
            config.broker.embedded = true;
        } else {
            if (b.rfind("kafka://", 0) == 0) b = b.substr(8);
            if (b.empty() || b.find("://") != std::string::npos)
                return make_error("--broker must be 'embedded' or 'kafka://host:port[,host:port]', found '" +
                                  *options.broker + "'");
            config.broker.embedded = false;
            config.broker.bootstrap = b;
        }
    }
    return config;
}

Host::~Host() { stop(); }

std::chrono::milliseconds Host::shutdown_budget() const {
    std::lock_guard lock(running_mutex_);
    std::chrono::milliseconds total{0};
    for (const auto& r : running_) total += r.config.shutdown_timeout;
    return total;
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

Status Host::start_pipeline(PipelineConfig c) {
    auto log = logger("host");
    {
        std::lock_guard lock(running_mutex_);
        for (const auto& other : running_)
            if (other.config.app_id == c.app_id)
                return make_error(c.file.string() + ": app id '" + c.app_id + "' is already used by " +
                                  other.config.file.string());
    }
    if (c.broker.embedded) {
        // One embedded broker serves every pipeline of this host that asks for one.
        if (!broker_) {
            auto broker = EmbeddedBroker::start(c.broker.embedded_port, c.broker.embedded_brokers);
            if (!broker) return make_error(c.file.string() + ": " + broker.error());
            broker_ = std::move(*broker);
            log->info("embedded broker listening on {} (kcat -b {} -L)", broker_->bootstrap(), broker_->bootstrap());
        }
        // The embedded broker is this pipeline's broker: it starts with the topics the pipeline declares,
        // as an operator would provision a real cluster.
        for (const auto& t : c.topics)
            if (auto st = broker_->create_topic(t.name, t.partitions); !st) return make_error(st.error());
    }
    auto plugins = load_pipeline_plugins(c);
    if (!plugins) return make_error(plugins.error());
    auto pipeline = Pipeline::create(c, *plugins, c.broker.embedded ? broker_->bootstrap() : c.broker.bootstrap,
                                     c.broker.embedded ? broker_.get() : nullptr);
    if (!pipeline) return make_error(pipeline.error());
    std::shared_ptr<Pipeline> running = std::move(*pipeline);
    if (auto st = running->start(); !st) {
        running->stop();
        return make_error(st.error());
    }
    Running r;
    r.file_sha1 = file_sha1(c.file);
    r.config = std::move(c);
    r.plugins = std::move(*plugins);
    r.pipeline = std::move(running);
    std::lock_guard lock(running_mutex_);
    running_.push_back(std::move(r));
    return {};
}

Result<std::unique_ptr<Host>> Host::start(const HostOptions& options) {
    std::unique_ptr<Host> host(new Host());
    host->options_ = options;
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
    for (auto& c : configs)
        if (auto st = host->start_pipeline(std::move(c)); !st) return make_error(st.error());

    Host* self = host.get();
    if (options.watch_plugins) {
        std::vector<std::filesystem::path> dirs;
        for (const auto& r : host->running_)
            if (std::find(dirs.begin(), dirs.end(), r.config.plugin_dir) == dirs.end()) dirs.push_back(r.config.plugin_dir);
        auto watcher = FileWatcher::start(dirs, ".so", std::chrono::milliseconds(300),
                                          [self] { self->reload_plugins("plugin directory"); });
        if (!watcher) log->warn("{}; plugins reload on SIGHUP or POST /reload only", watcher.error());
        else host->watcher_ = std::move(*watcher);
    }
    if (host->pipeline_dir_) {
        auto watcher = FileWatcher::start({*host->pipeline_dir_}, ".yaml", std::chrono::milliseconds(300),
                                          [self] { self->sync_pipeline_dir(); });
        if (!watcher) return make_error(watcher.error());
        host->pipeline_watcher_ = std::move(*watcher);
    }
    if (options.admin_listen) {
        auto server = HttpServer::start(*options.admin_listen, options.admin_token, HttpLimits{},
                                        [self](const HttpRequest& r) { return handle_admin_request(*self, r); });
        if (!server) return make_error(server.error() + " (use --admin HOST:PORT to choose another, or --admin off)");
        host->admin_ = std::move(*server);
        log->info("admin API on http://{}/ (health, ready, metrics, agents, plugins, pipelines, tables, reloads){}",
                  host->admin_->address(), options.admin_token.empty() ? "" : "; a bearer token is required");
    }
    return host;
}

void Host::sync_pipeline_dir() {
    if (!pipeline_dir_) return;
    std::lock_guard reload_lock(reload_mutex_);
    auto log = logger("host");
    std::set<std::filesystem::path> present;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(*pipeline_dir_, ec))
        if (entry.is_regular_file() && entry.path().extension() == ".yaml") present.insert(entry.path());

    // Removed files stop their pipeline; edited ones are checked first and restart theirs only when valid.
    std::vector<Running> stopping;
    std::vector<PipelineConfig> to_start;
    {
        std::lock_guard lock(running_mutex_);
        for (auto it = running_.begin(); it != running_.end();) {
            const auto file = it->config.file;
            if (!present.count(file)) {
                log->info("pipeline {}: its file {} was removed; stopping it", it->config.app_id, file.string());
                stopping.push_back(std::move(*it));
                it = running_.erase(it);
                continue;
            }
            present.erase(file);
            const std::string sha1 = file_sha1(file);
            if (sha1.empty() || sha1 == it->file_sha1) {
                ++it;
                continue;
            }
            auto config = load_with_overrides(file, options_);
            if (!config) {
                log->error("{}; pipeline {} keeps running as it was", config.error(), it->config.app_id);
                it->file_sha1 = sha1;  // reported once, not at every event in the directory
                ++it;
                continue;
            }
            log->info("pipeline {}: {} changed; restarting this pipeline (the others run on)", it->config.app_id,
                      file.string());
            to_start.push_back(std::move(*config));
            stopping.push_back(std::move(*it));
            it = running_.erase(it);
        }
    }
    for (auto& r : stopping) {
        r.pipeline->stop();
        log->info("pipeline {} stopped", r.config.app_id);
    }
    stopping.clear();  // unloads the plugins only these pipelines used
    for (const auto& file : present) {  // new files
        auto config = load_with_overrides(file, options_);
        if (!config) {
            log->error("{}; not started", config.error());
            continue;
        }
        to_start.push_back(std::move(*config));
    }
    for (auto& c : to_start) {
        const std::string file = c.file.string();
        if (auto st = start_pipeline(std::move(c)); !st) log->error("{}: not started: {}", file, st.error());
        else log->info("pipeline from {} started", file);
    }
}

void Host::stop() {
    pipeline_watcher_.reset();
    watcher_.reset();  // joins: a reload in progress finishes first
    if (admin_) admin_->stop();
    admin_.reset();
    std::vector<Running> running;
    {
        std::lock_guard lock(running_mutex_);
        running.swap(running_);
    }
    for (auto it = running.rbegin(); it != running.rend(); ++it) it->pipeline->stop();
    running.clear();  // unloads the images once no instance refers to them
    broker_.reset();
}

namespace {
constexpr size_t kReloadHistory = 20;
}

ReloadRecord Host::reload_plugins(const std::string& trigger) {
    std::lock_guard reload_lock(reload_mutex_);
    auto log = logger("reload");
    ReloadRecord record;
    record.at = std::chrono::system_clock::now();
    record.trigger = trigger;
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
            } else if (auto fresh = load_plugin(old->path(), host_api()); !fresh) {
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
    if (record.changes.empty()) log->info("{}: no plugin changed", trigger);
    std::lock_guard lock(history_mutex_);
    history_.push_back(record);
    while (history_.size() > kReloadHistory) history_.pop_front();
    return record;
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


int run_host(const HostOptions& options) {
    auto log = logger("host");
    // Signals are taken synchronously by this thread; every thread started later inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);  // reload plugins
    sigset_t blocked = signals;
    sigaddset(&blocked, SIGUSR1);  // wakes the shutdown guard below
    pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

    auto host = Host::start(options);
    if (!host) {
        log->error("{}", host.error());
        return 1;
    }
    int received = 0;
    while (!(*host)->failed()) {
        timespec tick{0, 200'000'000};
        int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGHUP) {
            (*host)->reload_plugins("SIGHUP");
        } else if (sig > 0) {
            received = sig;
            break;
        }
    }
    const bool failed = (*host)->failed();
    if (received) log->info("received {}, stopping: finishing in-flight events, committing, flushing", strsignal(received));
    else log->error("stopping after a failure: {}", (*host)->failure());

    // A second signal, or a stop that overruns its budget, ends the process at once: an operator asking
    // twice, or a hung library call, must not leave a half-alive host behind.
    const auto budget = (*host)->shutdown_budget() + std::chrono::seconds(10);
    std::thread guard([blocked, budget] {
        timespec ts{static_cast<time_t>(budget.count() / 1000), static_cast<long>(budget.count() % 1000) * 1'000'000};
        int sig;
        do sig = sigtimedwait(&blocked, nullptr, &ts);
        while (sig == SIGHUP);  // no reloads while stopping
        if (sig == -1 && errno == EAGAIN) {
            logger("host")->critical("shutdown did not finish within {} ms; exiting now", budget.count());
        } else if (sig == SIGINT || sig == SIGTERM) {
            logger("host")->critical("second {} received; exiting now without a clean stop", strsignal(sig));
        } else {
            return;  // SIGUSR1: the stop finished in time
        }
        _exit(2);
    });
    (*host)->stop();
    host->reset();
    pthread_kill(guard.native_handle(), SIGUSR1);
    guard.join();
    log->info("stopped");
    return failed ? 1 : 0;
}

}  // namespace mephisto
