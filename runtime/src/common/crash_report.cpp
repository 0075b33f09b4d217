#include "common/crash_report.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common/call_slots.hpp"

namespace mephisto {
namespace {

thread_local PluginCallRecord t_record;
std::atomic<int> g_log_fd{-1};
std::atomic<bool> g_exit_allowed{false};
std::atomic<bool> g_reported{false};  // one line per process: the first thread to fail tells
bool g_json = false;
long g_utc_offset_s = 0;  // the log's local time, read once at install (localtime_r is not signal-safe)

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS};

const char* signal_name(int sig) {
    switch (sig) {
        case SIGSEGV: return "SIGSEGV (segmentation fault)";
        case SIGBUS: return "SIGBUS (bus error)";
        case SIGFPE: return "SIGFPE (arithmetic exception)";
        case SIGILL: return "SIGILL (illegal instruction)";
        case SIGABRT: return "SIGABRT (abort)";
        case SIGSYS: return "SIGSYS (bad system call)";
        default: return "a fatal signal";
    }
}

// A line built in a fixed buffer without allocating: usable in a signal handler on a small alternate stack.
class Line {
public:
    Line& text(const char* s) {
        while (s && *s && n_ < sizeof buf_ - 2) put(*s++);
        return *this;
    }
    // Names come from plugins: in JSON, quotes, backslashes and control characters are escaped.
    Line& name(const char* s) {
        if (!s) return text("?");
        for (; *s && n_ < sizeof buf_ - 8; ++s) {
            const auto c = static_cast<unsigned char>(*s);
            if (g_json && (c == '"' || c == '\\')) {
                put('\\');
                put(static_cast<char>(c));
            } else if (c < 0x20) {
                put('?');
            } else {
                put(static_cast<char>(c));
            }
        }
        return *this;
    }
    Line& number(int64_t v, int width = 0) {
        char digits[24];
        int k = 0;
        uint64_t u = v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
        do digits[k++] = static_cast<char>('0' + u % 10);
        while ((u /= 10) > 0 && k < 20);
        while (k < width && k < 20) digits[k++] = '0';
        if (v < 0) put('-');
        while (k > 0) put(digits[--k]);
        return *this;
    }
    Line& hex(uintptr_t v) {
        text("0x");
        char digits[2 * sizeof v];
        int k = 0;
        do digits[k++] = "0123456789abcdef"[v & 0xf];
        while ((v >>= 4) > 0);
        while (k > 0) put(digits[--k]);
        return *this;
    }
    void write_out() {
        buf_[n_++] = '\n';
        write_all(STDERR_FILENO);
        if (const int fd = g_log_fd.load(std::memory_order_relaxed); fd >= 0) write_all(fd);
    }

private:
    void put(char c) {
        if (n_ < sizeof buf_ - 1) buf_[n_++] = c;
    }
    void write_all(int fd) const {
        for (size_t done = 0; done < n_;) {
            const ssize_t w = ::write(fd, buf_ + done, n_ - done);
            if (w <= 0) return;
            done += static_cast<size_t>(w);
        }
    }
    char buf_[3072];
    size_t n_ = 0;
};

// "2026-12-03 08:12:01.123" in the log's time zone, from the epoch by arithmetic alone (Howard Hinnant's
// civil_from_days).
void timestamp(Line& line) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t secs = now.tv_sec + g_utc_offset_s;
    int64_t days = secs / 86400, rest = secs % 86400;
    if (rest < 0) {
        rest += 86400;
        --days;
    }
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const int64_t doe = days - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t day = doy - (153 * mp + 2) / 5 + 1;
    const int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const int64_t year = yoe + era * 400 + (month <= 2);
    line.number(year).text("-").number(month, 2).text("-").number(day, 2);
    line.text(g_json ? "T" : " ").number(rest / 3600, 2).text(":").number(rest / 60 % 60, 2).text(":");
    line.number(rest % 60, 2).text(".").number(now.tv_nsec / 1'000'000, 3);
}

// The start of a log line at level critical, logger "host", as the log's own lines look.
void begin(Line& line) {
    if (g_json) {
        line.text("{\"ts\":\"");
        timestamp(line);
        line.text("\",\"level\":\"critical\",\"logger\":\"host\",\"msg\":\"");
    } else {
        timestamp(line);
        line.text(" critical [host] ");
    }
}

