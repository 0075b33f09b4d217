#include "supervisor/supervisor.hpp"

#include "supervisor/supervisor_process.hpp"

#include "common/service_manager.hpp"

namespace mephisto {
namespace supervisor_detail {

std::vector<WorkerStatus> Supervisor::snapshot() const {
    std::lock_guard lock(mu_);
    std::vector<WorkerStatus> out;
    for (const auto& [name, w] : workers_) out.push_back(w->status);
    for (const auto& [file, refusal] : refused_) {
        WorkerStatus s;
        s.name = file.stem().string();
        s.files = {file.string()};
        s.state = "refused";
        s.reason = refusal.second;
        out.push_back(std::move(s));
    }
    return out;
}

void Supervisor::list_pipelines(Worker& w) {
    w.status.pipelines.clear();
    w.status.files.clear();
    for (const auto& [f, app] : w.apps) {
        w.status.pipelines.push_back(app);
        w.status.files.push_back(f.string());
    }
}

void Supervisor::ask_to_stop(Worker& w, const std::string& why, bool respawn) {
    w.respawn_when_stopped = respawn;
    ::kill(w.status.pid, SIGTERM);
    w.stop_deadline = Clock::now() + w.shutdown_timeout + std::chrono::seconds(3);
    set_state(w, "stopping", why);
}

bool Supervisor::take_settings(Worker& w, const PipelineConfig& c) {
    // The shared worker runs several files: the smallest that any of them sets (0: unset).
    auto smallest = [first = w.files.size() == 1](auto current, auto given) {
        if (first || current <= 0) return given;
        return given <= 0 ? current : std::min(current, given);
    };
    w.callback_timeout = Millis(smallest(w.callback_timeout.count(), c.callback_timeout.count()));
    const uint64_t memory = smallest(w.memory_limit, c.memory_limit);
    const double cpu = smallest(w.cpu_limit, c.cpu_limit);
    const bool changed = memory != w.memory_limit || cpu != w.cpu_limit;
    w.memory_limit = memory;
    w.cpu_limit = cpu;
    return changed;
}

std::string Supervisor::state_of(const Worker& w) const {
    std::lock_guard lock(mu_);
    return w.status.state;
}

void Supervisor::set_state(Worker& w, std::string state, std::string reason) {
    std::lock_guard lock(mu_);
    w.status.state = std::move(state);
    w.status.reason = std::move(reason);
    w.status.since_ms = wall_ms();
}

Status Supervisor::ensure_embedded_broker(const PipelineConfig& c) {
    if (!c.broker.embedded || broker_) return {};
    auto broker = EmbeddedBroker::start(c.broker.embedded_port, c.broker.embedded_brokers);
    if (!broker) return make_error(c.file.string() + ": " + broker.error());
    broker_ = std::move(*broker);
    log_->info("embedded broker listening on {} (kcat -b {} -L); the workers reach it there", broker_->bootstrap(),
               broker_->bootstrap());
    return {};
}

std::vector<std::filesystem::path> Supervisor::table_dirs(const PipelineConfig& c) {
    std::vector<std::filesystem::path> dirs;
    for (const auto& table : c.tables)
        if (table.store == StoreKind::rocksdb) dirs.push_back(c.state_dir / table.name);
    return dirs;
}

Status Supervisor::table_clash(const std::filesystem::path& file, const PipelineConfig& c) const {
    for (const auto& mine : table_dirs(c))
        for (const auto& [name, w] : workers_)
            for (const auto& [other_file, dirs] : w->table_dirs)
                if (other_file != file && std::find(dirs.begin(), dirs.end(), mine) != dirs.end())
                    return make_error(file.string() + ": table " + mine.filename().string() + " would be stored in " +
                                      mine.string() + ", which " + other_file.string() +
                                      " uses already (give the pipelines different state_dir)");
    return {};
}

Status Supervisor::adopt(const std::filesystem::path& file, const PipelineConfig& c, const std::string& sha1) {
    const std::string name = worker_name(c);
    {
        std::lock_guard lock(mu_);
        for (const auto& [other_name, w] : workers_)
            for (const auto& [other_file, app] : w->apps)
                if (app == c.app_id && other_file != file)
                    return make_error(file.string() + ": app id '" + c.app_id + "' is already used by " + other_file.string());
        if (auto clash = table_clash(file, c); !clash) return clash;
    }
    if (auto st = ensure_embedded_broker(c); !st) return st;
    std::lock_guard lock(mu_);
    auto& slot = workers_[name];
    if (!slot) {
        slot = std::make_unique<Worker>();
        slot->status.name = name;
        slot->status.state = "stopped";
    }
    Worker& w = *slot;
    if (w.dir.empty()) {
        w.dir = c.state_dir / "workers" / name;
        w.status.admin_socket = (w.dir / "admin.sock").string();
    }
    w.files[file] = sha1;
    w.apps[file] = c.app_id;
    w.table_dirs[file] = table_dirs(c);
    // The shared worker keeps the strictest restart settings and the longest stop of its pipelines.
    if (w.files.size() == 1 || c.worker_restart.max_restarts < w.restart.max_restarts) w.restart = c.worker_restart;
    w.shutdown_timeout = w.files.size() == 1 ? c.shutdown_timeout : std::max(w.shutdown_timeout, c.shutdown_timeout);
    take_settings(w, c);
    list_pipelines(w);
    refused_.erase(file);
    return {};
}

void Supervisor::spawn(Worker& w) {
    std::vector<std::string> args = options_.worker_log_args;
    args.push_back("worker");
    args.push_back("--parent-pid");
    args.push_back(std::to_string(::getpid()));
    if (broker_) {
        args.push_back("--embedded-broker");
        args.push_back(broker_->bootstrap());
    }
    const HostOptions& h = options_.host;
    if (h.broker) args.insert(args.end(), {"--broker", *h.broker});
    if (h.plugin_dir) args.insert(args.end(), {"--plugin-dir", h.plugin_dir->string()});
    if (h.state_dir) args.insert(args.end(), {"--state-dir", h.state_dir->string()});
    if (!h.watch) args.push_back("--no-watch");
    // The workers are this host to the rest of the cluster: one id, the supervisor's admin API (known here only
    // when its port was given; with port 0 the workers advertise none).
    args.insert(args.end(), {"--host-id", host_id_});
    if (!h.advertised_admin.empty())
        args.insert(args.end(), {"--advertise-admin", h.advertised_admin});
    else if (h.admin_listen && !h.admin_listen->ends_with(":0"))
        args.insert(args.end(), {"--advertise-admin", "http://" + *h.admin_listen});
    args.insert(args.end(), {"--worker-dir", w.dir.string()});
    args.push_back("--");
    for (const auto& [file, sha1] : w.files) args.push_back(file.string());

    Worker* self = &w;
    WorkerChannel::Handlers handlers;
    if (broker_) {
        EmbeddedBroker* broker = broker_.get();
        handlers.create_topics = [broker](const std::vector<std::pair<std::string, int>>& topics) {
            auto st = broker->create_topics(topics);
            return st ? std::string() : st.error();
        };
    }
    handlers.ready = [this, self] {  // on the channel's thread
        set_state(*self, "running");
        std::lock_guard lock(mu_);  // the main thread writes the status
        log_->info("worker {} (pid {}) runs pipeline(s) {}", self->status.name, self->status.pid,
                   fmt::join(self->status.pipelines, ", "));
    };
    std::error_code made;  // the state directory, as a host makes it for its tables
    std::filesystem::create_directories(w.dir.parent_path().parent_path(), made);
    Status dir_ready = ensure_private_dir(w.dir.parent_path());
    if (dir_ready) dir_ready = ensure_private_dir(w.dir);
    if (!dir_ready) {
        log_->error("worker {}: {}; not started (fix the state directory, then SIGHUP)", w.status.name, dir_ready.error());
        set_state(w, "failed", dir_ready.error());
        return;
    }
    auto channel = WorkerChannel::open(std::move(handlers));
    if (!channel) {
        log_->error("worker {}: {}; retrying", w.status.name, channel.error());
        w.restart_at = Clock::now() + std::chrono::seconds(1);
        set_state(w, "restarting", channel.error());
        return;
    }
    w.channel.reset();  // the previous run's (its thread ended when that worker exited)
    const bool limited = w.memory_limit > 0 || w.cpu_limit > 0;
    if (!limited) {
        w.limits.reset();
    } else if (!w.limits || w.limits->memory() != w.memory_limit || w.limits->cpu() != w.cpu_limit) {
        w.limits.reset();  // the old groups go first: the new ones have the same names
        w.limits = WorkerLimits::make(w.status.name, w.memory_limit, w.cpu_limit);
        log_->info("worker {}: limits {}", w.status.name, w.limits->describe());
    }
    w.oom_kills_before = w.limits ? w.limits->oom_kills() : 0;
    w.hung.reset();
    // The last run's calls in progress were read when it ended; the new worker makes the file afresh, and
    // until then the hang watch must not see the old calls as running still.
    std::filesystem::remove(w.dir / "calls", made);
    auto pid = spawn_worker(args, (*channel)->worker_fd(), w.limits ? w.limits->child() : ChildLimits{});
    if (!pid) {
        log_->error("worker {}: {}; retrying", w.status.name, pid.error());
        w.restart_at = Clock::now() + std::chrono::seconds(1);
        set_state(w, "restarting", pid.error());
        return;
    }
    if (!w.policy) w.policy = std::make_unique<RestartPolicy>(w.restart);
    {
        std::lock_guard lock(mu_);
        w.status.pid = *pid;
    }
    // "starting" before the channel listens: the worker's "ready" (on the channel's thread) must come after it.
    set_state(w, "starting");
    (*channel)->start();
    w.channel = std::move(*channel);
    log_->info("worker {} started (pid {}) for {}", w.status.name, *pid, fmt::join(w.status.files, ", "));
}

void Supervisor::sync_files() {
    const auto present = pipeline_files(dir_, options_.host.files);
    std::set<std::filesystem::path> present_set(present.begin(), present.end());
    // Files gone: their worker stops (or, shared, restarts without them).
    std::vector<std::string> names;
    for (const auto& [name, w] : workers_) names.push_back(name);
    for (const auto& name : names) {
        Worker& w = *workers_.at(name);
        std::vector<std::filesystem::path> gone;
        for (const auto& [file, sha1] : w.files)
            if (!present_set.count(file) && dir_) gone.push_back(file);  // a file given: a save in progress
        if (gone.empty()) continue;
        {
            std::lock_guard lock(mu_);
            for (const auto& f : gone) {
                w.files.erase(f);
                w.apps.erase(f);
                w.table_dirs.erase(f);
            }
            list_pipelines(w);
        }
        log_->info("pipeline file(s) {} removed: stopping worker {}", gone.front().string(), name);
        if (w.status.pid > 0) {
            ask_to_stop(w, "its file was removed", !w.files.empty());
        } else if (w.files.empty()) {
            forget(name);
        }
    }
    for (const auto& file : present) {
        const std::string sha1 = file_sha1(file);
        Worker* owner = nullptr;
        for (auto& [name, w] : workers_)
            if (w->files.count(file)) owner = w.get();
        if (owner && owner->files.at(file) == sha1) continue;
        if (!owner) {
            std::lock_guard lock(mu_);
            if (auto it = refused_.find(file); it != refused_.end() && it->second.first == sha1) continue;
        }
        auto config = load_with_overrides(file, options_.host);
        Status adopted = config ? Status{} : Status(make_error(config.error()));
        if (adopted && owner && worker_name(*config) != owner->status.name)
            adopted = make_error(file.string() + ": its app id or isolation changed; a running pipeline keeps both "
                                                 "(remove the file, then add it)");
        if (adopted && owner) {
            std::lock_guard lock(mu_);
            adopted = table_clash(file, *config);
            if (adopted) owner->table_dirs[file] = table_dirs(*config);
        }
        if (adopted && !owner) adopted = adopt(file, *config, sha1);
        if (!adopted) {
            log_->error("{}; {}", adopted.error(), owner ? "the worker keeps running as it was" : "not started");
            std::lock_guard lock(mu_);
            if (owner) owner->files[file] = sha1;  // reported once
            else refused_[file] = {sha1, adopted.error()};
            continue;
        }
        if (!owner) {
            Worker& w = *workers_.at(worker_name(*config));
            log_->info("pipeline file {} added: pipeline {} goes to worker {}", file.string(), config->app_id, w.status.name);
            if (w.status.pid > 0) {  // the shared worker: restarted with the new file
                ask_to_stop(w, "a pipeline joins it", true);
            } else if (state_of(w) != "stopping") {
                spawn(w);
            }
            continue;
        }
        if (auto st = ensure_embedded_broker(*config); !st) log_->error("{}", st.error());
        {
            std::lock_guard lock(mu_);
            owner->files[file] = sha1;
        }
        if (take_settings(*owner, *config) && owner->status.pid > 0 && state_of(*owner) == "running") {
            log_->info("pipeline file {} changed its limits: worker {} restarts with them", file.string(), owner->status.name);
            ask_to_stop(*owner, "its limits changed", true);
            continue;
        }
        if (const auto state = state_of(*owner); state == "failed" || state == "stopped") {
            log_->info("pipeline file {} changed: starting worker {} again", file.string(), owner->status.name);
            owner->policy = std::make_unique<RestartPolicy>(config->worker_restart);
            owner->restart = config->worker_restart;
            spawn(*owner);
        } else if (owner->status.pid > 0 && state == "running") {
            log_->info("pipeline file {} changed: worker {} reloads it", file.string(), owner->status.name);
            ::kill(owner->status.pid, SIGHUP);
        }
        // starting or restarting: it reads the file as it is when it starts
    }
}

void Supervisor::restart_failed(const std::string& why) {
    for (auto& [name, w] : workers_)
        if (const auto state = state_of(*w); state == "failed" || state == "stopped") {
            log_->info("{}: starting worker {} again", why, name);
            w->policy = std::make_unique<RestartPolicy>(w->restart);
            spawn(*w);
        }
}

void Supervisor::forward(int sig) {
    for (auto& [name, w] : workers_)
        if (const auto state = state_of(*w); w->status.pid > 0 && (state == "running" || state == "starting"))
            ::kill(w->status.pid, sig);
}

int Supervisor::stop(const std::string& why) {
    notify_stopping("stopping: " + why);
    log_->info("{}: stopping every worker", why);
    std::chrono::milliseconds budget{0};
    for (auto& [name, w] : workers_) {
        budget = std::max(budget, w->shutdown_timeout);
        if (w->status.pid > 0) {
            // A worker stopping already (its file removed) was sent SIGTERM: a second one would tell its host to
            // exit at once, without a clean stop.
            if (state_of(*w) != "stopping") {
                ::kill(w->status.pid, SIGTERM);
                set_state(*w, "stopping", "the supervisor stops");
            }
        } else {
            set_state(*w, "stopped", "the supervisor stops");
        }
    }
    watcher_.reset();
    const auto deadline = Clock::now() + budget + std::chrono::seconds(3);
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
    bool unclean = false, killed = false;
    auto alive = [&] {
        for (auto& [name, w] : workers_)
            if (w->status.pid > 0) return true;
        return false;
    };
    auto kill_all = [&](const std::string& why) {
        log_->critical("{}: killing the workers that are left", why);
        for (auto& [name, w] : workers_)
            if (w->status.pid > 0) ::kill(w->status.pid, SIGKILL);
        unclean = killed = true;
    };
    for (;;) {
        for (;;) {  // reaped here, not in on_exit: nothing restarts now
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            for (auto& [name, w] : workers_)
                if (w->status.pid == pid) {
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) unclean = true;
                    log_->info("worker {} stopped ({})", name, describe_exit(status));
                    std::lock_guard lock(mu_);
                    w->status.pid = -1;
                    w->status.last_exit = describe_exit(status);
                    w->status.state = "stopped";
                }
        }
        if (!alive()) break;
        timespec tick{0, 100'000'000};
        const int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) kill_all(std::string("second ") + strsignal(sig));
        else if (Clock::now() > deadline && !killed)
            kill_all("the workers did not stop within shutdown_timeout");
    }
    if (admin_) admin_->stop();
    log_->info("stopped");
    return unclean ? 1 : 0;
}

