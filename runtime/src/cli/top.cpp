// `mephisto top`: a live terminal view of a running host, or of every host of its cluster (`--cluster`): its
// pipelines (state, partitions, lag, events/s) and agents (events/s, processed, failures, restarts), refreshed
// every second and sorted by a key the user picks (keys e, l, r, n; q quits), as htop does. Events/s are the
// difference of the agents' counters between two refreshes. Without a terminal (or with --once) it prints one
// view, two samples a second apart, and exits.
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/admin_request.hpp"
#include "cli/commands.hpp"

namespace mephisto::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_interrupted = 0;

// The terminal in the state top needs (no line buffering, no echo, the alternate screen, no cursor), put back as
// it was however top ends.
class Terminal {
public:
    Terminal() {
        if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
        termios raw = saved_;
        raw.c_lflag &= ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        active_ = true;
        std::fputs("\x1b[?1049h\x1b[?25l", stdout);
        std::fflush(stdout);
    }
    ~Terminal() {
        if (!active_) return;
        std::fputs("\x1b[?25h\x1b[?1049l", stdout);
        std::fflush(stdout);
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }
    Terminal(const Terminal&) = delete;
    Terminal& operator=(const Terminal&) = delete;

    static int width() {
        winsize ws{};
        return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 120;
    }
    static int height() {
        winsize ws{};
        return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 ? ws.ws_row : 40;
    }

private:
    termios saved_{};
    bool active_ = false;
};

