#pragma once
// The host process: starts the embedded broker when a pipeline asks for it, loads each pipeline's plugins,
// runs the pipelines, and stops them in order.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/pipeline.hpp"
#include "kafka/embedded_broker.hpp"

namespace mephisto {

struct HostOptions {
    std::vector<std::filesystem::path> files;
    std::optional<std::string> broker;  // overrides every pipeline's broker: "embedded" or "kafka://..."
    std::optional<std::filesystem::path> plugin_dir;
    std::optional<std::filesystem::path> state_dir;
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
    std::chrono::milliseconds shutdown_budget() const;

private:
    Host() = default;
    std::vector<PipelineConfig> configs_;
    std::unique_ptr<EmbeddedBroker> broker_;
    std::vector<std::map<std::string, std::shared_ptr<Plugin>>> plugins_;
    std::vector<std::unique_ptr<Pipeline>> pipelines_;
};

// `mephisto run`: starts the host and serves until SIGINT/SIGTERM or a pipeline failure. Returns the exit
// code: 0 after a clean stop, 1 when a pipeline failed or startup was refused.
int run_host(const HostOptions& options);

}  // namespace mephisto
