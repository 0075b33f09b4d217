#include "supervisor/worker_limits.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/byte_size.hpp"
#include "common/result.hpp"

namespace mephisto {
namespace {

// The directory of this process's group in the cgroup v1 hierarchy that has `controller`, from
// /proc/self/mountinfo (where each hierarchy is mounted, and which of its groups is the mount's root) and
// /proc/self/cgroup (which group this process is in).
std::optional<std::string> own_group(const std::string& controller) {
    std::ifstream cgroups("/proc/self/cgroup");
    std::string line, path;
    while (std::getline(cgroups, line)) {  // "4:memory:/some/group"
        const auto first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        std::stringstream controllers(line.substr(first + 1, second - first - 1));
        for (std::string c; std::getline(controllers, c, ',');)
            if (c == controller) path = line.substr(second + 1);
    }
    if (path.empty()) return std::nullopt;
    std::ifstream mounts("/proc/self/mountinfo");
    while (std::getline(mounts, line)) {  // "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"
        const auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream fields(line.substr(0, dash)), tail(line.substr(dash + 3));
        std::string id, parent, device, root, mountpoint, type, source, options;
        fields >> id >> parent >> device >> root >> mountpoint;
        tail >> type >> source >> options;
        if (type != "cgroup") continue;
        std::stringstream opts(options);
        bool has = false;
        for (std::string o; std::getline(opts, o, ',');) has = has || o == controller;
        if (!has) continue;
        // Inside a container the mount's root may be the group itself.
        std::string relative = path;
        if (root != "/" && path.rfind(root, 0) == 0) relative = path.substr(root.size());
        return mountpoint + (relative == "/" ? "" : relative);
    }
    return std::nullopt;
}

bool write_file(const std::string& file, const std::string& text, std::string& error) {
    std::ofstream out(file);
    out << text;
    out.flush();
    if (out) return true;
    error = "cannot write " + text + " to " + file + ": " + strerror(errno);
    return false;
}

// Removes the empty groups "mephisto-<pid>-<worker>" under `parent` of supervisors that are gone (killed with
// SIGKILL, they could not remove their own). A group still holding a process is left: rmdir refuses it.
void sweep_stale_groups(const std::string& parent) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("mephisto-", 0) != 0 || !entry.is_directory(ec)) continue;
        const auto dash = name.find('-', 9);
        if (dash == std::string::npos) continue;
        pid_t owner = 0;
        try {
            owner = static_cast<pid_t>(std::stol(name.substr(9, dash - 9)));
        } catch (const std::exception&) {
            continue;
        }
        if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) ::rmdir(entry.path().c_str());
    }
}

// Makes the group `name` under this process's group of `controller`; its directory, or nullopt with `error`.
std::optional<std::string> make_group(const std::string& controller, const std::string& name, std::string& error) {
    const auto parent = own_group(controller);
    if (!parent) {
        error = "no cgroup v1 hierarchy with the " + controller + " controller is mounted";
        return std::nullopt;
    }
    sweep_stale_groups(*parent);
    const std::string dir = *parent + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        error = "cannot create " + dir + ": " + strerror(errno);
        return std::nullopt;
    }
    return dir;
}

}  // namespace

std::unique_ptr<WorkerLimits> WorkerLimits::make(const std::string& name, uint64_t memory, double cpu) {
    std::unique_ptr<WorkerLimits> limits(new WorkerLimits());
    limits->memory_ = memory;
    limits->cpu_ = cpu;
    const std::string group = "mephisto-" + std::to_string(::getpid()) + "-" + name;
    std::string text;
    if (memory > 0) {
        std::string error;
        auto dir = make_group("memory", group, error);
        // The limit first, then the same for memory and swap together (when the kernel counts swap): past it
        // the OOM killer acts, rather than the worker swapping out.
        if (dir && write_file(*dir + "/memory.limit_in_bytes", std::to_string(memory), error)) {
            if (std::filesystem::exists(*dir + "/memory.memsw.limit_in_bytes"))
                (void)write_file(*dir + "/memory.memsw.limit_in_bytes", std::to_string(memory), error);
            limits->memory_group_ = *dir;
            limits->child_.join.push_back(*dir + "/cgroup.procs");
            text = "memory " + format_byte_size(memory) + " (cgroup " + *dir + ")";
        } else {
            if (dir) ::rmdir(dir->c_str());
            limits->child_.address_space = memory;
            text = "memory " + format_byte_size(memory) + " of address space (RLIMIT_AS: " + error + ")";
        }
    }
    if (cpu > 0) {
        std::string error;
        auto dir = make_group("cpu", group, error);
        const long period = 100'000;  // µs
        const long quota = std::max(1000L, std::lround(cpu * period));
        if (dir && write_file(*dir + "/cpu.cfs_period_us", std::to_string(period), error) &&
            write_file(*dir + "/cpu.cfs_quota_us", std::to_string(quota), error)) {
            limits->cpu_group_ = *dir;
            limits->child_.join.push_back(*dir + "/cgroup.procs");
            text += std::string(text.empty() ? "" : ", ") + "cpu " + std::to_string(cpu).substr(0, 4) + " core(s) (cgroup " + *dir + ")";
        } else {
            if (dir) ::rmdir(dir->c_str());
            text += std::string(text.empty() ? "" : ", ") + "cpu not limited (" + error + ")";
        }
    }
    limits->description_ = text;
    return limits;
}

WorkerLimits::~WorkerLimits() {
    for (const auto& dir : {memory_group_, cpu_group_})
        if (!dir.empty()) ::rmdir(dir.c_str());
}

uint64_t WorkerLimits::oom_kills() const {
    if (memory_group_.empty()) return 0;
    std::ifstream control(memory_group_ + "/memory.oom_control");  // "oom_kill 3" among others (Linux 4.13+)
    std::string key;
    uint64_t value = 0;
    while (control >> key >> value)
        if (key == "oom_kill") return value;
    return 0;
}

}  // namespace mephisto