int Supervisor::run() {
    const auto& given = options_.host.files;
    if (given.size() == 1 && std::filesystem::is_directory(given.front()))
        dir_ = std::filesystem::absolute(given.front()).lexically_normal();
    const auto files = pipeline_files(dir_, given);
    log_->info("supervisor (pid {}): {} pipeline file(s){}; each pipeline runs in a worker process of its own",
               ::getpid(), files.size(), dir_ ? " in " + dir_->string() + ", watched" : "");
    for (const auto& file : files) {
        auto config = load_with_overrides(file, options_.host);
        Status adopted = config ? adopt(file, *config, file_sha1(file)) : Status(make_error(config.error()));
        if (!adopted) {
            log_->error("{}; not started, the others are", adopted.error());
            refused_[file] = {file_sha1(file), adopted.error()};
        }
    }
    if (workers_.empty() && !dir_) {
        log_->error("no pipeline could be started");
        return 1;
    }
    for (auto& [name, w] : workers_) spawn(*w);

    if (options_.host.watch) {
        std::vector<std::filesystem::path> dirs;
        std::function<bool(const std::string&)> matches = FileWatcher::suffix(".yaml");
        if (dir_) {
            dirs.push_back(*dir_);
        } else {
            std::set<std::string> names;
            for (const auto& f : files) {
                names.insert(f.filename().string());
                if (std::find(dirs.begin(), dirs.end(), f.parent_path()) == dirs.end()) dirs.push_back(f.parent_path());
            }
            matches = [names](const std::string& name) { return names.count(name) > 0; };
        }
        auto watcher = FileWatcher::start(dirs, matches, std::chrono::milliseconds(300), [this] { files_changed_ = true; });
        if (!watcher) log_->warn("{}; pipeline files are read again on SIGHUP only", watcher.error());
        else watcher_ = std::move(*watcher);
    }
    if (options_.host.admin_listen) {
        SupervisorAdmin admin;
        admin.workers = [this] { return snapshot(); };
        admin.reload_files = [this] { files_changed_ = true; };
        auto server = HttpServer::start(*options_.host.admin_listen, options_.host.admin_token, HttpLimits{},
                                        [admin, extra = options_.host.extra_admin_routes](const HttpRequest& r) {
                                            if (extra)
                                                if (auto answer = extra(r)) return *answer;
                                            return handle_supervisor_request(admin, r);
                                        });
        if (!server) {
            log_->error("{} (use --admin HOST:PORT to choose another, or --admin off)", server.error());
            (void)stop("the admin API cannot start");
            return 1;
        }
        admin_ = std::move(*server);
        log_->info("admin API on http://{}/ (health, ready, workers, and every worker's metrics, agents, pipelines, "
                   "plugins, tables, reloads){}",
                   admin_->address(), options_.host.admin_token.empty() ? "" : "; a bearer token is required");
    }

    const auto serving = [this] { return "supervising " + std::to_string(workers_.size()) + " pipeline worker(s)"; };
    notify_ready(serving());
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
    for (;;) {
        timespec tick{0, 100'000'000};
        const int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) return stop(std::string("received ") + strsignal(sig));
        if (sig == SIGHUP) {
            log_->info("SIGHUP: every worker reloads its files and plugins; failed pipelines start again");
            notify_reloading("reloading pipeline files and plugins (SIGHUP)");
            forward(SIGHUP);  // a starting worker has it pending until it can take it
            sync_files();
            restart_failed("SIGHUP");
            notify_ready(serving());
        }
        reap();
        if (files_changed_.exchange(false)) sync_files();
        const auto now = Clock::now();
        for (auto& [name, w] : workers_) {
            if (state_of(*w) == "restarting" && now >= w->restart_at) spawn(*w);
            watch_for_hang(*w);
            if (state_of(*w) == "stopping" && w->status.pid > 0 && now > w->stop_deadline) {
                log_->error("worker {} did not stop within its shutdown_timeout; killing it", name);
                ::kill(w->status.pid, SIGKILL);
                w->stop_deadline = now + std::chrono::hours(1);
            }
        }
    }
}

}  // namespace supervisor_detail

int run_supervisor(const RunOptions& options) {
    // Signals are taken with sigtimedwait by the main thread, which forks the workers (PR_SET_PDEATHSIG follows
    // the thread that forked): blocked before any other thread starts, so that none of them gets one.
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    supervisor_detail::Supervisor supervisor(options);
    return supervisor.run();
}

}  // namespace mephisto
