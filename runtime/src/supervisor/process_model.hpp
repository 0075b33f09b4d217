#pragma once
// The process model of `mephisto run`: which pipelines run where. A single file, or only pipelines with
// `isolation: none`, run in this process as one host; otherwise the supervisor (supervisor.hpp) runs each
// pipeline in a worker process, and `mephisto worker` is that process's entry.
#include <filesystem>
#include <optional>
#include <vector>

#include "supervisor/supervisor.hpp"

namespace mephisto {

// The pipeline files to run: the directory's *.yaml, or the files given that exist, sorted.
std::vector<std::filesystem::path> pipeline_files(const std::optional<std::filesystem::path>& dir,
                                                  const std::vector<std::filesystem::path>& given);
// Runs the supervisor until it stops (supervisor.cpp); returns the exit code.
int run_supervisor(const RunOptions& options);

}  // namespace mephisto
