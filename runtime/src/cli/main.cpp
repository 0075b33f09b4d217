// mephisto: the command-line entry point. Each subcommand lives in its own file (cli/*.cpp).
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <mephisto/mephisto.h>

#include "cli/commands.hpp"
#include "common/crash_report.hpp"
#include "common/duration.hpp"
#include "common/logging.hpp"
#include "config/broker_address.hpp"
#include "admin/json_reply.hpp"
#include "deploy/deployment_follower.hpp"
#include "host/host.hpp"
#include "supervisor/supervisor.hpp"

int main(int argc, char** argv) {
    using namespace mephisto;
    CLI::App app{"Mephisto: stream processing with C and C++ plugin agents on Kafka", "mephisto"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("mephisto ") + MEPHISTO_VERSION + " (plugin ABI " +
                                          std::to_string(MPH_ABI_VERSION_MAJOR) + "." +
                                          std::to_string(MPH_ABI_VERSION_MINOR) + ")");
    std::string log_format = "text", log_level = "info";
    app.add_option("--log-format", log_format, "Log format: text or json (JSON lines)")
        ->check(CLI::IsMember({"text", "json"}));
    app.add_option("--log-level", log_level, "Log level: trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    std::string log_file;
    app.add_option("--log-file", log_file, "Also append the log to this file (crash reports included)");

    HostOptions run_options;
    std::vector<std::string> run_files;
    auto* run = app.add_subcommand("run", "Run the pipelines declared in YAML files until SIGINT/SIGTERM");
    run->add_option("files", run_files, "Pipeline YAML files, or one directory of them (watched)")
        ->required()
        ->check(CLI::ExistingPath);
    std::string run_broker, run_plugin_dir, run_state_dir;
    run->add_option("--broker", run_broker, "Override the broker: embedded or kafka://host:port[,host:port]");
    run->add_option("--state-dir", run_state_dir, "Override the state directory of tables");
    run->add_option("--plugin-dir", run_plugin_dir, "Override the plugin directory")->check(CLI::ExistingDirectory);
    std::string run_admin = "127.0.0.1:6066", run_admin_token;
    run->add_option("--admin", run_admin, "Admin HTTP API address HOST:PORT, or off (default 127.0.0.1:6066)");
    run->add_option("--admin-token", run_admin_token, "Require this bearer token on the admin API")
        ->envname("MEPHISTO_ADMIN_TOKEN");
    run->add_option("--host-id", run_options.host_id,
                    "This host's id in the cluster view (default: <hostname>-<pid>-<random>, new at every start)");
    run->add_option("--advertise-admin", run_options.advertised_admin,
                    "The admin URL the other hosts use to reach this one, http://IP:PORT (default: the --admin "
                    "address; give it when that is 0.0.0.0 or not reachable from them)");
    bool run_no_watch = false;
    std::string run_deployments, run_trust;
    run->add_flag("--no-watch", run_no_watch, "Do not reload plugins and pipeline files when they change (SIGHUP and POST /reload still do)");
    run->add_option("--deployments", run_deployments,
                    "Follow the deployments topic on this broker and apply what is deployed to the directory run "
                    "(mephisto deploy); needs --trust");
    run->add_option("--trust", run_trust, "The public key deployments must be signed by (deploy keygen)")
        ->check(CLI::ExistingFile);
    std::string run_isolation;
    run->add_option("--isolation", run_isolation,
                    "process: each pipeline in a worker process of its own; none: all in this process "
                    "(default: each file's isolation, else process for a directory or several files)")
        ->check(CLI::IsMember({"process", "none"}));

    // A worker process, started by the supervisor of `run` (not by hand: it needs the supervisor's channel).
    HostOptions worker_options;
    std::vector<std::string> worker_files;
    std::string worker_broker, worker_plugin_dir, worker_state_dir, worker_embedded;
    bool worker_no_watch = false;
    pid_t worker_parent = 0;
    auto* worker = app.add_subcommand("worker", "");
    worker->group("");  // hidden from --help
    worker->add_option("files", worker_files)->required();
    worker->add_option("--parent-pid", worker_parent)->required();
    worker->add_option("--embedded-broker", worker_embedded);
    worker->add_option("--broker", worker_broker);
    worker->add_option("--plugin-dir", worker_plugin_dir);
    worker->add_option("--state-dir", worker_state_dir);
    worker->add_flag("--no-watch", worker_no_watch);
    worker->add_option("--host-id", worker_options.host_id);
    worker->add_option("--advertise-admin", worker_options.advertised_admin);
    std::string worker_dir;
    worker->add_option("--worker-dir", worker_dir)->required();

    std::vector<std::string> validate_files;
    std::string validate_plugin_dir;
    auto* validate = app.add_subcommand("validate", "Check YAML files and the plugins they name, then exit");
    validate->add_option("files", validate_files, "Pipeline YAML files")->required();
    validate->add_option("--plugin-dir", validate_plugin_dir, "Override the plugin directory");

    cli::SendOptions send_options;
    const char* env_broker = std::getenv("MEPHISTO_BROKER");
    send_options.broker = env_broker && *env_broker ? env_broker : "127.0.0.1:9092";
    auto* send = app.add_subcommand("send", "Send a value (or one per line of stdin) to a topic");
    send->add_option("topic", send_options.topic, "Topic name")->required();
    send->add_option("value", send_options.value, "The value; without it, each line of stdin is one value");
    send->add_option("-k,--key", send_options.key, "Message key");
    send->add_option("-H,--header", send_options.headers, "Header name=value (repeatable)");
    send->add_option("-p,--partition", send_options.partition, "Partition (default: by key)");
    send->add_option("-b,--broker", send_options.broker, "Bootstrap servers (default: $MEPHISTO_BROKER or 127.0.0.1:9092)");

    cli::AskOptions ask_options;
    ask_options.broker = send_options.broker;
    std::string ask_timeout = "5s";
    auto* ask = app.add_subcommand("ask", "Ask the agent reading TOPIC about VALUE and print its reply (Faust's agent.ask)");
    ask->add_option("topic", ask_options.topic, "The topic the agent reads")->required();
    ask->add_option("value", ask_options.value, "The request")->required();
    ask->add_option("-k,--key", ask_options.key, "Message key (it picks the partition, so the host that answers)");
    ask->add_option("-t,--timeout", ask_timeout, "How long to wait for the reply (default 5s)");
    ask->add_option("-b,--broker", ask_options.broker, "Bootstrap servers (default: $MEPHISTO_BROKER or 127.0.0.1:9092)");

    auto* plugin = app.add_subcommand("plugin", "Work with plugin files");
    plugin->require_subcommand(1);
    std::string inspect_file;
    bool inspect_json = false;
    auto* inspect = plugin->add_subcommand("inspect", "Show a plugin's ABI version, agents and params");
    inspect->add_option("file", inspect_file, "The plugin .so")->required();
    inspect->add_flag("--json", inspect_json, "Print JSON");
    cli::PluginNewOptions new_options;
    auto* plugin_new = plugin->add_subcommand("new", "Make a plugin project that builds against the installed SDK");
    plugin_new->add_option("name", new_options.name, "The plugin's name (lower-case letters, digits, '_')")->required();
    plugin_new->add_option("--lang", new_options.lang, "c or cpp (default cpp)")->check(CLI::IsMember({"c", "cpp"}));
    plugin_new->add_option("--dir", new_options.dir, "Where to make it (default ./NAME; must not exist)");

    cli::BrokerOptions broker_options;
    auto* broker = app.add_subcommand("broker", "Run a standalone embedded broker (librdkafka mock cluster)");
    broker->add_option("-p,--port", broker_options.port, "Port of the first broker (0: any free port)")
        ->check(CLI::Range(0, 65535));
    broker->add_option("--brokers", broker_options.brokers, "Number of brokers")->check(CLI::Range(1, 16));
    broker->add_option("--address", broker_options.address,
                       "IPv4 address to listen on and advertise (default 127.0.0.1; one of this machine's)");
    broker->add_option("-t,--topic", broker_options.topics, "Create a topic: NAME or NAME:PARTITIONS (repeatable)");

    cli::TableOptions table_options;
    std::string table_state_dir, table_name, table_key;
    auto add_table_options = [&](CLI::App* cmd) {
        cmd->add_option("file", table_options.file, "The pipeline YAML")->required()->check(CLI::ExistingFile);
        cmd->add_option("--state-dir", table_state_dir, "Override the file's state_dir");
    };
    auto* tables = app.add_subcommand("tables", "List a pipeline's tables and their local state (host stopped)");
    add_table_options(tables);
    auto* table = app.add_subcommand("table", "Read a table's local store (host stopped)");
    table->require_subcommand(1);
    auto* table_get = table->add_subcommand(
        "get", "Print the value of KEY: from a stopped host's store (FILE TABLE KEY), or from a running cluster, "
               "whichever host holds the key (--admin HOST:PORT TABLE KEY)");
    std::vector<std::string> table_get_args;
    table_get->add_option("args", table_get_args, "FILE TABLE KEY, or TABLE KEY with --admin")->expected(2, 3)->required();
    table_get->add_option("--state-dir", table_state_dir, "Override the file's state_dir");
    cli::AdminOptions table_get_admin;
    table_get_admin.address.clear();
    table_get->add_option("--admin", table_get_admin.address, "Ask the running host at HOST:PORT (any host of a cluster)");
    table_get->add_option("--admin-token", table_get_admin.token, "Bearer token")->envname("MEPHISTO_ADMIN_TOKEN");
    bool table_get_stale = false;
    table_get->add_flag("--stale", table_get_stale,
                        "With --admin: a standby replica may answer (?stale=ok); its host and lag go to stderr");
    auto* table_dump = table->add_subcommand("dump", "Print every entry as a JSON line");
    add_table_options(table_dump);
    table_dump->add_option("table", table_name, "Table name")->required();
    auto* reset = app.add_subcommand("reset", "Wipe a table's local state on purpose (rebuilt from its changelog)");
    add_table_options(reset);
    reset->add_option("--table", table_name, "Table name")->required();

    cli::AdminOptions admin_options;
    auto add_admin_options = [&](CLI::App* cmd) {
        cmd->add_option("--admin", admin_options.address, "The host's admin API (default 127.0.0.1:6066)");
        cmd->add_option("--admin-token", admin_options.token, "Bearer token")->envname("MEPHISTO_ADMIN_TOKEN");
        cmd->add_flag("--json", admin_options.json, "Print JSON");
    };
    auto* status = app.add_subcommand("status", "Health, readiness and partitions of a running host; under a supervisor, its workers too (PID, restarts, last exit)");
    add_admin_options(status);
    bool status_cluster = false;
    status->add_flag("--cluster", status_cluster,
                     "Every host of this host's pipelines (GET /cluster): admin URL, partitions held, last heartbeat");
    auto* agents = app.add_subcommand("agents", "The agents of a running host and their counters");
    add_admin_options(agents);
    cli::DeployOptions deploy_options;
    std::string deploy_broker = "127.0.0.1:9092";
    auto add_deploy_options = [&](CLI::App* cmd, bool signs) {
        cmd->add_option("-b,--broker", deploy_broker, "Bootstrap servers of the deployments topic")->envname("MEPHISTO_BROKER");
        if (signs) cmd->add_option("--key", deploy_options.key, "The secret key that signs it (deploy keygen)")->required();
    };
    auto* deploy = app.add_subcommand("deploy", "Deploy a pipeline file and its plugins to every host following the "
                                                "deployments topic (mephisto run DIR --deployments BROKER --trust KEY.pub)");
    deploy->add_option("file", deploy_options.file, "The pipeline file")->check(CLI::ExistingFile);
    deploy->add_option("plugins", deploy_options.plugins, "Plugins it ships (into plugins.d/NAME/ on every host)")
        ->check(CLI::ExistingFile);
    deploy->add_option("--name", deploy_options.name, "The pipeline's name (default: the file's name without .yaml)");
    add_deploy_options(deploy, false);
    deploy->add_option("--key", deploy_options.key, "The secret key that signs it (deploy keygen)");
    deploy->add_flag("--print", deploy_options.print,
                     "Publish the plugins' chunks, and print the signed manifest instead of publishing it: the body of "
                     "PUT /pipelines/NAME on any host's admin API");
    std::string keygen_secret, keygen_public;
    auto* keygen = deploy->add_subcommand("keygen", "Make an Ed25519 key pair for signing deployments");
    keygen->add_option("--secret", keygen_secret, "Where to write the secret key")->required();
    keygen->add_option("--public", keygen_public, "Where to write the public key")->required();
    auto* undeploy = app.add_subcommand("undeploy", "Stop and remove a deployed pipeline on every host");
    undeploy->add_option("name", deploy_options.name, "The pipeline's name")->required();
    add_deploy_options(undeploy, true);
    auto* deployments = app.add_subcommand("deployments", "What is deployed, and what each host applied and refused");
    add_deploy_options(deployments, false);
    deployments->add_flag("--json", deploy_options.json, "Print JSON");

    auto* reload = app.add_subcommand("reload", "Reload the changed plugins of a running host now");
    add_admin_options(reload);
    cli::TopOptions top_options;
    auto* top = app.add_subcommand("top", "A live view of a running host (or its cluster): pipelines, agents, events/s, "
                                          "lag, restarts; keys e l r n sort, q quits");
    add_admin_options(top);
    top->add_option("--sort", top_options.sort, "Sort by events (events/s), lag, restarts or name")
        ->check(CLI::IsMember({"events", "lag", "restarts", "name"}));
    top->add_flag("--cluster", top_options.cluster, "Every host of the host's cluster view");
    top->add_flag("--once", top_options.once, "Print one view and exit");

    // The subcommand chosen, run once the command line parsed and logging is set up.
    auto run_command = [&]() -> int {
        // send and ask take the broker as `mephisto run --broker` and the pipeline file do: kafka://a:9092;b:9092
        // or a bare host:port list.
        for (auto [command, address] : {std::pair{send, &send_options.broker}, std::pair{ask, &ask_options.broker}}) {
            if (!*command) continue;
            auto servers = bootstrap_servers(*address);
            if (!servers) {
                std::cerr << command->get_name() << ": --broker must be host:port[,host:port] or kafka://host:port, found '"
                          << *address << "'\n";
                return 2;
            }
            *address = *servers;
        }

        if (*deploy || *undeploy || *deployments) {
            auto servers = bootstrap_servers(deploy_broker);
            if (!servers) {
                std::cerr << "--broker must be host:port[,host:port] or kafka://host:port, found '" << deploy_broker << "'\n";
                return 2;
            }
            deploy_options.broker = *servers;
            if (*keygen) return cli::deploy_keygen(keygen_secret, keygen_public);
            if (*undeploy) return cli::undeploy(deploy_options);
            if (*deployments) return cli::deployments(deploy_options);
            if (deploy_options.file.empty() || deploy_options.key.empty()) {
                std::cerr << "deploy: FILE and --key are required\n";
                return 2;
            }
            return cli::deploy(deploy_options);
        }
        if (*run) {
            for (const auto& f : run_files) run_options.files.emplace_back(f);
            if (!run_broker.empty()) run_options.broker = run_broker;
            if (!run_plugin_dir.empty()) run_options.plugin_dir = run_plugin_dir;
            if (!run_state_dir.empty()) run_options.state_dir = run_state_dir;
            if (run_admin != "off") run_options.admin_listen = run_admin;
            run_options.admin_token = run_admin_token;
            run_options.watch = !run_no_watch;
            RunOptions options;
            options.host = run_options;
            if (run_isolation == "process") options.isolation = Isolation::process;
            if (run_isolation == "none") options.isolation = Isolation::none;
            options.worker_log_args = {"--log-format", log_format, "--log-level", log_level};
            if (!log_file.empty())
                options.worker_log_args.insert(options.worker_log_args.end(),
                                               {"--log-file", std::filesystem::absolute(log_file).string()});
            // Deployments: files written into the directory, which the host's or supervisor's watchers pick up.
            std::unique_ptr<DeploymentFollower> following;
            if (!run_deployments.empty()) {
                auto servers = bootstrap_servers(run_deployments);
                if (!servers || run_trust.empty() || run_files.size() != 1 ||
                    !std::filesystem::is_directory(run_files.front())) {
                    std::cerr << "run: --deployments takes a broker (host:port or kafka://host:port), needs --trust "
                                 "KEY.pub, and applies deployments to the one directory run\n";
                    return 2;
                }
                auto trusted = read_public_key(run_trust);
                if (!trusted) {
                    std::cerr << "run: --trust: " << trusted.error() << "\n";
                    return 2;
                }
                DeploymentFollowerOptions d;
                d.bootstrap = *servers;
                d.dir = std::filesystem::absolute(run_files.front()).lexically_normal();
                d.trusted = *trusted;
                d.host_id = run_options.host_id.empty() ? generated_host_id() : run_options.host_id;
                d.log = logger("deployments");
                auto follower = DeploymentFollower::start(std::move(d));
                if (!follower) {
                    logger("deployments")->error("{}", follower.error());
                    return 1;
                }
                following = std::move(*follower);
                // PUT /pipelines/NAME: a manifest signed elsewhere, published for every host (this one too).
                options.host.extra_admin_routes = [f = following.get()](const HttpRequest& r) -> std::optional<HttpResponse> {
                    if (r.method != "PUT" || r.path.rfind("/pipelines/", 0) != 0) return std::nullopt;
                    const std::string name = r.path.substr(11);
                    auto version = f->publish(name, r.body);
                    if (!version) return json_error(422, "deployment of " + name + " refused: " + version.error());
                    return json_reply(202, {{"pipeline", name}, {"version", *version}, {"published", true}});
                };
            }
            return run_pipelines(options);
        }
        if (*worker) {
            for (const auto& f : worker_files) worker_options.files.emplace_back(f);
            if (!worker_broker.empty()) worker_options.broker = worker_broker;
            if (!worker_plugin_dir.empty()) worker_options.plugin_dir = worker_plugin_dir;
            if (!worker_state_dir.empty()) worker_options.state_dir = worker_state_dir;
            worker_options.watch = !worker_no_watch;
            return run_worker(worker_options, worker_parent, worker_embedded, worker_dir);
        }
        if (*validate) {
            std::vector<std::filesystem::path> files(validate_files.begin(), validate_files.end());
            std::optional<std::filesystem::path> dir;
            if (!validate_plugin_dir.empty()) dir = validate_plugin_dir;
            return cli::validate(files, dir);
        }
        if (*send) return cli::send(send_options);
        if (*ask) {
            auto timeout = parse_duration(ask_timeout);
            if (!timeout || timeout->count() <= 0) {
                std::cerr << "ask: --timeout '" << ask_timeout << "' is not a positive duration (e.g. 500ms, 5s)\n";
                return 2;
            }
            ask_options.timeout = *timeout;
            return cli::ask(ask_options);
        }
        if (*inspect) return cli::inspect_plugin(inspect_file, inspect_json);
        if (*plugin_new) return cli::plugin_new(new_options);
        if (*broker) return cli::broker(broker_options);
        if (!table_state_dir.empty()) table_options.state_dir = table_state_dir;
        if (*tables) return cli::list_tables(table_options);
        if (*table_get) {
            if (!table_get_admin.address.empty()) {
                if (table_get_args.size() != 2) {
                    std::cerr << "table get --admin HOST:PORT TABLE KEY: no pipeline file with --admin\n";
                    return 2;
                }
                return cli::table_get_remote(table_get_admin, table_get_args[0], table_get_args[1], table_get_stale);
            }
            if (table_get_args.size() != 3) {
                std::cerr << "table get FILE TABLE KEY (or --admin HOST:PORT TABLE KEY)\n";
                return 2;
            }
            table_options.file = table_get_args[0];
            if (!std::filesystem::is_regular_file(table_options.file)) {
                std::cerr << "table get: " << table_options.file.string() << ": no such file\n";
                return 2;
            }
            return cli::table_get(table_options, table_get_args[1], table_get_args[2]);
        }
        if (*table_dump) return cli::table_dump(table_options, table_name);
        if (*reset) return cli::reset_table(table_options, table_name);
        if (*status) return status_cluster ? cli::cluster_status(admin_options) : cli::status(admin_options);
        if (*agents) return cli::agents(admin_options);
        if (*reload) return cli::reload(admin_options);
        if (*top) {
            top_options.admin = admin_options;
            return cli::top(top_options);
        }
        return 0;
    };

    CLI11_PARSE(app, argc, argv);
    setup_logging(log_format == "json" ? LogFormat::json : LogFormat::text, spdlog::level::from_str(log_level));
    // From here on a fatal signal or an exit nobody asked for (a plugin's) is reported, never silent.
    crash_report::install(log_format == "json");
    if (!log_file.empty()) {
        auto fd = add_log_file(log_file);
        if (!fd) {
            std::cerr << fd.error() << "\n";
            crash_report::allow_exit();
            return 2;
        }
        crash_report::set_log_fd(*fd);
    }
    const int code = run_command();
    crash_report::allow_exit();
    return code;
}