// A key pressed within `timeout`, or 0.
char read_key(std::chrono::milliseconds timeout) {
    pollfd fd{STDIN_FILENO, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return 0;
    char c = 0;
    return ::read(STDIN_FILENO, &c, 1) == 1 ? c : 0;
}

struct AgentRow {
    std::string host, pipeline, agent;
    double rate = 0;  // events/s since the last refresh
    uint64_t processed = 0, failures = 0, restarts = 0;
    int64_t lag = 0;  // its pipeline's, on its host
    std::string state;
};

struct PipelineRow {
    std::string host, pipeline, state;
    size_t partitions = 0;
    int64_t lag = 0;
    double rate = 0;
    uint64_t restarts = 0;
};

// What the hosts said at one refresh.
struct Sample {
    Clock::time_point at;
    std::vector<AgentRow> agents;
    std::vector<PipelineRow> pipelines;
    std::vector<std::string> problems;  // hosts that did not answer, and why
};

// The hosts to ask: the one given, or with --cluster every host of its pipelines' cluster view.
std::vector<std::pair<std::string, std::string>> hosts_to_ask(const TopOptions& o, std::vector<std::string>& problems) {
    std::vector<std::pair<std::string, std::string>> out;  // (name, host:port)
    if (!o.cluster) return {{o.admin.address, o.admin.address}};
    std::string why;
    auto cluster = admin_get_json(o.admin, "/cluster", false, &why);
    if (!cluster) {
        problems.push_back(why);
        return {};
    }
    for (const auto& h : (*cluster)["hosts"]) {
        if (!h["admin"].is_string()) continue;
        std::string address = h["admin"].get<std::string>();
        if (address.rfind("http://", 0) == 0) address = address.substr(7);
        if (auto slash = address.find('/'); slash != std::string::npos) address.resize(slash);
        out.emplace_back(h["host"].get<std::string>(), address);
    }
    return out;
}

Sample take_sample(const TopOptions& o, const Sample* before) {
    Sample s;
    s.at = Clock::now();
    std::map<std::string, uint64_t> processed_before;  // host/pipeline/agent -> processed
    double seconds = 0;
    if (before) {
        for (const auto& a : before->agents) processed_before[a.host + "/" + a.pipeline + "/" + a.agent] = a.processed;
        seconds = std::chrono::duration<double>(s.at - before->at).count();
    }
    for (const auto& [name, address] : hosts_to_ask(o, s.problems)) {
        AdminOptions ask = o.admin;
        ask.address = address;
        std::string why;
        auto agents = admin_get_json(ask, "/agents", false, &why);
        auto pipelines = agents ? admin_get_json(ask, "/pipelines", false, &why) : std::nullopt;
        if (!agents || !pipelines) {
            s.problems.push_back(name + ": " + why);
            continue;
        }
        std::map<std::string, PipelineRow> rows;
        for (const auto& p : *pipelines) {
            PipelineRow& r = rows[p["app"].get<std::string>()];
            r.host = name;
            r.pipeline = p["app"];
            r.state = p["state"];
            r.partitions = p["partitions"].size();
            for (const auto& part : p["partitions"]) r.lag += part.value("lag", int64_t{0});
        }
        for (const auto& a : *agents) {
            AgentRow r;
            r.host = name;
            r.pipeline = a["pipeline"];
            r.agent = a["agent"];
            r.processed = a["processed"];
            r.failures = a["failures"];
            r.restarts = a["restarts"];
            r.state = a["quarantined"].get<bool>() ? "QUARANTINED" : !a["hung_now"].empty() ? "HUNG" : "";
            auto it = processed_before.find(r.host + "/" + r.pipeline + "/" + r.agent);
            if (it != processed_before.end() && seconds > 0 && r.processed >= it->second)
                r.rate = static_cast<double>(r.processed - it->second) / seconds;
            if (auto p = rows.find(r.pipeline); p != rows.end()) {
                r.lag = p->second.lag;
                p->second.rate += r.rate;
                p->second.restarts += r.restarts;
            }
            s.agents.push_back(std::move(r));
        }
        for (auto& [pipeline, row] : rows) s.pipelines.push_back(std::move(row));
    }
    return s;
}

const char* sort_name(char key) {
    switch (key) {
        case 'l': return "lag";
        case 'r': return "restarts";
        case 'n': return "name";
        default: return "events/s";
    }
}

template <typename Row>
void sort_rows(std::vector<Row>& rows, char key) {
    std::stable_sort(rows.begin(), rows.end(), [key](const Row& a, const Row& b) {
        const auto name = [](const Row& r) { return std::tie(r.host, r.pipeline); };
        switch (key) {
            case 'l': return a.lag != b.lag ? a.lag > b.lag : name(a) < name(b);
            case 'r': return a.restarts != b.restarts ? a.restarts > b.restarts : name(a) < name(b);
            case 'n': return name(a) < name(b);
            default: return a.rate != b.rate ? a.rate > b.rate : name(a) < name(b);
        }
    });
}

// `text` cut or padded to `width` columns, and a space.
std::string column(const std::string& text, size_t width) {
    std::string out = text.substr(0, width);
    out.resize(width, ' ');
    return out + " ";
}

std::string render(const TopOptions& o, const Sample& s, char sort, int width, int height) {
    std::vector<std::string> lines;
    auto add = [&](const std::string& line) { lines.push_back(line.substr(0, static_cast<size_t>(width))); };
    char buf[512];
    double total = 0;
    for (const auto& p : s.pipelines) total += p.rate;
    std::snprintf(buf, sizeof buf, "mephisto top - %s%s - %.0f events/s - sorted by %s (e events/s, l lag, r restarts, n name; q quits)",
                  o.admin.address.c_str(), o.cluster ? " and its cluster" : "", total, sort_name(sort));
    add(buf);
    for (const auto& p : s.problems) add("! " + p);
    add("");
    const bool hosts = o.cluster;
    std::snprintf(buf, sizeof buf, "%s%-24s %-12s %10s %12s %12s %9s", hosts ? "HOST                 " : "", "PIPELINE",
                  "STATE", "PARTITIONS", "LAG", "EVENTS/S", "RESTARTS");
    add(buf);
    auto pipelines = s.pipelines;
    sort_rows(pipelines, sort);
    for (const auto& p : pipelines) {
        std::snprintf(buf, sizeof buf, "%s%-24s %-12s %10zu %12lld %12.1f %9llu", hosts ? column(p.host, 20).c_str() : "",
                      p.pipeline.c_str(), p.state.c_str(), p.partitions, static_cast<long long>(p.lag), p.rate,
                      static_cast<unsigned long long>(p.restarts));
        add(buf);
    }
    add("");
    std::snprintf(buf, sizeof buf, "%s%-24s %-20s %12s %14s %10s %9s  %s", hosts ? "HOST                 " : "", "PIPELINE",
                  "AGENT", "EVENTS/S", "PROCESSED", "FAILURES", "RESTARTS", "STATE");
    add(buf);
    auto agents = s.agents;
    sort_rows(agents, sort);
    for (const auto& a : agents) {
        if (static_cast<int>(lines.size()) >= height - 1) break;
        std::snprintf(buf, sizeof buf, "%s%-24s %-20s %12.1f %14llu %10llu %9llu  %s", hosts ? column(a.host, 20).c_str() : "",
                      a.pipeline.c_str(), a.agent.c_str(), a.rate, static_cast<unsigned long long>(a.processed),
                      static_cast<unsigned long long>(a.failures), static_cast<unsigned long long>(a.restarts),
                      a.state.c_str());
        add(buf);
    }
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

}  // namespace

int top(const TopOptions& o) {
    char sort = o.sort.empty() ? 'e' : o.sort[0];
    if (std::string("elrn").find(sort) == std::string::npos) {
        std::cerr << "--sort must be events, lag, restarts or name\n";
        return 2;
    }
    const bool live = !o.once && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    Sample last = take_sample(o, nullptr);
    if (!live) {
        if (!last.problems.empty() && last.agents.empty() && last.pipelines.empty()) {
            for (const auto& p : last.problems) std::cerr << p << "\n";
            return 1;
        }
        read_key(std::chrono::milliseconds(1000));  // a second between the two samples: the rates
        std::cout << render(o, take_sample(o, &last), sort, 1000, 100000);
        return 0;
    }
    std::signal(SIGINT, [](int) { g_interrupted = 1; });
    std::signal(SIGTERM, [](int) { g_interrupted = 1; });
    Terminal terminal;
    auto show = [&](const Sample& s) {
        std::fputs("\x1b[H\x1b[2J", stdout);
        std::fputs(render(o, s, sort, Terminal::width(), Terminal::height()).c_str(), stdout);
        std::fflush(stdout);
    };
    show(last);
    auto next = Clock::now() + std::chrono::seconds(1);
    while (!g_interrupted) {
        if (Clock::now() >= next) {
            Sample now = take_sample(o, &last);
            show(now);
            last = std::move(now);
            next = Clock::now() + std::chrono::seconds(1);
        }
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
        const char key = read_key(std::max(wait, std::chrono::milliseconds(0)));
        if (key == 'q' || key == 'Q') break;
        if (key && std::string("elrn").find(key) != std::string::npos) {
            sort = key;
            show(last);  // the new order now, on the figures already shown
        }
    }
    return 0;
}

}  // namespace mephisto::cli
