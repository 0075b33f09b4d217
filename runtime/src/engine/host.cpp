#include "engine/host.hpp"

#include <signal.h>
#include <unistd.h>

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
    std::chrono::milliseconds total{0};
    for (const auto& c : configs_) total += c.shutdown_timeout;
    return total;
}

Result<std::unique_ptr<Host>> Host::start(const HostOptions& options) {
    std::unique_ptr<Host> host(new Host());
    auto log = logger("host");
    for (const auto& file : options.files) {
        auto config = load_with_overrides(file, options);
        if (!config) return make_error(config.error());
        for (const auto& other : host->configs_)
            if (other.app_id == config->app_id)
                return make_error(file.string() + ": app id '" + config->app_id + "' is already used by " +
                                  other.file.string());
        host->configs_.push_back(std::move(*config));
    }

    // One embedded broker serves every pipeline of this host that asks for one.
    for (const auto& c : host->configs_) {
        if (!c.broker.embedded) continue;
        if (!host->broker_) {
            auto broker = EmbeddedBroker::start(c.broker.embedded_port, c.broker.embedded_brokers);
            if (!broker) return make_error(c.file.string() + ": " + broker.error());
            host->broker_ = std::move(*broker);
            log->info("embedded broker listening on {} (kcat -b {} -L)", host->broker_->bootstrap(),
                      host->broker_->bootstrap());
        } else if (c.broker.embedded_port != host->configs_.front().broker.embedded_port &&
                   c.broker.embedded_port != 0) {
            log->warn("{}: also uses the embedded broker already listening on {}", c.file.string(),
                      host->broker_->bootstrap());
        }
        // The embedded broker is this pipeline's broker: it starts with the topics the pipeline declares,
        // as an operator would provision a real cluster.
        for (const auto& t : c.topics)
            if (auto st = host->broker_->create_topic(t.name, t.partitions); !st) return make_error(st.error());
    }

    for (const auto& c : host->configs_) {
        auto plugins = load_pipeline_plugins(c);
        if (!plugins) return make_error(plugins.error());
        host->plugins_.push_back(std::move(*plugins));
        auto pipeline = Pipeline::create(c, host->plugins_.back(),
                                         c.broker.embedded ? host->broker_->bootstrap() : c.broker.bootstrap,
                                         c.broker.embedded ? host->broker_.get() : nullptr);
        if (!pipeline) return make_error(pipeline.error());
        if (auto st = (*pipeline)->start(); !st) return make_error(st.error());
        host->pipelines_.push_back(std::move(*pipeline));
    }
    if (options.watch_plugins) {
        std::vector<std::filesystem::path> dirs;
        for (const auto& c : host->configs_)
            if (std::find(dirs.begin(), dirs.end(), c.plugin_dir) == dirs.end()) dirs.push_back(c.plugin_dir);
        Host* self = host.get();
        auto watcher = PluginWatcher::start(dirs, std::chrono::milliseconds(300),
                                            [self] { self->reload_plugins("plugin directory"); });
        if (!watcher) log->warn("{}; plugins reload on SIGHUP or POST /reload only", watcher.error());
        else host->watcher_ = std::move(*watcher);
    }
    if (options.admin_listen) {
        Host* self = host.get();
        auto server = HttpServer::start(*options.admin_listen, options.admin_token, HttpLimits{},
                                        [self](const HttpRequest& r) { return handle_admin_request(*self, r); });
        if (!server) return make_error(server.error() + " (use --admin HOST:PORT to choose another, or --admin off)");
        host->admin_ = std::move(*server);
        log->info("admin API on http://{}/ (health, ready, metrics, agents, plugins, pipelines, tables, reloads){}",
                  host->admin_->address(), options.admin_token.empty() ? "" : "; a bearer token is required");
    }
    return host;
}

void Host::stop() {
    watcher_.reset();  // joins: a reload in progress finishes first
    if (admin_) admin_->stop();
    admin_.reset();
    for (auto it = pipelines_.rbegin(); it != pipelines_.rend(); ++it) (*it)->stop();
    pipelines_.clear();
    plugins_.clear();  // unloads the images once no instance refers to them
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
    for (size_t i = 0; i < pipelines_.size(); ++i) {
        Pipeline& pipeline = *pipelines_[i];
        std::map<std::string, std::shared_ptr<Plugin>> current;
        {
            std::lock_guard lock(plugins_mutex_);
            current = plugins_[i];
        }
        for (auto& [name, old] : current) {
            std::error_code ec;
            if (!std::filesystem::exists(old->path(), ec)) continue;  // removed: the running image stays
            const std::string sha1 = file_sha1(old->path());
            if (sha1.empty() || sha1 == old->sha1()) continue;
            PluginChange change;
            change.pipeline = pipeline.config().app_id;
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
            if (!pipeline.uses_plugin(name)) {
                refuse("the plugin provides codecs, aggregators or key functions only; those take effect at the "
                       "next start");
            } else if (auto fresh = load_plugin(old->path(), host_api()); !fresh) {
                refuse(fresh.error());
            } else if (auto swapped = pipeline.swap_plugin(name, *fresh); !swapped) {
                refuse(swapped.error());
            } else {
                change.result = "swapped";
                change.pauses = swapped->agents;
                reload_stats_.swapped++;
                for (const auto& [agent, pause] : change.pauses) reload_stats_.pauses.record(pause);
                {
                    std::lock_guard lock(plugins_mutex_);
                    plugins_[i][name] = *fresh;
                }
                std::shared_ptr<Plugin> previous = std::move(current[name]);
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
    for (const auto& p : pipelines_)
        if (p->failed()) return true;
    return false;
}

std::string Host::failure() const {
    for (const auto& p : pipelines_)
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
