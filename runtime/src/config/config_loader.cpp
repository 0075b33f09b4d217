// Loads a pipeline YAML file into a validated PipelineConfig. One error per failure, naming file, line and
// column and what was expected (RELIABILITY.md 38). yaml-cpp throws; those exceptions stop at this file's
// edge and become a Result.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/broker_address.hpp"
#include "config/config.hpp"

#include "common/byte_size.hpp"
#include "config/yaml_reader.hpp"

#include "common/cron.hpp"
#include "common/trusted_path.hpp"

namespace mephisto {

namespace {

using yaml_reader::ConfigFailure;
using yaml_reader::Reader;

const std::vector<std::pair<std::string, Codec>> kCodecs = {{"raw", Codec::raw}, {"bytes", Codec::raw},
                                                            {"json", Codec::json}};

// {plugin: P, <item_key>: NAME}: a codec or an aggregator a plugin provides.
PluginItemRef read_plugin_item(const Reader& r, const YAML::Node& n, const std::string& what,
                               const std::string& item_key) {
    PluginItemRef ref;
    ref.mark = r.mark_of(n);
    for (auto& [key, v] : r.entries(n, what, {"plugin", item_key})) {
        if (key == "plugin") ref.plugin = r.name(v, what + ".plugin");
        else ref.name = r.string(v, what + "." + item_key);
    }
    if (ref.plugin.empty() || ref.name.empty()) r.fail(n, what + " needs both plugin and " + item_key);
    return ref;
}

// warm_up: true | false | {acceptable_lag: RECORDS, timeout: DURATION}
WarmUpSpec read_warm_up(const Reader& r, const YAML::Node& n) {
    WarmUpSpec w;
    if (!n.IsMap()) {
        w.enabled = r.boolean(n, "warm_up (true, false, or a mapping of acceptable_lag and timeout)");
        return w;
    }
    w.enabled = true;
    for (auto& [key, v] : r.entries(n, "warm_up", {"acceptable_lag", "timeout"})) {
        if (key == "acceptable_lag") w.acceptable_lag = r.integer(v, "warm_up.acceptable_lag", 0, 1'000'000'000'000);
        else w.timeout = r.duration(v, "warm_up.timeout");
    }
    if (w.timeout.count() <= 0) r.fail(n["timeout"], "warm_up.timeout must be positive");
    return w;
}

// window: {tumbling: 60s | hopping: {size, step} | sliding: {before, after}, grace, expires, relative_to}
WindowSpec read_window(const Reader& r, const YAML::Node& n, const std::string& what) {
    WindowSpec w;
    int kinds = 0;
    bool have_expires = false;
    for (auto& [key, v] : r.entries(n, what, {"tumbling", "hopping", "sliding", "session", "grace", "expires", "relative_to"})) {
        if (key == "tumbling") {
            ++kinds;
            w.kind = WindowKind::tumbling;
            w.size = r.duration(v, what + ".tumbling");
        } else if (key == "hopping") {
            ++kinds;
            w.kind = WindowKind::hopping;
            for (auto& [k2, v2] : r.entries(v, what + ".hopping", {"size", "step"}))
                (k2 == "size" ? w.size : w.step) = r.duration(v2, what + ".hopping." + k2);
            if (w.size.count() <= 0 || w.step.count() <= 0) r.fail(v, what + ".hopping needs size and step");
            if (w.step > w.size) r.fail(v, what + ".hopping.step must not exceed size (windows would leave gaps)");
        } else if (key == "sliding") {
            ++kinds;
            w.kind = WindowKind::sliding;
            for (auto& [k2, v2] : r.entries(v, what + ".sliding", {"before", "after"}))
                (k2 == "before" ? w.before : w.after) = r.duration(v2, what + ".sliding." + k2);
        } else if (key == "session") {
            ++kinds;
            w.kind = WindowKind::session;
            w.gap = r.duration(v, what + ".session");
            if (w.gap.count() <= 0) r.fail(v, what + ".session (the inactivity gap) must be positive");
        } else if (key == "grace") {
            w.grace = r.duration(v, what + ".grace");
        } else if (key == "expires") {
            w.expires = r.duration(v, what + ".expires");
            have_expires = true;
        } else if (v.IsMap()) {
            for (auto& [k2, v2] : r.entries(v, what + ".relative_to", {"field"})) w.time_field = r.string(v2, what + ".relative_to.field");
            w.relative_to = TimeSource::field;
        } else {
            w.relative_to = r.choice<TimeSource>(v, what + ".relative_to", {{"stream", TimeSource::stream}, {"now", TimeSource::now}});
        }
    }
    if (kinds != 1) r.fail(n, what + " needs exactly one of tumbling, hopping, sliding or session");
    if ((w.kind == WindowKind::tumbling || w.kind == WindowKind::hopping) && w.size.count() <= 0)
        r.fail(n, what + ": the window size must be positive");
    // A window closes once stream time passes its end by the grace period (a session: by its gap too, since
    // until then an event may still extend it); it is removed `expires` after its end, never before it closed.
    const Millis closes_after = w.grace + (w.kind == WindowKind::session ? w.gap : Millis(0));
    if (!have_expires) w.expires = closes_after;  // removed as soon as it closes
    if (w.expires < closes_after)
        r.fail(n, what + ".expires must be at least " +
                      (w.kind == WindowKind::session ? std::string("the gap plus the grace period") : "the grace period") +
                      " (a window is removed only after it closes)");
    return w;
}

SupervisorSpec read_supervisor(const Reader& r, const YAML::Node& n, const std::string& what) {
    SupervisorSpec s;
    for (auto& [key, v] : r.entries(n, what, {"strategy", "max_restarts", "within", "backoff", "max_backoff"})) {
        if (key == "strategy")
            s.strategy = r.choice<Strategy>(v, what + ".strategy",
                                            {{"one_for_one", Strategy::one_for_one}, {"one_for_all", Strategy::one_for_all}});
        else if (key == "max_restarts") s.max_restarts = static_cast<int>(r.integer(v, what + ".max_restarts", 0, 1'000'000));
        else if (key == "within") s.within = r.duration(v, what + ".within");
        else if (key == "backoff") s.backoff_initial = r.duration(v, what + ".backoff");
        else if (key == "max_backoff") s.backoff_max = r.duration(v, what + ".max_backoff");
    }
    if (s.backoff_max < s.backoff_initial) r.fail(n, what + ": max_backoff must not be shorter than backoff");
    return s;
}

ErrorPolicy read_error_policy(const Reader& r, const YAML::Node& n, const std::string& what) {
    ErrorPolicy p;
    for (auto& [key, v] : r.entries(n, what, {"retry", "then", "topic", "backoff"})) {
        if (key == "retry") p.retry = static_cast<int>(r.integer(v, what + ".retry", 0, 1000));
        else if (key == "then")
            p.then = r.choice<ThenPolicy>(v, what + ".then",
                                          {{"skip", ThenPolicy::skip}, {"dead_letter", ThenPolicy::dead_letter},
                                           {"crash", ThenPolicy::crash}});
        else if (key == "topic") p.dead_letter_topic = r.name(v, what + ".topic");
        else if (key == "backoff") p.retry_backoff = r.duration(v, what + ".backoff");
    }
    if (!p.dead_letter_topic.empty() && p.then != ThenPolicy::dead_letter)
        r.fail(n, what + ": topic is only meaningful with then: dead_letter");
    return p;
}

void read_broker(const Reader& r, const YAML::Node& n, BrokerSpec& b) {
    if (n.IsScalar()) {
        std::string s = n.Scalar();
        if (s == "embedded") return;
        auto servers = bootstrap_servers(s);
        if (!servers)
            r.fail(n, "broker must be 'embedded' or 'kafka://host:port[,host:port]', found '" + n.Scalar() + "'");
        b.embedded = false;
        b.bootstrap = *servers;
        return;
    }
    auto items = r.entries(n, "broker", {"embedded", "bootstrap", "properties"});
    bool have_embedded = false, have_bootstrap = false;
    for (auto& [key, v] : items) {
        if (key == "embedded") {
            have_embedded = true;
            for (auto& [k2, v2] : r.entries(v, "broker.embedded", {"port", "brokers"})) {
                if (k2 == "port") b.embedded_port = static_cast<int>(r.integer(v2, "broker.embedded.port", 0, 65535));
                else b.embedded_brokers = static_cast<int>(r.integer(v2, "broker.embedded.brokers", 1, 16));
            }
        } else if (key == "bootstrap") {
            have_bootstrap = true;
            b.embedded = false;
            b.bootstrap = r.string(v, "broker.bootstrap");
        } else {
            b.properties = r.scalar_map(v, "broker.properties");
        }
    }
    if (have_embedded == have_bootstrap) r.fail(n, "broker must have exactly one of 'embedded' or 'bootstrap'");
}

PipelineConfig read_pipeline(const Reader& r, const YAML::Node& root, const std::filesystem::path& base_dir,
                             const std::optional<std::filesystem::path>& plugin_dir_override) {
    PipelineConfig c;
    c.file = r.file();
    c.plugin_dir = base_dir / "plugins.d";
    if (root.IsNull()) r.fail(root, "the file is empty: expected a pipeline with app, topics and agents");
    auto top = r.entries(root, "the pipeline",
                         {"app", "broker", "processing_guarantee", "plugins", "state_dir", "commit_interval",
                          "shutdown_timeout", "workers", "consumer", "producer", "topics", "channels", "tables", "agents",
                          "timers", "hung_callback_after", "broker_unreachable_timeout", "isolation", "supervisor",
                          "callback_timeout", "limits", "standby_replicas", "static_membership", "warm_up"});
    YAML::Node topics_node, tables_node, agents_node, timers_node, state_node, channels_node;
    bool have_state_dir = false;  // (a default-constructed YAML::Node converts to true)
    bool have_app = false;
    for (auto& [key, v] : top) {
        if (key == "app") {
            have_app = true;
            if (v.IsScalar()) {
                c.app_id = r.name(v, "app");
            } else {
                bool have_id = false;
                for (auto& [k2, v2] : r.entries(v, "app", {"id", "version"})) {
                    if (k2 == "id") { c.app_id = r.name(v2, "app.id"); have_id = true; }
                    else c.app_version = static_cast<int>(r.integer(v2, "app.version", 0, 1'000'000));
                }
                if (!have_id) r.fail(v, "app needs an id (the consumer group id), e.g. app: {id: my_app}");
            }
        } else if (key == "broker") {
            read_broker(r, v, c.broker);
        } else if (key == "processing_guarantee") {
            auto g = r.choice<int>(v, "processing_guarantee", {{"at_least_once", 0}, {"exactly_once", 1}});
            if (g == 1) r.fail(v, "processing_guarantee: exactly_once is not supported by this version yet; use at_least_once");
        } else if (key == "plugins") {
            for (auto& [k2, v2] : r.entries(v, "plugins", {"dir", "load_timeout"})) {
                if (k2 == "load_timeout") {
                    c.plugin_load_timeout = r.duration(v2, "plugins.load_timeout");
                    if (c.plugin_load_timeout.count() < 1) r.fail(v2, "plugins.load_timeout must be positive");
                    continue;
                }
                std::filesystem::path dir = r.string(v2, "plugins.dir");
                c.plugin_dir = dir.is_absolute() ? dir : base_dir / dir;
            }
        } else if (key == "commit_interval") {
            c.commit_interval = r.duration(v, "commit_interval");
            if (c.commit_interval.count() < 10) r.fail(v, "commit_interval must be at least 10ms");
        } else if (key == "shutdown_timeout") {
            c.shutdown_timeout = r.duration(v, "shutdown_timeout");
        } else if (key == "hung_callback_after") {
            c.hung_callback_after = r.duration(v, "hung_callback_after");
            if (c.hung_callback_after.count() < 1) r.fail(v, "hung_callback_after must be positive");
        } else if (key == "broker_unreachable_timeout") {
            // off (the default): librdkafka reconnects by itself, and a restart would not bring a broker back.
            if (v.IsScalar() && v.Scalar() == "off") c.broker_unreachable_timeout = Millis(0);
            else c.broker_unreachable_timeout = r.duration(v, "broker_unreachable_timeout (or off)");
            if (c.broker_unreachable_timeout.count() < 0) r.fail(v, "broker_unreachable_timeout must be off or positive");
        } else if (key == "isolation") {
            c.isolation = r.choice<Isolation>(v, "isolation", {{"process", Isolation::process}, {"none", Isolation::none}});
        } else if (key == "supervisor") {
            c.worker_restart = read_supervisor(r, v, "supervisor");
            if (v["strategy"]) r.fail(v["strategy"], "supervisor.strategy is for agents; a pipeline's worker restarts alone");
        } else if (key == "callback_timeout") {
            if (v.IsScalar() && v.Scalar() == "off") c.callback_timeout = Millis(0);
            else c.callback_timeout = r.duration(v, "callback_timeout (or off)");
            if (c.callback_timeout.count() < 0) r.fail(v, "callback_timeout must be off or positive");
        } else if (key == "limits") {
            for (auto& [k2, v2] : r.entries(v, "limits", {"memory", "cpu"})) {
                if (k2 == "memory") {
                    if (!v2.IsScalar()) r.fail(v2, "limits.memory must be a size such as 512MiB");
                    auto size = parse_byte_size(v2.Scalar());
                    if (!size) r.fail(v2, "limits.memory: " + size.error());
                    // Below this a worker cannot even start its consumer, producer and store.
                    if (*size < (64ull << 20)) r.fail(v2, "limits.memory must be at least 64MiB");
                    c.memory_limit = *size;
                } else {
                    double cores = 0;
                    try {
                        size_t used = 0;
                        cores = v2.IsScalar() ? std::stod(v2.Scalar(), &used) : 0;
                        if (used != v2.Scalar().size()) cores = 0;
                    } catch (const std::exception&) {
                    }
                    if (!(cores >= 0.01 && cores <= 1024)) r.fail(v2, "limits.cpu must be a number of cores between 0.01 and 1024, such as 0.5");
                    c.cpu_limit = cores;
                }
            }
        } else if (key == "static_membership") {
            c.static_membership = r.boolean(v, "static_membership");
        } else if (key == "warm_up") {
            c.warm_up = read_warm_up(r, v);
        } else if (key == "standby_replicas") {
            c.standby_replicas = static_cast<int>(r.integer(v, "standby_replicas", 0, kMaxStandbyReplicas));
        } else if (key == "workers") {
            c.workers = static_cast<int>(r.integer(v, "workers", 1, 256));
        } else if (key == "consumer") {
            c.consumer_properties = r.scalar_map(v, "consumer");
            // The host revokes and assigns whole assignments (eager rebalancing): leader election, table
            // recovery and the copartitioning check rely on it.
            if (auto it = c.consumer_properties.find("partition.assignment.strategy");
                it != c.consumer_properties.end() && it->second.find("cooperative") != std::string::npos)
                r.fail(v["partition.assignment.strategy"], "consumer.partition.assignment.strategy: cooperative rebalancing "
                       "is not supported; use range or roundrobin");
            // One file serves every host of a cluster, and two members with one instance id fence each other.
            if (c.consumer_properties.count("group.instance.id"))
                r.fail(v["group.instance.id"], "consumer.group.instance.id would be the same on every host that runs "
                       "this file; use static_membership: true (each host joins as <app>-<host id>)");
        } else if (key == "producer") {
            c.producer_properties = r.scalar_map(v, "producer");
        } else if (key == "state_dir") {
            state_node = v;
            have_state_dir = true;
        } else if (key == "topics") {
            topics_node = v;
        } else if (key == "channels") {
            channels_node = v;
        } else if (key == "tables") {
            tables_node = v;
        } else if (key == "agents") {
            agents_node = v;
        } else if (key == "timers") {
            timers_node = v;
        }
    }
    if (!have_app) r.fail(root, "missing 'app': every pipeline needs an app id, e.g. app: {id: my_app}");
    if (plugin_dir_override) c.plugin_dir = std::filesystem::absolute(*plugin_dir_override);
    c.plugin_dir = c.plugin_dir.lexically_normal();

    if (topics_node && !topics_node.IsNull()) {
        for (auto& [name, v] : r.entries(topics_node, "topics")) {
            TopicSpec t;
            t.name = name;
            const std::string what = "topics." + name;
            if (!v.IsNull()) {
                for (auto& [k2, v2] : r.entries(v, what, {"partitions", "key", "value"})) {
                    if (k2 == "partitions") t.partitions = static_cast<int>(r.integer(v2, what + ".partitions", 1, 100'000));
                    else if (k2 == "key") t.key = r.choice<Codec>(v2, what + ".key", kCodecs);
                    else if (v2.IsMap()) {
                        t.value = Codec::plugin;
                        t.value_codec = read_plugin_item(r, v2, what + ".value", "codec");
                    } else {
                        t.value = r.choice<Codec>(v2, what + ".value", kCodecs);
                    }
                }
            }
            c.topics.push_back(t);
        }
    }

    if (channels_node && !channels_node.IsNull()) {
        for (auto& [name, v] : r.entries(channels_node, "channels")) {
            ChannelSpec ch;
            ch.name = name;
            if (!v.IsNull())
                for (auto& [key, setting] : r.entries(v, "channels." + name, {"maxsize"}))
                    ch.maxsize = r.integer(setting, "channels." + name + ".maxsize", 4, 10'000'000);
            const YAML::Node& at = v.IsNull() ? channels_node : v;  // a null value has no useful position
            if (c.topic(name)) r.fail(at, "channels." + name + ": a topic of that name is declared too");
            ch.mark = r.mark_of(at);
            c.channels.push_back(std::move(ch));
        }
    }

    // Faust's default datadir is "<app id>-data" beside the application.
    if (have_state_dir) {
        std::filesystem::path dir = r.string(state_node, "state_dir");
        c.state_dir = dir.is_absolute() ? dir : base_dir / dir;
    } else {
        c.state_dir = base_dir / (c.app_id + "-data");
    }
    c.state_dir = c.state_dir.lexically_normal();

    if (tables_node && !tables_node.IsNull()) {
        for (auto& [name, v] : r.entries(tables_node, "tables")) {
            TableSpec t;
            t.name = name;
            for (char ch : name)
                if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
                    r.fail(v, "table name '" + name + "' may only contain letters, digits, '_', '-' and '.'");
            t.mark = r.mark_of(v);
            t.changelog_topic = c.app_id + "-" + name + "-changelog";
            const std::string what = "tables." + name;
            YAML::Node default_node, standby_node;
            bool have_default = false, have_standby = false;  // (a default-constructed YAML::Node converts to true)
            t.standby_replicas = c.standby_replicas;
            if (!v.IsNull()) {
                for (auto& [k2, v2] : r.entries(v, what, {"store", "value", "default", "partitions", "options", "global", "aggregate", "window",
                                                   "standby_replicas"})) {
                    if (k2 == "store")
                        t.store = r.choice<StoreKind>(v2, what + ".store",
                                                      {{"rocksdb", StoreKind::rocksdb}, {"memory", StoreKind::memory}});
                    else if (k2 == "value" && v2.IsMap()) {
                        t.value = ValueCodec::plugin;
                        t.value_codec = read_plugin_item(r, v2, what + ".value", "codec");
                    } else if (k2 == "aggregate")
                        t.aggregate = read_plugin_item(r, v2, what + ".aggregate", "name");
                    else if (k2 == "value")
                        t.value = r.choice<ValueCodec>(v2, what + ".value",
                                                       {{"raw", ValueCodec::raw}, {"bytes", ValueCodec::raw},
                                                        {"int64", ValueCodec::int64}, {"double", ValueCodec::dbl},
                                                        {"json", ValueCodec::json}});
                    else if (k2 == "default") { default_node = v2; have_default = true; }
                    else if (k2 == "global") t.global = r.boolean(v2, what + ".global");
                    else if (k2 == "standby_replicas") {
                        standby_node = v2;
                        have_standby = true;
                        t.standby_replicas = static_cast<int>(
                            r.integer(v2, what + ".standby_replicas", 0, kMaxStandbyReplicas));
                    }
                    else if (k2 == "window") t.window = read_window(r, v2, what + ".window");
                    else if (k2 == "partitions") t.partitions = static_cast<int>(r.integer(v2, what + ".partitions", 1, 100'000));
                    else t.rocksdb_options = r.scalar_map(v2, what + ".options");
                }
            }
            if (have_default) {
                if (!default_node.IsScalar()) r.fail(default_node, what + ".default must be a single value");
                const std::string& text = default_node.Scalar();
                if (t.value == ValueCodec::int64) {
                    auto n = r.integer(default_node, what + ".default", INT64_MIN, INT64_MAX);
                    std::string enc(8, '\0');
                    for (int i = 0; i < 8; ++i) enc[i] = static_cast<char>((static_cast<uint64_t>(n) >> (56 - 8 * i)) & 0xff);
                    t.default_value = enc;
                } else if (t.value == ValueCodec::dbl) {
                    char* end = nullptr;
                    double d = std::strtod(text.c_str(), &end);
                    if (end == text.c_str() || *end) r.fail(default_node, what + ".default must be a number");
                    uint64_t bits;
                    std::memcpy(&bits, &d, 8);
                    std::string enc(8, '\0');
                    for (int i = 0; i < 8; ++i) enc[i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
                    t.default_value = enc;
                } else {
                    t.default_value = text;
                }
            } else if (t.value == ValueCodec::int64 && t.aggregate.empty()) {
                // Faust's Table(default=int): counters start at 0. (An aggregator, a max say, sees an absent key.)
                t.default_value = std::string(8, '\0');
            }
            if (t.window && t.global) r.fail(v, what + ": a global table cannot be windowed");
            if (t.global) {
                // Every host follows every partition of a global table already.
                if (have_standby && t.standby_replicas > 0)
                    r.fail(standby_node, what + ": a global table is on every host already; standby_replicas does not apply");
                t.standby_replicas = 0;
            }
            if (t.window && t.window->kind == WindowKind::session && !t.aggregate.empty())
                r.fail(v, what + ": session windows merge sessions, and an aggregator cannot combine two aggregates; "
                              "count with int64 (table_add), or keep the latest value (table_put)");
            c.tables.push_back(std::move(t));
        }
    }

    std::set<std::string> agent_names;
    // `channels_too`: a declared channel is accepted where a topic is (an agent's from and sinks).
    auto check_topics = [&](const YAML::Node& node, const std::vector<std::string>& list, const std::string& what,
                            bool channels_too = false) {
        for (size_t i = 0; i < list.size(); ++i)
            if (!c.topic(list[i]) && !(channels_too && c.channel(list[i]))) {
                const YAML::Node at = node.IsSequence() ? node[i] : node;
                r.fail(at, what + " names topic '" + list[i] + "', which is not declared under topics" +
                               (channels_too ? " or channels" : ""));
            }
    };
    auto check_plugin = [&](const YAML::Node& node, const std::string& plugin, const std::string& what) {
        auto file = c.plugin_dir / (plugin + ".so");
        std::error_code ec;
        if (!std::filesystem::is_regular_file(file, ec))
            r.fail(node, what + ": plugin '" + plugin + "' not found: no file " + file.string());
    };

    if (agents_node && !agents_node.IsNull()) {
        for (auto& [name, v] : r.entries(agents_node, "agents")) {
            AgentSpec a;
            a.name = name;
            const std::string what = "agents." + name;
            YAML::Node from_node, sinks_node, plugin_node;
            // A default-constructed YAML::Node is a defined null node, so `!node` cannot tell "absent".
            bool have_agent = false, have_plugin = false, have_from = false;
            YAML::Node tables_ref;
            YAML::Node group_by_node, through_node, echo_node;
            bool have_group_by = false, have_through = false;
            for (auto& [k2, v2] : r.entries(v, what, {"plugin", "agent", "from", "sinks", "tables", "params", "on_error",
                                                       "supervisor", "group_by", "through", "take", "concurrency", "echo",
                                                       "filter", "ack", "isolated_partitions", "on_crash"})) {
                if (k2 == "plugin") { a.plugin = r.name(v2, what + ".plugin"); a.plugin_mark = r.mark_of(v2); plugin_node = v2; have_plugin = true; }
                else if (k2 == "agent") { a.agent = r.name(v2, what + ".agent"); a.agent_mark = r.mark_of(v2); have_agent = true; }
                else if (k2 == "from") { a.from = r.names(v2, what + ".from"); from_node = v2; have_from = true; }
                else if (k2 == "sinks") { a.sinks = r.names(v2, what + ".sinks"); sinks_node = v2; }
                else if (k2 == "tables") { a.tables = r.names(v2, what + ".tables"); tables_ref = v2; }
                else if (k2 == "params") a.params = r.scalar_map(v2, what + ".params");
                else if (k2 == "on_crash") {
                    for (auto& [k3, v3] : r.entries(v2, what + ".on_crash", {"quarantine_after"}))
                        a.quarantine_after = static_cast<int>(r.integer(v3, what + ".on_crash.quarantine_after", 0, 1000));
                }
                else if (k2 == "on_error") a.on_error = read_error_policy(r, v2, what + ".on_error");
                else if (k2 == "supervisor") a.supervisor = read_supervisor(r, v2, what + ".supervisor");
                else if (k2 == "echo") { a.echo = r.names(v2, what + ".echo"); echo_node = v2; }
                else if (k2 == "filter") a.filter = read_plugin_item(r, v2, what + ".filter", "predicate");
                else if (k2 == "ack") {
                    const std::string mode = r.name(v2, what + ".ack");
                    if (mode != "manual" && mode != "auto")
                        r.fail(v2, what + ".ack must be `auto` (an event is done when the callback returns) or `manual` "
                                          "(when the agent acknowledges it), found '" + mode + "'");
                    a.manual_ack = mode == "manual";
                }
                else if (k2 == "isolated_partitions") {
                    // Faust's isolated_partitions=True is how Mephisto always runs: one instance per partition
                    // (per concurrency slot), because tables are sharded by partition. Sharing one instance
                    // across partitions is not offered, so `false` is refused rather than silently ignored.
                    if (!r.boolean(v2, what + ".isolated_partitions"))
                        r.fail(v2, what + ".isolated_partitions: false is not supported: every agent has one instance "
                                          "per assigned partition (its table shards are that partition's); drop the key "
                                          "or set it to true");
                }
                else if (k2 == "concurrency") a.concurrency = static_cast<int>(r.integer(v2, what + ".concurrency", 1, 256));
                else if (k2 == "take") {
                    TakeSpec take;
                    a.take_mark = r.mark_of(v2);
                    for (auto& [k3, v3] : r.entries(v2, what + ".take", {"max", "within"})) {
                        if (k3 == "max") take.max = static_cast<int>(r.integer(v3, what + ".take.max", 1, 100'000));
                        else take.within = r.duration(v3, what + ".take.within");
                    }
                    if (take.within.count() <= 0) r.fail(v2, what + ".take.within must be positive");
                    a.take = take;
                }
                else if (k2 == "group_by") { group_by_node = v2; have_group_by = true; }
                else if (k2 == "through") { through_node = v2; have_through = true; }
            }
            if (!have_plugin) r.fail(v, what + " needs 'plugin' (the plugin file name without .so)");
            if (!have_from) r.fail(v, what + " needs 'from' (the topic it reads)");
            if (!have_agent) { a.agent = a.name; a.agent_mark = a.plugin_mark; }
            check_topics(from_node, a.from, what + ".from", true);
            const bool reads_channel =
                std::any_of(a.from.begin(), a.from.end(), [&](const std::string& t) { return c.channel(t) != nullptr; });
            if (reads_channel) {
                // A channel has no partitions: nothing to shard a table by, nothing to re-key.
                if (a.from.size() != 1)
                    r.fail(from_node, what + ".from: an agent reads one channel, or topics only, not both");
                if (!a.tables.empty()) r.fail(tables_ref, what + ": an agent reading a channel cannot use tables "
                                                         "(a channel has no partitions to shard them by)");
                if (have_group_by || have_through)
                    r.fail(have_group_by ? group_by_node : through_node, what + ": an agent reading a channel cannot be re-keyed");
            }
            for (size_t i = 0; i < a.tables.size(); ++i)
                if (!c.table(a.tables[i]))
                    r.fail(tables_ref.IsSequence() ? tables_ref[i] : tables_ref,
                           what + ".tables names table '" + a.tables[i] + "', which is not declared under tables");
            if (sinks_node) check_topics(sinks_node, a.sinks, what + ".sinks", true);
            if (echo_node) check_topics(echo_node, a.echo, what + ".echo");
            check_plugin(plugin_node, a.plugin, what + ".plugin");
            if (a.on_error.then == ThenPolicy::dead_letter && a.on_error.dead_letter_topic.empty())
                a.on_error.dead_letter_topic = c.app_id + "-" + a.name + "-dead-letter";
            agent_names.insert(name);
            if (have_group_by && have_through) r.fail(through_node, what + ": use either group_by or through, not both");
            if (have_group_by || have_through) {
                // Faust's stream.group_by / through: a host-internal agent re-keys the sources into a
                // repartition topic, and this agent reads that topic instead, so each key meets its table shard.
                AgentSpec re;
                re.name = name + "-repartition";
                re.builtin = "repartition";
                re.from = a.from;
                re.plugin_mark = re.agent_mark = r.mark_of(have_group_by ? group_by_node : through_node);
                // A value without the field is bad input, not a transient failure: the policy applies at once.
                re.on_error = ErrorPolicy{0, a.on_error.then, a.on_error.dead_letter_topic, a.on_error.retry_backoff};
                re.supervisor = a.supervisor;
                std::string label;
                if (have_group_by) {
                    if (group_by_node.IsScalar() && group_by_node.Scalar() == "key") {
                        label = "key";
                        re.params["by"] = "key";
                    } else if (group_by_node.IsMap() && group_by_node["plugin"]) {
                        // A key function the plugin exports (ABI 1.2).
                        re.key_function = read_plugin_item(r, group_by_node, what + ".group_by", "function");
                        label = re.key_function.name;
                        for (char ch : label)
                            if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
                                r.fail(group_by_node, what + ".group_by.function '" + label +
                                                          "' may only contain letters, digits, '_', '-' and '.'");
                        re.params["by"] = "function";
                    } else if (group_by_node.IsMap()) {
                        for (auto& [k3, v3] : r.entries(group_by_node, what + ".group_by", {"field"})) {
                            (void)k3;
                            label = r.name(v3, what + ".group_by.field");
                        }
                        if (label.empty()) r.fail(group_by_node, what + ".group_by needs a field");
                        re.params["by"] = "field";
                        re.params["field"] = label;
                    } else {
                        r.fail(group_by_node, what + ".group_by must be `key`, {field: NAME} or {plugin: P, function: NAME}, found " +
                                                  Reader::kind(group_by_node));
                    }
                    re.params["topic"] = c.app_id + "-" + name + "-" + label + "-repartition";
                } else {
                    re.params["by"] = "key";
                    re.params["topic"] = r.name(through_node, what + ".through");
                }
                const std::string topic = re.params["topic"];
                int partitions = 0;
                for (const auto& t : a.from)
                    if (const TopicSpec* spec = c.topic(t)) partitions = std::max(partitions, spec->partitions);
                if (!c.topic(topic)) {
                    // The re-keyed stream carries the source's values unchanged, so it keeps their codec.
                    TopicSpec re_keyed = *c.topic(a.from.front());
                    re_keyed.name = topic;
                    re_keyed.partitions = partitions;
                    re_keyed.key = Codec::raw;
                    c.topics.push_back(std::move(re_keyed));
                }
                a.from = {topic};
                c.agents.push_back(std::move(re));
            }
            c.agents.push_back(std::move(a));
        }
    }

    if (timers_node && !timers_node.IsNull()) {
        for (auto& [name, v] : r.entries(timers_node, "timers")) {
            TimerSpec t;
            t.name = name;
            const std::string what = "timers." + name;
            YAML::Node plugin_node, every_node, sinks_node;
            bool have_agent = false, have_plugin = false, have_every = false;
            YAML::Node cron_node, zone_node;
            bool have_cron = false, have_zone = false;
            for (auto& [k2, v2] : r.entries(v, what, {"plugin", "agent", "every", "cron", "timezone", "on_leader",
                                                       "params", "sinks", "supervisor"})) {
                if (k2 == "plugin") { t.plugin = r.name(v2, what + ".plugin"); t.plugin_mark = r.mark_of(v2); plugin_node = v2; have_plugin = true; }
                else if (k2 == "agent") { t.agent = r.name(v2, what + ".agent"); t.agent_mark = r.mark_of(v2); have_agent = true; }
                else if (k2 == "every") { t.every = r.duration(v2, what + ".every"); every_node = v2; have_every = true; }
                else if (k2 == "cron") { t.cron = r.string(v2, what + ".cron"); cron_node = v2; have_cron = true; }
                else if (k2 == "timezone") { t.timezone = r.string(v2, what + ".timezone"); zone_node = v2; have_zone = true; }
                else if (k2 == "on_leader") t.on_leader = r.boolean(v2, what + ".on_leader");
                else if (k2 == "params") t.params = r.scalar_map(v2, what + ".params");
                else if (k2 == "sinks") { t.sinks = r.names(v2, what + ".sinks"); sinks_node = v2; }
                else if (k2 == "supervisor") t.supervisor = read_supervisor(r, v2, what + ".supervisor");
            }
            if (!have_plugin) r.fail(v, what + " needs 'plugin'");
            if (have_every == have_cron)
                r.fail(v, what + " needs either 'every' (an interval such as 10s) or 'cron' (such as \"*/5 * * * *\")");
            if (have_every && t.every.count() < 1) r.fail(every_node, what + ".every must be at least 1ms");
            if (have_cron)
                if (auto schedule = CronSchedule::parse(t.cron); !schedule) r.fail(cron_node, what + ".cron: " + schedule.error());
            if (have_zone && !have_cron) r.fail(zone_node, what + ".timezone applies to a cron schedule only");
            if (have_zone && !CronSchedule::known_zone(t.timezone))
                r.fail(zone_node, what + ".timezone: unknown time zone '" + t.timezone + "' (IANA names, e.g. Europe/Paris)");
            if (!have_agent) { t.agent = t.name; t.agent_mark = t.plugin_mark; }
            if (sinks_node) check_topics(sinks_node, t.sinks, what + ".sinks", true);
            check_plugin(plugin_node, t.plugin, what + ".plugin");
            c.timers.push_back(std::move(t));
        }
    }
    if (c.agents.empty() && c.timers.empty()) r.fail(root, "the pipeline declares no agents and no timers: nothing to run");

    // Cycles: an agent whose outputs lead back to its own input would amplify every event forever.
    std::map<std::string, std::vector<const AgentSpec*>> readers;  // topic -> agents reading it
    for (const auto& a : c.agents)
        for (const auto& t : a.from) readers[t].push_back(&a);
    std::map<const AgentSpec*, int> state;  // 0 new, 1 on the path, 2 done
    std::vector<std::string> path;
    std::function<void(const AgentSpec*)> visit = [&](const AgentSpec* a) {
        state[a] = 1;
        path.push_back(a->name);
        for (const auto& sink : a->sinks) {
            for (const AgentSpec* next : readers[sink]) {
                if (state[next] == 1) {
                    std::string cycle;
                    auto start = std::find(path.begin(), path.end(), next->name);
                    for (auto it = start; it != path.end(); ++it) cycle += *it + " -> ";
                    throw ConfigFailure{next->plugin_mark.file.empty() ? Mark{r.file(), 1, 1} : next->plugin_mark,
                                        "agents form a cycle through their sinks: " + cycle + next->name +
                                            " (topic '" + sink + "')"};
                }
                if (state[next] == 0) visit(next);
            }
        }
        path.pop_back();
        state[a] = 2;
    };
    for (const auto& a : c.agents)
        if (state[&a] == 0) visit(&a);
    return c;
}

}  // namespace

const char* const kUnexpectedConfigError = "cannot be read (an unexpected error, please report it): ";

Result<PipelineConfig> load_config_text(const std::string& text, const std::string& file_label,
                                        const std::filesystem::path& base_dir,
                                        const std::optional<std::filesystem::path>& plugin_dir) {
    try {
        YAML::Node root = YAML::Load(text);
        Reader reader(file_label);
        return read_pipeline(reader, root, base_dir, plugin_dir);
    } catch (const ConfigFailure& f) {
        return make_error(f.mark.str() + ": " + f.message);
    } catch (const YAML::ParserException& e) {
        return make_error(file_label + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": invalid YAML: " + e.msg);
    } catch (const YAML::Exception& e) {
        return make_error(file_label + ": " + e.what());
    } catch (const std::exception& e) {
        // A check that threw instead of failing with a position: never a crash of the host over a file.
        return make_error(file_label + ": " + kUnexpectedConfigError + e.what());
    }
}

Result<PipelineConfig> load_config(const std::filesystem::path& path,
                                   const std::optional<std::filesystem::path>& plugin_dir) {
    // A pipeline file names the plugins the host runs: nobody but root and this host's user may change it.
    if (auto trusted = check_trusted_file(path, "pipeline file"); !trusted) return make_error(trusted.error());
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path.string() + ": cannot read: " + std::strerror(errno));
    std::string buffer(kMaxPipelineFileBytes + 1, '\0');
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    buffer.resize(static_cast<size_t>(in.gcount()));
    if (buffer.size() > kMaxPipelineFileBytes)
        return make_error(path.string() + ": refused: larger than " + std::to_string(kMaxPipelineFileBytes / 1024) +
                          " KiB; a pipeline file declares topics, tables and agents, not data");
    std::error_code ec;
    auto absolute = std::filesystem::absolute(path, ec);
    return load_config_text(buffer, path.string(), (ec ? path : absolute).parent_path(), plugin_dir);
}

}  // namespace mephisto
