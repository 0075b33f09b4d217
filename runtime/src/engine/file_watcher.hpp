#pragma once
// Watches directories (inotify, through Boost.Asio) and calls back once a burst of changes to files with a
// given suffix (*.so plugins, *.yaml pipelines) has settled, so a file being written is never read half-done.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"

namespace mephisto {

class FileWatcher {
public:
    // `settle`: how long the directory must stay quiet after the last change before `on_change` runs.
    // THREAD: on_change runs on the watcher's own thread.
    static Result<std::unique_ptr<FileWatcher>> start(const std::vector<std::filesystem::path>& dirs,
                                                      std::string suffix, std::chrono::milliseconds settle,
                                                      std::function<void()> on_change);
    ~FileWatcher();

    struct Impl;

private:
    FileWatcher() = default;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

}  // namespace mephisto
