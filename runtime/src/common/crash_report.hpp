#pragma once
// A crash names its cause. Before each call into a plugin, the calling thread records what it is about to run
// (plain stores into thread-local memory, no system call). When a fatal signal arrives (a segfault, an abort, a
// stack overflow in a plugin), a handler writes, async-signal-safely, one line to stderr and the log file with
// the signal and that record, then lets the signal kill the process as before (exit 128+signal, core dump).
// A plugin that calls exit() (or quick_exit) from a constructor or a callback must never look like a clean
// stop either: an exit the host did not ask for is reported the same way and ends with kExitPluginExited.
#include <cstdint>

namespace mephisto {

// The process's exit status when something other than the host called exit (a plugin, most likely).
inline constexpr int kExitPluginExited = 70;  // EX_SOFTWARE

// What the thread is running of a plugin's. Every pointer must stay valid for the whole call (names owned
// by the pipeline, the agent and the plugin do); null: not known.
struct PluginCallRecord {
    const char* pipeline = nullptr;  // the app id
    const char* agent = nullptr;     // the agent or timer
    const char* plugin = nullptr;    // the plugin's name, or its file while it loads
    const char* sha1 = nullptr;      // of the loaded image
    const char* callback = nullptr;  // "on_event", "create", "init", "the value codec's validate"...
    const char* topic = nullptr;     // the event's, when the call is about one
    int32_t partition = -1;
    int64_t offset = -1;
};

// The record of the calling thread for as long as it lives; the previous one comes back after (a plugin's
// callback may call the host, which may call another plugin's codec).
class PluginCall {
public:
    explicit PluginCall(const PluginCallRecord& record) noexcept;
    ~PluginCall();
    PluginCall(const PluginCall&) = delete;
    PluginCall& operator=(const PluginCall&) = delete;

private:
    PluginCallRecord saved_;
};

// The calling thread's record (all null outside plugin calls): a nested call changes what it must and keeps
// the rest (a table codec called from an agent's on_event keeps the agent and the event).
PluginCallRecord current_plugin_call();

namespace crash_report {

// Installs the fatal-signal handlers (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS) and the exit guard,
// and prepares the calling thread. `json`: the line is a JSON object, like the log's lines. Once, from main.
void install(bool json);
// Also writes the line to this file descriptor (the --log-file, opened for appending).
void set_log_fd(int fd);
// Gives the calling thread an alternate signal stack, so that a stack overflow can still be reported. Every
// thread that calls plugins calls it once, first; it is undone when the thread exits.
void prepare_thread();
// The exit that follows is the host's own (main returns, or a deliberate _exit): not reported.
void allow_exit();

}  // namespace crash_report
}  // namespace mephisto
