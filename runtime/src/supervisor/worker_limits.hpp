#pragma once
// `limits: {memory, cpu}` for one worker process. When the supervisor may create control groups (cgroup v1
// memory and cpu controllers, as root on this kind of machine), the worker runs in a group of its own under the
// supervisor's: the kernel charges it its resident memory, kills it (SIGKILL, the OOM killer) when it goes
// past the limit, counts the kill, and gives it at most `cpu` cores. Otherwise memory is bounded with
// RLIMIT_AS (address space, not resident memory: an allocation past it fails inside the worker) and CPU is not
// limited; `describe()` says which, and the supervisor logs it.
//
// cgroup v2 is not used yet: a v2 hierarchy delegates controllers only to a group without processes, so the
// supervisor would first have to move itself into a leaf of its own group, and no machine this was built on
// had v2 controllers to test that on.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mephisto {

// What the worker's child process does between fork and exec (async-signal-safe: prepared beforehand).
struct ChildLimits {
    std::vector<std::string> join;  // cgroup.procs files to write the child's pid into
    uint64_t address_space = 0;     // RLIMIT_AS, 0: none
};

class WorkerLimits {
public:
    // The limits of worker `name` of the supervisor (memory in bytes, cpu in cores; 0: unlimited).
    static std::unique_ptr<WorkerLimits> make(const std::string& name, uint64_t memory, double cpu);
    ~WorkerLimits();  // removes the groups (the worker is gone by then)
    WorkerLimits(const WorkerLimits&) = delete;
    WorkerLimits& operator=(const WorkerLimits&) = delete;

    const ChildLimits& child() const { return child_; }
    // "memory 256 MiB (cgroup /sys/fs/cgroup/memory/...), cpu 0.5 core (cgroup ...)", or with RLIMIT_AS.
    const std::string& describe() const { return description_; }
    // Processes of the worker's group the kernel killed for memory so far (0 without a memory cgroup).
    uint64_t oom_kills() const;
    uint64_t memory() const { return memory_; }
    double cpu() const { return cpu_; }

private:
    WorkerLimits() = default;
    uint64_t memory_ = 0;
    double cpu_ = 0;
    ChildLimits child_;
    std::string description_;
    std::string memory_group_, cpu_group_;  // directories made, removed at the end
};

}  // namespace mephisto
