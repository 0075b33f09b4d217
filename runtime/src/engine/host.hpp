#pragma once
// The host process: starts the embedded broker when a pipeline asks for it, loads each pipeline's plugins,
// runs the pipelines, and stops them in order.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin/http_server.hpp"
#include "config/config.hpp"
#include "engine/pipeline.hpp"
#include "kafka/embedded_broker.hpp"

namespace mephisto {

struct HostOptions {
    std::vector<std::filesystem::path> files;
    std::optional<std::string> broker;  // overrides every pipeline's broker: "embedded" or "kafka://..."
    std::optional<std::filesystem::path> plugin_dir;
    std::optional<std::filesystem::path> state_dir;
    // The admin HTTP API: "host:port" to listen on (port 0: any free one), unset for none. With a token,
    // requests must carry "Authorization: Bearer <token>".
    std::optional<std::string> admin_listen;
    std::string admin_token;
};

// Loads every plugin a pipeline names from its plugin dir. Errors name the YAML position of the reference.
Result<std::map<std::string, std::shared_ptr<Plugin>>> load_pipeline_plugins(const PipelineConfig& config);

// Loads a pipeline file with the command line's overrides applied.
Result<PipelineConfig> load_with_overrides(const std::filesystem::path& file, const HostOptions& options);

class Host {
public:
    static Result<std::unique_ptr<Host>> start(const HostOptions& options);
    ~Host();
    void stop();
    bool failed() const;
    std::string failure() const;
    EmbeddedBroker* broker() const { return broker_.get(); }
    const std::vector<std::unique_ptr<Pipeline>>& pipelines() const { return pipelines_; }
    // The plugins each pipeline loaded, by name.
    const std::vector<std::map<std::string, std::shared_ptr<Plugin>>>& plugin_sets() const { return plugins_; }
    // "host:port" of the admin API, empty when it is off.
    std::string admin_address() const { return admin_ ? admin_->address() : std::string(); }
    std::chrono::milliseconds shutdown_budget() const;

private:
    Host() = default;
    std::vector<PipelineConfig> configs_;
    std::unique_ptr<EmbeddedBroker> broker_;
    std::vector<std::map<std::string, std::shared_ptr<Plugin>>> plugins_;
    std::vector<std::unique_ptr<Pipeline>> pipelines_;
    std::unique_ptr<HttpServer> admin_;  // started last, stopped first: it reads the pipelines
};

// `mephisto run`: starts the host and serves until SIGINT/SIGTERM or a pipeline failure. Returns the exit
// code: 0 after a clean stop, 1 when a pipeline failed or startup was refused.
int run_host(const HostOptions& options);

}  // namespace mephisto
