#pragma once
// The subcommands of the `mephisto` executable, one function each; main.cpp wires them to CLI11.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mephisto::cli {

int validate(const std::vector<std::filesystem::path>& files, const std::optional<std::filesystem::path>& plugin_dir);

struct SendOptions {
    std::string topic;
    std::optional<std::string> value;  // absent: one value per line from stdin
    std::optional<std::string> key;
    std::vector<std::string> headers;  // "name=value"
    int partition = -1;
    std::string broker;
};
int send(const SendOptions& options);

// Faust's agent.ask from a shell: sends `value` to `topic` (the topic an agent reads) asking for a reply.
struct AskOptions {
    std::string topic;
    std::string value;
    std::optional<std::string> key;
    std::chrono::milliseconds timeout{5000};
    std::string broker;
};
int ask(const AskOptions& options);

int inspect_plugin(const std::filesystem::path& file, bool json);

// `mephisto plugin new`: a plugin project (CMake with find_package(Mephisto), source, pipeline file, a test through
// the SDK's driver) in `dir` (default ./NAME), which must not exist. 0 written, 1 not, 2 a bad name or language.
struct PluginNewOptions {
    std::string name;
    std::string lang = "cpp";
    std::filesystem::path dir;
};
int plugin_new(const PluginNewOptions& options);

struct BrokerOptions {
    int port = 9092;
    int brokers = 1;
    std::string address = "127.0.0.1";  // the IPv4 address to listen on and advertise
    std::vector<std::string> topics;  // "name" or "name:partitions"
};
int broker(const BrokerOptions& options);

struct TableOptions {
    std::filesystem::path file;                      // the pipeline YAML
    std::optional<std::filesystem::path> state_dir;  // overrides the file's state_dir
};
int list_tables(const TableOptions& options);
int table_get(const TableOptions& options, const std::string& table, const std::string& key);
int table_dump(const TableOptions& options, const std::string& table);
int reset_table(const TableOptions& options, const std::string& table);

// A running host's admin API (`mephisto status`, `mephisto agents`, `mephisto reload`).
struct AdminOptions {
    std::string address = "127.0.0.1:6066";
    std::string token;  // $MEPHISTO_ADMIN_TOKEN
    bool json = false;
};
// Exit code 0 when the host is ready, 2 when it answers but is not ready, 1 when it cannot be reached.
int status(const AdminOptions& options);
int agents(const AdminOptions& options);
// `table get --admin`: GET /tables/TABLE/KEY of a running host, which asks the host holding the key. Exit codes as
// table_get's: 0 found, 3 no such key; 2 when the cluster cannot answer now (503: a rebalance), 1 unreachable.
// `stale`: ?stale=ok, a standby may answer; who served it and its lag are said on stderr.
int table_get_remote(const AdminOptions& options, const std::string& table, const std::string& key, bool stale = false);
// `status --cluster`: every host of the host's pipelines (GET /cluster); 0 when it answered, 1 when not.
int cluster_status(const AdminOptions& options);
// POST /reload: 0 when every changed plugin was swapped (or none changed), 2 when one was refused.
int reload(const AdminOptions& options);

// `mephisto top`: a live view of a host (or with `cluster` every host of its cluster view), refreshed every second.
struct TopOptions {
    AdminOptions admin;
    std::string sort = "events";  // events, lag, restarts or name (the first letter is the key that picks it)
    bool cluster = false;
    bool once = false;  // print one view and exit (also when not on a terminal)
};
int top(const TopOptions& options);

// Deployments through the topic mephisto-__deployments (deploy/deployment.hpp).
struct DeployOptions {
    std::filesystem::path file;                  // deploy: the pipeline file
    std::vector<std::filesystem::path> plugins;  // deploy: the plugins it ships
    std::string name;                            // deploy: default the file's stem; undeploy: required
    std::string broker;                          // bootstrap servers
    std::filesystem::path key;                   // the secret key signing it
    bool json = false;                           // deployments
    bool print = false;  // deploy: publish the chunks, print the signed manifest (for PUT /pipelines/NAME)
};
// keygen: a new Ed25519 key pair in two files (the secret one 0600). 0 written, 1 not.
int deploy_keygen(const std::filesystem::path& secret, const std::filesystem::path& public_key);
// 0 when every record reached the topic, 1 when not, 2 for a bad file, plugin, name or key.
int deploy(const DeployOptions& options);
int undeploy(const DeployOptions& options);
// What is deployed, and what each host applied and refused (their status records). 0 read, 1 not.
int deployments(const DeployOptions& options);

}  // namespace mephisto::cli
