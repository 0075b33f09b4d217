// `mephisto validate FILE...`: everything `run` checks before touching the network: the YAML, the plugins
// (loaded and checked) and that every agent and param exists.
#include <iostream>

#include "cli/commands.hpp"
#include "host/host.hpp"

namespace mephisto::cli {

int validate(const std::vector<std::filesystem::path>& files, const std::optional<std::filesystem::path>& plugin_dir) {
    int failures = 0;
    HostOptions overrides;
    overrides.plugin_dir = plugin_dir;
    for (const auto& file : files) {
        auto config = load_with_overrides(file, overrides);
        std::string error;
        if (!config) {
            error = config.error();
        } else if (auto plugins = load_pipeline_plugins(*config); !plugins) {
            error = plugins.error();
        } else if (auto pipeline = Pipeline::create(*config, *plugins, "unused:0", nullptr); !pipeline) {
            error = pipeline.error();
        }
        if (!error.empty()) {
            std::cerr << error << "\n";
            ++failures;
            continue;
        }
        std::cout << file.string() << ": ok (app " << config->app_id << ", " << config->topics.size() << " topic(s), "
                  << config->agents.size() << " agent(s), " << config->timers.size() << " timer(s)"
                  << (config->channels.empty() ? "" : ", " + std::to_string(config->channels.size()) + " channel(s)")
                  << ")\n";
    }
    return failures == 0 ? 0 : 1;
}

}  // namespace mephisto::cli