void end(Line& line) {
    if (g_json) line.text("\"}");
    line.write_out();
}

// "plugin P (sha1 S), agent A, on_event of topic[partition]@offset, pipeline X"
void describe_call(Line& line, const PluginCallRecord& r) {
    line.text("plugin ").name(r.plugin);
    if (r.sha1 && *r.sha1) line.text(" (sha1 ").name(r.sha1).text(")");
    if (r.agent) line.text(", agent ").name(r.agent);
    line.text(", in ").name(r.callback ? r.callback : "a callback");
    if (r.topic) {
        line.text(" of ").name(r.topic).text("[").number(r.partition).text("]");
        if (r.offset >= 0) line.text("@").number(r.offset);
    } else if (r.partition >= 0) {
        line.text(" of partition ").number(r.partition);
    }
    if (r.pipeline) line.text(", pipeline ").name(r.pipeline);
}

void on_fatal_signal(int sig, siginfo_t* info, void*) {
    call_slots::mark_fault(sig);  // for the supervisor, which counts the crashes of each record
    if (!g_reported.exchange(true)) {
        const PluginCallRecord r = t_record;
        Line line;
        begin(line);
        line.text("fatal signal ").text(signal_name(sig));
        if ((sig == SIGSEGV || sig == SIGBUS) && info) line.text(" at address ").hex(reinterpret_cast<uintptr_t>(info->si_addr));
        if (r.plugin) {
            line.text(" in ");
            describe_call(line, r);
            line.text("; the host dies now (restarted, it processes again what it had not committed)");
        } else {
            line.text(" in the host itself, outside any plugin call; the host dies now");
        }
        end(line);
    }
    // The default action now: the process dies of this signal, with its usual exit status and core dump.
    signal(sig, SIG_DFL);
    raise(sig);
}

void on_exit() {
    if (g_exit_allowed.load()) return;
    call_slots::mark_fault(call_slots::kFaultExit);
    const PluginCallRecord r = t_record;
    Line line;
    begin(line);
    if (r.plugin) {
        line.text("the process was asked to exit by ");
        describe_call(line, r);
        line.text("; a plugin may not end the host: exiting with status ").number(kExitPluginExited);
    } else {
        line.text("exit was called outside the host's own stop and outside any plugin call it knows of");
        line.text("; exiting with status ").number(kExitPluginExited);
    }
    end(line);
    _exit(kExitPluginExited);  // no clean stop, no further exit handlers: this was not one
}

struct AltStack {
    void* memory = nullptr;
    size_t size = 0;
    ~AltStack() {
        if (!memory) return;
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, nullptr);
        munmap(memory, size);
    }
};
thread_local AltStack t_alt_stack;

}  // namespace

PluginCall::PluginCall(const PluginCallRecord& record) noexcept : saved_(t_record) {
    t_record = record;
    call_slots::publish(record);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // recorded before the plugin runs
}

PluginCall::~PluginCall() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    t_record = saved_;
    call_slots::publish(saved_);
}

PluginCallRecord current_plugin_call() { return t_record; }

namespace crash_report {

void install(bool json) {
    g_json = json;
    const time_t now = time(nullptr);
    tm local{};
    if (localtime_r(&now, &local)) g_utc_offset_s = local.tm_gmtoff;
    prepare_thread();
    struct sigaction action {};
    action.sa_sigaction = on_fatal_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (int sig : kSignals) sigaction(sig, &action, nullptr);
    std::atexit(on_exit);
    std::at_quick_exit(on_exit);
}

void set_log_fd(int fd) { g_log_fd.store(fd); }

void prepare_thread() {
    if (t_alt_stack.memory) return;
    const long minimum = sysconf(_SC_MINSIGSTKSZ);
    const size_t size = std::max<size_t>(64 * 1024, minimum > 0 ? static_cast<size_t>(minimum) * 4 : 0);
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (memory == MAP_FAILED) return;  // no alternate stack: a stack overflow then dies unreported
    stack_t stack{};
    stack.ss_sp = memory;
    stack.ss_size = size;
    if (sigaltstack(&stack, nullptr) != 0) {
        munmap(memory, size);
        return;
    }
    t_alt_stack.memory = memory;
    t_alt_stack.size = size;
}

void allow_exit() { g_exit_allowed.store(true); }

}  // namespace crash_report
}  // namespace mephisto
