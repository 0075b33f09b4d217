#pragma once
// Watches plugin directories (inotify, through Boost.Asio) and calls back once a burst of changes to *.so
// files has settled, so a copy in progress is never loaded half-written.
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/result.hpp"

namespace mephisto {

class PluginWatcher {
public:
    // `settle`: how long the directory must stay quiet after the last change before `on_change` runs.
    // THREAD: on_change runs on the watcher's own thread.
    static Result<std::unique_ptr<PluginWatcher>> start(const std::vector<std::filesystem::path>& dirs,
                                                        std::chrono::milliseconds settle,
                                                        std::function<void()> on_change);
    ~PluginWatcher();

    struct Impl;

private:
    PluginWatcher() = default;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

}  // namespace mephisto
