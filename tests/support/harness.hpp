#pragma once
// Integration and reliability harness: a broker in the test process (librdkafka's mock cluster on loopback),
// hosts as child processes the test can SIGTERM or SIGKILL, and a reader that collects what reached a topic
// (the ledger). Every wait is for a condition, with a deadline; nothing sleeps to synchronise.
#include <netinet/in.h>
#include <sys/types.h>

#include <csignal>

#include <chrono>
#include <filesystem>
#include <atomic>
#include <functional>
#include <thread>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/embedded_broker.hpp"
#include "temp_dir.hpp"

namespace mephisto::test {

using namespace std::chrono_literals;
using Seconds = std::chrono::seconds;

// Polls `condition` every 20 ms until it holds or `timeout` passes. Returns whether it held.
bool await(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// The broker every host of a test connects to. Lives in the test process, so hosts can die and restart
// around it without losing topics or committed offsets.
class Broker {
public:
    explicit Broker(int brokers = 1, const std::string& address = "127.0.0.1");  // mock broker ids are 1..brokers
    const std::string& bootstrap() const { return broker_->bootstrap(); }
    void create_topic(const std::string& name, int partitions);
    // Stops the broker (to test a host whose broker is gone).
    void shutdown() { broker_.reset(); }
    // Takes broker `broker_id` down (its connections closed, new ones refused) and back up.
    void set_down(int32_t broker_id);
    void set_up(int32_t broker_id);
    // Every request to the broker is answered `rtt` later (0: at once again).
    void set_rtt(int32_t broker_id, std::chrono::milliseconds rtt);
    // Makes broker `broker_id` the leader of topic[partition].
    void set_leader(const std::string& topic, int32_t partition, int32_t broker_id);
    // The next `count` requests of `api_key` (the Kafka protocol's ApiKey: 0 is Produce) that broker
    // `broker_id` receives fail with `error`.
    void fail_requests(int32_t broker_id, int16_t api_key, rd_kafka_resp_err_t error, size_t count = 1);

private:
    std::unique_ptr<EmbeddedBroker> broker_;
};

struct Record {
    std::string topic;
    int32_t partition = 0;
    int64_t offset = 0;
    std::optional<std::string> key;
    std::optional<std::string> value;  // nullopt for a tombstone
    int64_t timestamp = -1;
    std::map<std::string, std::string> headers;
    // The header's value, empty when the record has none of that name.
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct Message {
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::map<std::string, std::string> headers;
    int32_t partition = -1;
    bool no_timestamp = false;  // produce with timestamp type NOT_AVAILABLE is impossible from librdkafka;
                                // this sends CreateTime 0 instead, the closest a client can do
};

// Produces messages and waits until every one is acknowledged.
void produce(const std::string& bootstrap, const std::string& topic, const std::vector<Message>& messages);
// Convenience: values "<prefix><i>" for i in [first, first+count), keyed "k<i % keys>".
void produce_sequence(const std::string& bootstrap, const std::string& topic, int first, int count, int keys = 8,
                      const std::string& prefix = "seq-");

// A steady load: produce_sequence in chunks ("seq-0", "seq-1", ...; keyed over `keys`) on a background thread,
// each chunk acknowledged before the next, until stop() or destruction.
class SteadyLoad {
public:
    SteadyLoad(std::string bootstrap, std::string topic, int chunk = 100, int keys = 16);
    ~SteadyLoad() { stop(); }
    // Values sent and acknowledged so far: "seq-0" up to "seq-<sent - 1>".
    int sent() const { return sent_.load(); }
    // Stops after the chunk in flight; returns the final count.
    int stop();

private:
    std::atomic<int> sent_{0};
    std::atomic<bool> done_{false};
    std::thread thread_;
};

// Reads a topic from the beginning without a consumer group; keeps what it read across calls.
class TopicReader {
public:
    TopicReader(const std::string& bootstrap, const std::string& topic, int partitions);
    ~TopicReader();
    // Reads until `condition(records)` holds or the timeout passes; returns whether it held.
    bool read_until(const std::function<bool(const std::vector<Record>&)>& condition, std::chrono::milliseconds timeout);
    // Reads until every partition's records reach the end offsets captured now; false on timeout.
    bool read_to_end(std::chrono::milliseconds timeout);
    // Reads whatever arrives within `quiet` (to check nothing more comes).
    void read_for(std::chrono::milliseconds quiet);
    const std::vector<Record>& records() const { return records_; }
    // Values counted by occurrence.
    std::map<std::string, int> value_counts() const;

private:
    rd_kafka_t* rk_ = nullptr;
    std::string bootstrap_, topic_;
    int partitions_ = 0;
    std::vector<Record> records_;
};

// An int64 table as its changelog says: the last value of each key, in offset order per partition, keys whose
// last record is a tombstone absent (the model a recovered table must equal). Throws when the changelog
// cannot be read to its end.
std::map<std::string, int64_t> int64_table_from_changelog(const std::string& bootstrap, const std::string& topic,
                                                          int partitions);

// The group's committed offsets of `topic` (partition -> next offset; -1001 when none).
std::map<int32_t, int64_t> committed_offsets(const std::string& bootstrap, const std::string& group,
                                             const std::string& topic, int partitions);
// The end (high watermark) of each partition.
std::map<int32_t, int64_t> end_offsets(const std::string& bootstrap, const std::string& topic, int partitions);

// Waits until the group's committed offset equals the end offset on every non-empty partition of `topic`
// (consumer lag 0). On failure, `report` says where each partition stands.
bool await_caught_up(const std::string& bootstrap, const std::string& group, const std::string& topic, int partitions,
                     std::chrono::milliseconds timeout, std::string* report = nullptr);

// A `mephisto` child process. Killed with SIGKILL when the object dies if still running.
class HostProcess {
public:
    explicit HostProcess(std::vector<std::string> args, const std::filesystem::path& log_file);
    ~HostProcess();
    pid_t pid() const { return pid_; }
    bool running();
    // Sends `sig` and waits up to `timeout` for the exit; returns the exit code (128+signal when killed by
    // one) or nullopt when it did not exit in time.
    std::optional<int> stop(int sig, std::chrono::milliseconds timeout);
    std::optional<int> wait(std::chrono::milliseconds timeout);
    std::string log() const;
    // Waits until the log contains `text`.
    bool await_log(const std::string& text, std::chrono::milliseconds timeout) const;
    size_t count_in_log(const std::string& text) const;

private:
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    std::filesystem::path log_file_;
};

// Path of the built `mephisto` executable and of the plugin folders.
std::filesystem::path mephisto_binary();
std::filesystem::path test_plugin_dir();
std::filesystem::path example_plugin_dir();

// Runs `mephisto ARGS...` to completion (30 s at most); its stdout and stderr go to `output`. Returns the exit
// code, or nullopt when it did not finish.
std::optional<int> run_cli(const std::vector<std::string>& args, const TempDir& dir, std::string& output);

// Starts `mephisto run <yaml> --broker kafka://<bootstrap>` and waits until it was assigned partitions.
std::unique_ptr<HostProcess> start_host(const std::filesystem::path& yaml, const std::string& bootstrap,
                                        const std::filesystem::path& log_file,
                                        std::vector<std::string> extra_args = {}, bool await_assignment = true);

// The admin API of a host started by start_host (a free loopback port, named in its log): "host:port".
std::string admin_address(const HostProcess& host, std::chrono::milliseconds timeout = 30s);

struct HttpReply {
    int status = 0;  // 0: no reply (the connection was closed or timed out)
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
};
// The IPv4 socket address of "host:port" (an admin API's address, as admin_address gives it).
sockaddr_in ipv4_address(const std::string& address);
// Sends `raw`, a whole HTTP request as bytes (well-formed or not), to "host:port" and reads the reply.
HttpReply http_raw(const std::string& address, const std::string& raw);
// Runs `command` with sh, its stderr joined to its stdout in `output`; returns its exit status (-1: killed).
int shell(const std::string& command, std::string& output);
// GET `path` with Connection: close, and a bearer token when given.
HttpReply http_get(const std::string& address, const std::string& path, const std::string& token = "");
// The events agent `agent` processed on the host whose admin API is at `address`, over its instances (GET
// /agents); -1 when the API did not answer 200.
int64_t agent_processed(const std::string& address, const std::string& agent);

// Consumer settings that make the mock cluster's rebalances quick (see README: the 2.0.2 mock waits
// session.timeout.ms - 1 s on every rebalance after the first).
inline const char* kFastGroupYaml =
    "consumer: {session.timeout.ms: 4000, heartbeat.interval.ms: 300}\n"
    "commit_interval: 200ms\n";

// A pipeline file's text: app `app`, the test plugins, quick group settings, then `body` (topics, agents...).
// `plugins`: another plugin directory than the test plugins'.
std::string pipeline_yaml(const std::string& app, const std::string& body);
std::string pipeline_yaml(const std::string& app, const std::string& body, const std::filesystem::path& plugins);

// The usual set-up of an integration test: a broker in the test process, a temporary directory, and hosts
// started on pipeline files written there (each host's log beside its file, as <file>.log).
struct HostFixture {
    Broker broker;
    TempDir dir;
    // A state directory for the pipelines of the test.
    std::filesystem::path state() const { return dir.path() / "state"; }
    // Writes `yaml` to `file` (relative to the directory) and starts a host on it.
    std::unique_ptr<HostProcess> start(const std::string& file, const std::string& yaml,
                                       std::vector<std::string> extra_args = {}, bool await_assignment = true) {
        const auto path = dir.write(file, yaml);
        return start_host(path, broker.bootstrap(), path.string() + ".log", std::move(extra_args), await_assignment);
    }
};

}  // namespace mephisto::test

#include "pipeline_builder.hpp"
