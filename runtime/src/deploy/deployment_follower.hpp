#pragma once
// A host's end of the deployments topic (deploy/deployment.hpp), for `mephisto run DIR --deployments BROKER
// --trust KEY.pub`: reads the topic from its start, and applies each pipeline's latest manifest that the trusted
// key signed: the shipped plugins into DIR/plugins.d/<name>/, then the pipeline file as DIR/<name>.yaml, each
// written beside and renamed into place, so the host's (or supervisor's) watchers only ever see whole files; the
// existing reload machinery then starts, swaps or stops the pipeline (a new plugin version alone is a swap: no
// rebalance). An undeploy removes the file. A manifest not signed by the trusted key, altered, older than what
// was applied, or whose chunks do not match their hashes is refused, logged, and reported on the topic
// (`mephisto deployments`); nothing of it is written. The versions applied are kept in DIR/.deployments.json, so a
// restarted host refuses a replayed older manifest too.
#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "common/result.hpp"
#include "deploy/deployment.hpp"
#include "kafka/client_config.hpp"

namespace mephisto {

struct DeploymentFollowerOptions {
    std::string bootstrap;
    std::filesystem::path dir;  // the pipelines directory the host runs
    PublicKey trusted;
    std::string host_id;  // names this host's status record
    std::shared_ptr<spdlog::logger> log;
};

class DeploymentFollower {
public:
    // Creates the topic if needed, and starts following it. Errors: the broker or the directory cannot be used.
    static Result<std::unique_ptr<DeploymentFollower>> start(DeploymentFollowerOptions options);
    ~DeploymentFollower();  // stops

    // PUT /pipelines/NAME: publishes a manifest signed elsewhere (`mephisto deploy --print`) to the topic, for
    // every host, this one included, to apply. Refused unless it is signed by the trusted key, names `name`, and
    // every chunk it names is on the topic already (`deploy --print` publishes them). Returns its version.
    // THREAD: any (the admin API's).
    Result<uint64_t> publish(const std::string& name, std::string_view manifest_json);

    struct Refusal {
        std::string name;
        uint64_t version = 0;
        std::string why;
        int64_t at_ms = 0;
    };

private:
    explicit DeploymentFollower(DeploymentFollowerOptions options) : o_(std::move(options)) {}
    void follow();
    void on_manifest(const std::string& key, std::string_view value);
    void apply(const Manifest& manifest);
    Status write_plugin(const Manifest& manifest, const DeployedPlugin& plugin);
    void refuse(const std::string& name, uint64_t version, const std::string& why);
    void load_state();
    void save_state();
    void publish_status();

    DeploymentFollowerOptions o_;
    KafkaPtr consumer_, producer_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    // Follower thread only.
    bool caught_up_ = false;
    std::map<std::string, Manifest> pending_;        // while catching up: each pipeline's latest manifest
    mutable std::mutex chunks_mutex_;                // publish() looks chunks up from the admin API's thread
    std::map<std::string, std::string> chunks_;      // sha256 -> bytes; guarded by chunks_mutex_
    size_t chunk_bytes_ = 0;
    std::map<std::string, uint64_t> applied_;        // name -> version applied (DIR/.deployments.json)
    std::map<std::string, bool> deleted_;            // name -> the applied version was an undeploy
    std::deque<Refusal> refused_;                    // the last ones
};

}  // namespace mephisto
