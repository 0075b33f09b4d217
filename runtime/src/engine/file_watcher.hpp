#pragma once
// Watches directories (inotify, through Boost.Asio) and calls back once a burst of changes to the files it is
// asked about (*.so plugins, *.yaml pipelines, given files) has settled, so a file is never read half-written.
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
    // `matches` says which file names (in any of `dirs`) count; `settle`: how long they must stay quiet after
    // the last change before `on_change` runs. THREAD: both run on the watcher's own thread.
    static Result<std::unique_ptr<FileWatcher>> start(const std::vector<std::filesystem::path>& dirs,
                                                      std::function<bool(const std::string&)> matches,
                                                      std::chrono::milliseconds settle,
                                                      std::function<void()> on_change);
    // Watches one more directory (a pipeline started later, with plugins somewhere new); one watched already is
    // left as it is. THREAD: any.
    Status watch(const std::filesystem::path& dir);
    // A `matches` for names ending in `suffix`.
    static std::function<bool(const std::string&)> suffix(std::string suffix);
    ~FileWatcher();

    struct Impl;

private:
    FileWatcher() = default;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

}  // namespace mephisto
