#pragma once
// The validated model of one pipeline YAML file (DESIGN.md §4). Everything here has been checked: names are
// unique, references resolve, values have the right type and range. Marks keep the file position of the
// fields whose later checks (plugin and agent existence) must still point the user at the right place.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/duration.hpp"
#include "common/result.hpp"

namespace mephisto {

// A position in a YAML file, 1-based, for error messages "file:line:column: ...".
struct Mark {
    std::string file;
    int line = 0;
    int column = 0;
    std::string str() const;  // "file:line:column"
};

// The codec of a topic's keys or values: checked before an agent sees the event. `plugin`: a plugin's codec.
enum class Codec { raw, json, plugin };
// The value codec of a table: how values are encoded in the store, the changelog and the ABI.
enum class ValueCodec { raw, int64, dbl, json, plugin };

// Something a plugin provides besides agents (ABI 1.2), as YAML names it: {plugin: P, codec: NAME} or
// {plugin: P, name: NAME}. Checked against the loaded plugin when the pipeline is built.
struct PluginItemRef {
    std::string plugin;  // empty: none
    std::string name;
    Mark mark;
    bool empty() const { return plugin.empty(); }
};
enum class StoreKind { rocksdb, memory };
enum class ThenPolicy { skip, dead_letter, crash };
enum class Strategy { one_for_one, one_for_all };

struct TopicSpec {
    std::string name;
    int partitions = 0;  // 0: not declared (the broker decides); the embedded broker then uses 4
    Codec key = Codec::raw;
    Codec value = Codec::raw;
    PluginItemRef value_codec;  // when value == Codec::plugin
};

// What to do when an agent's verdict on an event is not OK: retry `retry` times with backoff, then `then`.
struct ErrorPolicy {
    int retry = 3;
    ThenPolicy then = ThenPolicy::skip;
    std::string dead_letter_topic;  // set when then == dead_letter (defaults to <app>-<agent>-dead-letter)
    Millis retry_backoff{100};
};

// Restart policy of one agent's instances (Faust's supervisor strategies, Erlang's intensity limits).
struct SupervisorSpec {
    Strategy strategy = Strategy::one_for_one;
    int max_restarts = 5;       // more than this many restarts within `within` quarantines the agent
    Millis within{60'000};
    Millis backoff_initial{100};  // restart delay, doubled on each restart in the window, capped at backoff_max
    Millis backoff_max{10'000};
};

// A windowed table's windows (Faust's tumbling/hopping/sliding windows, with Kafka Streams' grace period).
enum class WindowKind { tumbling, hopping, sliding, session };
// Where an event's time comes from: its Kafka timestamp (`stream`), a JSON field of its value holding
// milliseconds since the epoch (`field`), or the wall clock when it is processed (`now`).
enum class TimeSource { stream, field, now };
struct WindowSpec {
    WindowKind kind = WindowKind::tumbling;
    Millis size{0};    // tumbling and hopping: the window length
    Millis step{0};    // hopping: how far apart windows start
    Millis before{0};  // sliding: the window around each event, [t - before, t + after]
    Millis after{0};
    Millis gap{0};     // session: events of a key less than this apart are one session (Kafka Streams')
    Millis grace{0};    // events up to this late (in stream time, past a window's end) still count
    Millis expires{0};  // a window is removed once stream time passes its end by this (>= grace)
    TimeSource relative_to = TimeSource::stream;
    std::string time_field;  // relative_to field
    // The length of every window of this spec (sessions: none fixed; their gap).
    Millis width() const {
        return kind == WindowKind::sliding ? before + after + Millis(1) : kind == WindowKind::session ? gap : size;
    }
};

// A table (Faust's Table): host-owned state, sharded like the sources of the agents that use it, changelogged
// to <app>-<name>-changelog and recovered from it.
struct TableSpec {
    std::string name;
    StoreKind store = StoreKind::rocksdb;
    ValueCodec value = ValueCodec::raw;
    PluginItemRef value_codec;  // when value == ValueCodec::plugin
    PluginItemRef aggregate;    // the aggregator table_merge uses, if any
    std::optional<std::string> default_value;  // encoded in `value`'s codec
    int partitions = 0;  // 0: those of the source topics of the agents using it
    std::map<std::string, std::string> rocksdb_options;  // RocksDB DBOptions/ColumnFamilyOptions by name
    // A global table (Faust's GlobalTable): every host holds every partition, following the whole changelog;
    // an instance reads any key and writes the keys of its own partition.
    bool global = false;
    std::optional<WindowSpec> window;  // a windowed table: one value per (key, window)
    // Hosts that keep a standby copy of each partition, following its changelog, besides its owner (Kafka
    // Streams' num.standby.replicas): the table's `standby_replicas`, else the pipeline's; 0 for a global table.
    int standby_replicas = 0;
    std::string changelog_topic;
    Mark mark;
};

// Faust's stream.take(max, within): events handed to on_batch in batches of up to `max`, a batch going as soon
// as it is full or its first event has waited `within`.
struct TakeSpec {
    int max = 100;
    Millis within{1000};
};

struct AgentSpec {
    std::string name;    // the YAML key: unique within the pipeline
    std::string plugin;  // plugin file stem: <plugin dir>/<plugin>.so
    std::string agent;   // agent name inside the plugin
    std::vector<std::string> from;
    std::vector<std::string> sinks;
    std::vector<std::string> echo;  // Faust's stream.echo: every event is also copied to these topics
    std::vector<std::string> tables;
    std::map<std::string, std::string> params;
    ErrorPolicy on_error;
    // `on_crash: {quarantine_after: N}`: a record that crashed this agent's worker process N times is
    // dead-lettered by the next worker instead of processed (0: never). Only with process isolation.
    int quarantine_after = 3;
    SupervisorSpec supervisor;
    Mark plugin_mark, agent_mark;
    // Set on the host-internal agents that `group_by`/`through` add (plugin is then empty): "repartition".
    std::string builtin;
    PluginItemRef key_function;  // a repartition agent's `group_by: {plugin: P, function: NAME}`
    PluginItemRef filter;        // `filter: {plugin: P, predicate: NAME}`: events it rejects skip the agent
    std::optional<TakeSpec> take;  // batches for on_batch (else on_batch gets whatever is waiting)
    // Instances per partition. Events of one key always go to the same one, so each key stays in order (and an
    // agent may use tables: a key's writes never race); keyless events are spread by offset.
    int concurrency = 1;
    // `ack: manual`: an event is done only when the agent acknowledges it (host function ack), not when its
    // callback returns (Faust's acks=False).
    bool manual_ack = false;
    Mark take_mark;
};

struct TimerSpec {
    std::string name;
    std::string plugin;
    std::string agent;
    Millis every{0};       // an interval, or:
    std::string cron;      // a crontab(5) schedule (checked), in `timezone` (an IANA zone; default UTC)
    std::string timezone = "UTC";
    bool on_leader = false;  // fires only on the host that leads the app's group (owns <app>-__leader[0])
    std::map<std::string, std::string> params;
    std::vector<std::string> sinks;
    SupervisorSpec supervisor;
    Mark plugin_mark, agent_mark;
};

struct BrokerSpec {
    bool embedded = true;
    int embedded_port = 9092;  // 0: any free port
    int embedded_brokers = 1;
    std::string bootstrap;  // "host:port,host:port" when not embedded
    std::map<std::string, std::string> properties;  // extra librdkafka properties for every client
};

// Faust's app.channel: an in-memory stream between agents of one host. Agents read it with `from:` and write it
// as a sink, with send or cast; nothing of it reaches Kafka.
struct ChannelSpec {
    std::string name;
    // Faust's channel maxsize: past this many unfinished events the agents writing to it from topics wait
    // until it drained below three quarters of it (a send itself never blocks: the sender is a worker).
    int64_t maxsize = 20'000;
    Mark mark;
};

// Where a pipeline runs when the host runs several (issue "a shared runtime"): in a worker process of its own,
// so that its crash costs only itself a restart, or in the one worker the pipelines with `none` share.
enum class Isolation { process, none };

// `warm_up:` (Kafka Streams' warm-up replicas, KIP-441). A starting host first follows the changelogs of the table
// partitions it will take when it joins the group, and joins only once each is within `acceptable_lag` records of
// its end (or `timeout` passed): a scale-out then moves partitions without a full recovery on the way. librdkafka
// has no pluggable assignor to keep a partition on its old owner until the new one caught up, as Kafka Streams
// does, so the warm-up happens before joining (engine/warm_up.hpp). `warm_up: true` takes the defaults.
struct WarmUpSpec {
    bool enabled = false;
    int64_t acceptable_lag = 10'000;  // Kafka Streams' acceptable.recovery.lag
    Millis timeout{600'000};          // joins anyway after this: a warm-up that never catches up holds nothing back
    bool operator==(const WarmUpSpec&) const = default;
};

struct PipelineConfig {
    std::filesystem::path file;
    std::string app_id;
    int app_version = 1;
    BrokerSpec broker;
    std::filesystem::path plugin_dir;  // absolute
    std::filesystem::path state_dir;   // absolute; tables live in <state_dir>/<table>
    Millis commit_interval{1000};
    Millis shutdown_timeout{30'000};
    Millis plugin_load_timeout{10'000};  // `plugins.load_timeout`: a plugin's constructors, entry and init
    // A callback running longer than this is reported (log, /agents, /metrics, /ready), and again as often.
    Millis hung_callback_after{30'000};
    // With no broker reachable for this long the pipeline fails and the host exits non-zero; 0: never (off).
    Millis broker_unreachable_timeout{0};
    int workers = 2;
    // `standby_replicas:` for the tables that do not set their own (Faust's and Kafka Streams' default: 0).
    int standby_replicas = 0;
    // `static_membership: true` (KIP-345): the consumer joins with group.instance.id `<app>-<host id>`, so a host
    // restarted with the same --host-id within session.timeout.ms gets its partitions back without a rebalance.
    bool static_membership = false;
    WarmUpSpec warm_up;
    // `isolation:`; unset: process when the host runs a directory or several files, none for a single file.
    std::optional<Isolation> isolation;
    // `supervisor:`: how the supervisor restarts this pipeline's worker process when it crashes (strategy aside).
    SupervisorSpec worker_restart;
    // `callback_timeout:` (process isolation): a callback running longer gets its worker killed by the
    // supervisor, and counts as a crash of the record it was processing; 0: off (the default).
    Millis callback_timeout{0};
    // `limits:` (process isolation): the worker's memory, in bytes, and CPU, in cores; 0: unlimited.
    uint64_t memory_limit = 0;
    double cpu_limit = 0;
    std::map<std::string, std::string> consumer_properties;
    std::map<std::string, std::string> producer_properties;
    std::vector<TopicSpec> topics;  // declaration order
    std::vector<TableSpec> tables;
    std::vector<AgentSpec> agents;
    std::vector<TimerSpec> timers;
    std::vector<ChannelSpec> channels;

    const TopicSpec* topic(const std::string& name) const;
    const ChannelSpec* channel(const std::string& name) const;
    const TableSpec* table(const std::string& name) const;
    // Topics some agent reads (the consumer subscribes to these, and to leader_topic() when a timer is on_leader);
    // channels are not topics.
    std::vector<std::string> source_topics() const;
    // Leader election: the host that owns partition 0 of this one-partition topic leads the app.
    std::string leader_topic() const { return app_id + "-__leader"; }
    bool has_leader_timers() const;
};

// standby_replicas beyond this are refused: each one is a host following every changelog record.
inline constexpr int kMaxStandbyReplicas = 16;

// A pipeline file larger than this is refused unread.
inline constexpr size_t kMaxPipelineFileBytes = 1024 * 1024;

// Parses and validates `path`. Every error names file, line and column. The file, and every directory above
// it, must be beyond the reach of other users (check_trusted_file). `plugin_dir`, when given, replaces
// the file's plugins.dir (the command line's --plugin-dir) before plugin files are looked up.
Result<PipelineConfig> load_config(const std::filesystem::path& path,
                                   const std::optional<std::filesystem::path>& plugin_dir = std::nullopt);
// The start of the message of a check that threw instead of naming a position (a bug the fuzzer hunts).
extern const char* const kUnexpectedConfigError;

// Same, from text; `file_label` is used in messages and `base_dir` resolves relative paths.
Result<PipelineConfig> load_config_text(const std::string& text, const std::string& file_label,
                                        const std::filesystem::path& base_dir,
                                        const std::optional<std::filesystem::path>& plugin_dir = std::nullopt);

}  // namespace mephisto
