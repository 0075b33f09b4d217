// bench_failover: what the death of a host costs a stateful pipeline (issue 14), with and without standby replicas.
//
// One broker (librdkafka's mock cluster in this process, 127.0.0.1, free port). Each run starts three `mephisto run`
// processes on a word count (examples/word_count's `count` agent, an int64 RocksDB table over P partitions), fills
// the table with K distinct keys, puts a steady load on it (R events/s over the same keys), then kills the owner of
// partition 0 with SIGKILL and times, for the partitions it held:
//   re-join   — the kill -> the first survivor's new assignment (the group's session timeout and rebalance);
//   recovery  — that assignment -> the moved partitions' tables current (the survivors' recovery records);
//   first out — the kill -> the first new record on a moved partition's changelog (its first processed event,
//               flushed at the next commit: up to commit_interval, 200 ms, after it).
// It also counts the changelog records the moved partitions replayed, against their changelogs' length (what a
// host without their state replays), and the cost of following standbys: the CPU time of the hosts' standby
// threads (`mph-standby`, the reading and RocksDB writes; not librdkafka's own fetch threads) and the whole hosts'
// CPU time per changelog record their standbys applied, over the same window of steady load with and without.
// Runs alternate: standby_replicas 1, then 0, then two of the three hosts killed at once with standby_replicas 1
// (the survivor kept standbys only of what it would take over from one of them: the others recover from their
// changelogs), then two scale-outs: a third host joins two that keep each other's partitions as standbys, once
// plainly and once with `warm_up: true`, and the pauses are timed (the partitions that move to the host holding
// their standby, and those that move to the new host, which has no state for them unless it warmed up). Prints
// markdown on stdout; progress on stderr.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>

#include "admin/http_client.hpp"
#include "bench_support.hpp"
#include "common/logging.hpp"
#include "common/wall_clock.hpp"
#include "kafka/embedded_broker.hpp"

#ifndef MEPHISTO_WORD_COUNT_PLUGIN_DIR
#define MEPHISTO_WORD_COUNT_PLUGIN_DIR "build/plugins"
#endif
#ifndef MEPHISTO_BENCH_BINARY
#define MEPHISTO_BENCH_BINARY "build/runtime/mephisto"
#endif

namespace {

using namespace mephisto::bench;
using namespace std::chrono_literals;
using nlohmann::json;

struct Options {
    int keys = 100'000;
    int partitions = 8;
    int runs = 3;
    int rate = 5'000;  // steady load, events/s
    int session_timeout_ms = 4000;
    std::string plugin_dir = MEPHISTO_WORD_COUNT_PLUGIN_DIR;
    std::string binary = MEPHISTO_BENCH_BINARY;
};

std::filesystem::path g_temp_dir;

void usage() {
    std::printf(
        "usage: bench_failover [--keys K] [--partitions P] [--runs R] [--rate N] [--session-timeout-ms MS]\n"
        "                      [--plugin-dir DIR] [--mephisto PATH]\n"
        "  --keys K        distinct keys in the table (default 100000)\n"
        "  --partitions P  partitions of the input and the table (default 8)\n"
        "  --runs R        runs of each: a kill with standby_replicas 1, one with 0, two hosts killed at once, a\n"
        "                  scale-out, a scale-out with warm_up (default 3)\n"
        "  --rate N        steady load during the kill, events/s (default 5000)\n"
        "  --session-timeout-ms MS  the consumers' session.timeout.ms (default 4000)\n"
        "  --plugin-dir D  where word_count.so is (default: the build tree's plugins/)\n"
        "  --mephisto PATH the mephisto binary (default: the build tree's)\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& a = args.flag();
        auto number = [&](long lo, long hi) { return static_cast<int>(args.number(lo, hi)); };
        if (a == "--keys") o.keys = number(1, 10'000'000);
        else if (a == "--partitions") o.partitions = number(3, 256);
        else if (a == "--runs") o.runs = number(1, 50);
        else if (a == "--rate") o.rate = number(100, 1'000'000);
        else if (a == "--session-timeout-ms") o.session_timeout_ms = number(1000, 300'000);
        else if (a == "--plugin-dir") o.plugin_dir = args.value();
        else if (a == "--mephisto") o.binary = args.value();
        else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
        else die("unknown argument '" + a + "' (see --help)");
    }
    return o;
}

std::optional<json> get_json(const std::string& address, const std::string& path) {
    auto reply = mephisto::tcp_http_request(address, "GET", path, {}, 2s);
    if (!reply || reply->status != 200) return std::nullopt;
    json body = json::parse(reply->body, nullptr, false);
    if (body.is_discarded()) return std::nullopt;
    return body;
}

// CPU seconds of a process's threads named `thread` ("" for all of them), from /proc.
double thread_cpu(pid_t pid, const std::string& thread) {
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    double total = 0;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::string comm;
        std::getline(std::ifstream(task.path() / "comm"), comm);
        if (!thread.empty() && comm != thread) continue;
        std::string stat;
        std::getline(std::ifstream(task.path() / "stat"), stat);
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::vector<std::string> fields;
        std::string field;
        for (size_t i = close + 2; i <= stat.size(); ++i) {
            if (i == stat.size() || stat[i] == ' ') {
                fields.push_back(field);
                field.clear();
            } else {
                field += stat[i];
            }
        }
        if (fields.size() > 12) total += (std::stod(fields[11]) + std::stod(fields[12])) / tick;  // utime, stime
    }
    return total;
}

struct Host {
    std::string id;
    std::unique_ptr<MephistoProcess> process;
    std::string admin;  // host:port
};

// What one run does.
struct Scenario {
    int standbys = 0;
    int kills = 1;           // hosts (of three) killed at once
    bool scale_out = false;  // instead of a kill: a third host joins two
    bool warm_up = false;    // `warm_up: true`: the joining host warms its tables up before it joins
};

struct Run {
    int standbys = 0;
    int kills = 1;
    double rejoin = 0, recovery = 0, first_out = 0;
    int64_t replayed = 0, changelog = 0;
    int moved = 0;
    double standby_thread_cpu = 0, host_cpu = 0;  // over the measured window of steady load
    uint64_t followed = 0;                          // changelog records the standbys applied in that window
};

// The steady load: `rate` events/s of random keys "w<i>", i < keys, until stopped.
class Load {
public:
    Load(const std::string& bootstrap, const std::string& topic, int keys, int rate) {
        thread_ = std::thread([=, this] {
            rd_kafka_t* p = client(RD_KAFKA_PRODUCER, producer_props(bootstrap));
            std::mt19937 random(42);
            const auto start = Clock::now();
            long sent = 0;
            while (!stop_) {
                const long due = static_cast<long>(seconds(Clock::now() - start) * rate);
                for (; sent < due; ++sent) {
                    const std::string word = "w" + std::to_string(random() % static_cast<unsigned>(keys));
                    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(word.data(), word.size()), RD_KAFKA_V_VALUE(const_cast<char*>(word.data()), word.size()),
                                      RD_KAFKA_V_END);
                }
                rd_kafka_poll(p, 5);
            }
            rd_kafka_flush(p, 10'000);
            rd_kafka_destroy(p);
        });
    }
    ~Load() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

std::map<int, int64_t> changelog_ends(rd_kafka_t* watcher, const std::string& topic, int partitions) {
    std::map<int, int64_t> ends;
    for (int p = 0; p < partitions; ++p) {
        int64_t low = 0, high = 0;
        if (rd_kafka_query_watermark_offsets(watcher, topic.c_str(), p, &low, &high, 5000)) die("cannot read " + topic);
        ends[p] = high;
    }
    return ends;
}

// Who holds each partition active, and whether every partition has `standbys` standbys on other live hosts, as
// host `asked` sees the cluster; empty while the view is not settled.
std::map<int, std::string> settled_owners(const std::vector<Host>& hosts, const std::string& asked, size_t live,
                                          int partitions, int standbys) {
    std::string address;
    std::set<std::string> alive;
    for (const auto& h : hosts)
        if (h.process) {
            alive.insert(h.id);
            if (h.id == asked) address = h.admin;
        }
    auto view = get_json(address, "/cluster");
    if (!view || (*view)["hosts"].size() != live) return {};
    std::map<int, std::string> owners;
    std::map<int, int> standby_count;
    for (const auto& h : (*view)["hosts"]) {
        if (!alive.count(h["host"].get<std::string>())) return {};
        for (const auto& p : h["pipelines"]) {
            for (const auto& a : p["active"]) {
                if (a["recovering"] == true || owners.count(a["partition"].get<int>())) return {};
                owners[a["partition"].get<int>()] = h["host"];
            }
            for (const auto& s : p["standby"]) ++standby_count[s["partition"].get<int>()];
        }
    }
    if (static_cast<int>(owners.size()) != partitions) return {};
    for (int p = 0; p < partitions; ++p)
        if (standby_count[p] != standbys) return {};
    return owners;
}

template <typename F>
void await(const char* what, std::chrono::seconds timeout, F condition) {
    const auto deadline = Clock::now() + timeout;
    while (!condition()) {
        if (Clock::now() > deadline) die(std::string("timed out waiting until ") + what);
        std::this_thread::sleep_for(20ms);
    }
}

// A scale-out: a third host joins two that share the table (each keeping the other's partitions as standbys). The
// partitions that move between the two land on their standby; those that move to the new host have no state there.
struct ScaleOut {
    double rejoin = 0;   // the join -> the new host's assignment (its warm-up, then the group's rebalance)
    double warm_up = 0;  // of which its warm-up
    struct Move {
        int partition = 0;
        bool standby = false;      // a standby (or a warmed-up replica) took it over
        bool to_new_host = false;  // it moved to the joining host
        int64_t replayed = 0, changelog = 0;
        double recovery = 0;  // assigned -> tables current
    };
    std::vector<Move> moves;
};

Run run_once(const Options& o, const std::string& bootstrap, mephisto::EmbeddedBroker& broker, rd_kafka_t* watcher,
             const Scenario& scenario, int run, ScaleOut* scale_out = nullptr) {
    Run result;
    const int standbys = scenario.standbys;
    result.standbys = standbys;
    result.kills = scenario.kills;
    const std::string app = std::string(scale_out ? (scenario.warm_up ? "sw" : "so") : scenario.kills > 1 ? "f2" : "fo") +
                            std::to_string(standbys) + "-" + std::to_string(run);
    const std::string input = app + "-in", changelog = app + "-word_counts-changelog";
    for (const auto& [topic, n] : std::map<std::string, int>{{input, o.partitions}, {changelog, o.partitions},
                                                             {app + "-__cluster", 1}})
        if (auto st = broker.create_topic(topic, n); !st) die(st.error());
    const auto dir = g_temp_dir / app;
    std::filesystem::create_directories(dir);
    const auto yaml = dir / "p.yaml";
    std::ofstream(yaml) << "# written by bench_failover\napp: {id: " << app << "}\nbroker: {bootstrap: \"" << bootstrap
                        << "\"}\nplugins: {dir: \"" << std::filesystem::absolute(o.plugin_dir).string() << "\"}\n"
                        << "consumer: {session.timeout.ms: " << o.session_timeout_ms << ", heartbeat.interval.ms: 300}\n"
                        << "commit_interval: 200ms\nstandby_replicas: " << standbys << "\n"
                        << (scenario.warm_up ? "warm_up: true\n" : "")
                        << "topics:\n  " << input << ": {partitions: " << o.partitions << "}\n"
                        << "tables:\n  word_counts: {value: int64}\n"
                        << "agents:\n  count: {plugin: word_count, agent: count, from: " << input
                        << ", tables: [word_counts]}\n";
    std::vector<Host> hosts;
    auto start = [&](const std::string& id) {
        Host h;
        h.id = id;
        h.process = std::make_unique<MephistoProcess>(
            o.binary, std::vector<std::string>{"run", yaml.string(), "--broker", "kafka://" + bootstrap, "--host-id", id,
                                               "--state-dir", (dir / id).string(), "--admin", "127.0.0.1:0"});
        const auto [at, line] = h.process->await("admin API on http://", 0, 60s);
        const std::string text = h.process->last_line_with("admin API on http://");
        const auto start = text.find("http://") + 7;
        h.admin = text.substr(start, text.find('/', start) - start);
        hosts.push_back(std::move(h));
    };
    start("alpha");
    start("beta");
    if (!scale_out) start("gamma");
    const size_t first_hosts = hosts.size();
    await("the group settled", 120s,
          [&] { return !settled_owners(hosts, "alpha", first_hosts, o.partitions, standbys).empty(); });

    // The table: every key once, then the standbys current.
    {
        Acks acks;
        rd_kafka_t* p = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
        for (int i = 0; i < o.keys; ++i) {
            const std::string word = "w" + std::to_string(i);
            while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(input.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_KEY(word.data(), word.size()),
                                     RD_KAFKA_V_VALUE(const_cast<char*>(word.data()), word.size()), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 10);
        }
        if (rd_kafka_flush(p, 60'000) || acks.ok != o.keys) die("the table's keys were not all acknowledged");
        rd_kafka_destroy(p);
    }
    await("every key is in the changelog", 120s, [&] {
        int64_t total = 0;
        for (const auto& [p, end] : changelog_ends(watcher, changelog, o.partitions)) total += end;
        return total >= o.keys;
    });
    auto standbys_at_end = [&] {
        const auto ends = changelog_ends(watcher, changelog, o.partitions);
        for (const auto& h : hosts) {
            if (!h.process) continue;
            auto status = get_json(h.admin, "/pipelines");
            if (!status) return false;
            for (const auto& s : (*status)[0]["standby"])
                if (s["offset"] != ends.at(s["partition"].get<int>()) - 1) return false;
        }
        return true;
    };
    await("the standbys caught up", 120s, standbys_at_end);

    Load load(bootstrap, input, o.keys, o.rate);
    std::this_thread::sleep_for(1s);  // the load flows
    // The cost of following: 5 s of steady load, the hosts' CPU and their standbys'.
    auto followed = [&] {
        uint64_t n = 0;
        for (const auto& h : hosts)
            if (auto status = get_json(h.admin, "/pipelines")) n += (*status)[0]["standby_records_applied"].get<uint64_t>();
        return n;
    };
    auto cpu = [&](const std::string& thread) {
        double total = 0;
        for (const auto& h : hosts) total += thread_cpu(h.process->pid(), thread);
        return total;
    };
    const uint64_t followed_before = followed();
    const double standby_cpu_before = cpu("mph-standby"), host_cpu_before = cpu("");
    std::this_thread::sleep_for(5s);
    result.followed = followed() - followed_before;
    result.standby_thread_cpu = cpu("mph-standby") - standby_cpu_before;
    result.host_cpu = cpu("") - host_cpu_before;

    if (scale_out) {
        const auto before = settled_owners(hosts, "alpha", 2, o.partitions, standbys);
        if (before.empty()) die("the view was not settled before the scale-out");
        const int64_t joined_ms = mephisto::wall_ms();
        const auto joined = Clock::now();
        start("gamma");
        const auto [assigned, line] = hosts.back().process->await("] assigned", 0, 120s);
        scale_out->rejoin = seconds(assigned - joined);
        if (scenario.warm_up) {
            auto status = get_json(hosts.back().admin, "/pipelines");
            if (!status || !(*status)[0]["warm_up"]["duration_ms"].is_number()) die("the new host says nothing of its warm-up");
            scale_out->warm_up = static_cast<double>((*status)[0]["warm_up"]["duration_ms"].get<int64_t>()) / 1000.0;
            std::fprintf(stderr, "scale-out, run %d: the new host's warm-up: %s\n", run,
                         (*status)[0]["warm_up"].dump().c_str());
        }
        std::map<int, std::string> after;
        await("the group settled with the new host", 180s, [&] {
            return !(after = settled_owners(hosts, "alpha", 3, o.partitions, standbys)).empty();
        });
        for (const auto& [p, id] : after) {
            if (before.at(p) == id) continue;
            const Host& owner = *std::find_if(hosts.begin(), hosts.end(), [&](const Host& h) { return h.id == id; });
            auto status = get_json(owner.admin, "/pipelines");
            if (!status) die("no /pipelines from " + id);
            ScaleOut::Move move;
            move.partition = p;
            for (const auto& r : (*status)[0]["recoveries"])
                if (r["partition"] == p && r["completed"] == true && r["started_ms"].get<int64_t>() >= joined_ms) {
                    move.standby = r["standby_offset"].is_number();
                    move.replayed = r["replayed"];
                    move.changelog = r["end"];
                    move.recovery = static_cast<double>(r["duration_ms"].get<int64_t>()) / 1000.0;
                }
            move.to_new_host = id == hosts.back().id;
            std::fprintf(stderr, "scale-out, run %d: latest[%d] %s -> %s%s: replayed %lld of %lld in %.3f s\n", run, p,
                         before.at(p).c_str(), id.c_str(),
                         move.standby ? (move.to_new_host ? " (warmed up there)" : " (its standby)") : " (no state there)",
                         static_cast<long long>(move.replayed), static_cast<long long>(move.changelog), move.recovery);
            scale_out->moves.push_back(move);
        }
        for (auto& h : hosts) h.process.reset();
        std::filesystem::remove_all(dir);
        return result;
    }

    // The kill.
    const auto owners = settled_owners(hosts, "alpha", 3, o.partitions, standbys);
    if (owners.empty()) die("the view was not settled before the kill");
    std::set<std::string> victims{owners.at(0)};  // the owner of partition 0, and the next owners while more die
    for (const auto& [p, id] : owners)
        if (static_cast<int>(victims.size()) < scenario.kills) victims.insert(id);
    std::string victim;
    for (const auto& id : victims) victim += (victim.empty() ? "" : " and ") + id;
    std::set<int> moved;
    for (const auto& [p, id] : owners)
        if (victims.count(id)) moved.insert(p);
    result.moved = static_cast<int>(moved.size());
    std::map<std::string, size_t> marker;
    std::vector<Host*> dead;
    for (auto& h : hosts) {
        if (victims.count(h.id)) dead.push_back(&h);
        else marker[h.id] = h.process->line_count();
    }
    const int64_t killed_ms = mephisto::wall_ms();
    const auto killed = Clock::now();
    for (Host* h : dead) ::kill(h->process->pid(), SIGKILL);
    for (Host* h : dead) h->process.reset();  // reaps it

    // Re-join: the first new assignment on a survivor.
    std::optional<Clock::time_point> assigned;
    await("a survivor was assigned the partitions", 120s, [&] {
        for (auto& h : hosts)
            if (h.process)
                if (auto found = h.process->find("] assigned", marker[h.id])) assigned = std::min(assigned.value_or(found->first), found->first);
        return assigned.has_value();
    });
    // Recovery: the moved partitions' tables current on their new owners.
    const auto ends_at_kill = changelog_ends(watcher, changelog, o.partitions);
    // Each moved partition's recoveries since the kill, oldest first: a second rebalance (the mock's, when the dead
    // member's session expires after a first one) can move a partition again, and what it replays then counts too.
    std::map<int, std::vector<json>> recovered;
    std::optional<Clock::time_point> first_out;
    await("the moved partitions recovered and processed", 180s, [&] {
        if (!first_out) {
            const auto ends = changelog_ends(watcher, changelog, o.partitions);
            for (int p : moved)
                if (ends.at(p) > ends_at_kill.at(p)) first_out = Clock::now();
        }
        recovered.clear();
        for (const auto& h : hosts) {
            if (!h.process) continue;
            auto status = get_json(h.admin, "/pipelines");
            if (!status) return false;
            for (const auto& r : (*status)[0]["recoveries"])
                if (r["started_ms"].get<int64_t>() >= killed_ms && moved.count(r["partition"].get<int>()))
                    recovered[r["partition"].get<int>()].push_back(r);
        }
        size_t done = 0;
        for (const auto& [p, list] : recovered)
            done += std::any_of(list.begin(), list.end(), [](const json& r) { return r["completed"] == true; }) ? 1 : 0;
        return first_out && done == moved.size();
    });
    double recovery_ms = 0;
    for (auto& [p, list] : recovered) {
        std::sort(list.begin(), list.end(),
                  [](const json& a, const json& b) { return a["started_ms"].get<int64_t>() < b["started_ms"].get<int64_t>(); });
        const json& first = *std::find_if(list.begin(), list.end(), [](const json& r) { return r["completed"] == true; });
        recovery_ms = std::max(recovery_ms, static_cast<double>(first["duration_ms"].get<int64_t>()));
        result.changelog += first["end"].get<int64_t>();
        for (const auto& r : list) result.replayed += r["replayed"].get<int64_t>();
    }
    result.rejoin = seconds(*assigned - killed);
    result.recovery = recovery_ms / 1000.0;
    result.first_out = seconds(*first_out - killed);
    std::fprintf(stderr,
                 "standby_replicas %d, run %d: %s (killed) held %d partition(s); re-join %.3f s, recovery %.3f s, first out %.3f s; "
                 "replayed %lld of %lld changelog record(s); standbys followed %llu record(s) in 5 s\n",
                 standbys, run, victim.c_str(), result.moved, result.rejoin, result.recovery, result.first_out,
                 static_cast<long long>(result.replayed), static_cast<long long>(result.changelog),
                 static_cast<unsigned long long>(result.followed));
    for (auto& h : hosts) h.process.reset();  // SIGTERM, waited for
    std::filesystem::remove_all(dir);
    return result;
}

}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(stderr, "bench_failover: %s\n", what.c_str());
    kill_child_process();  // (every host also dies with this process: PR_SET_PDEATHSIG)
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / "word_count.so"))
        die(o.plugin_dir + "/word_count.so not found (build the `word_count` target, or pass --plugin-dir)");
    if (!std::filesystem::exists(o.binary)) die(o.binary + " not found (build `mephisto`, or pass --mephisto)");
    mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::warn);
    auto broker = mephisto::EmbeddedBroker::start(0, 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();
    char tmpl[] = "/tmp/bench_failover.XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp failed");
    g_temp_dir = tmpl;
    rd_kafka_t* watcher = client(RD_KAFKA_CONSUMER, consumer_props(bootstrap, "bench-failover-watcher"));

    std::vector<Run> with, without, two_killed;
    std::vector<ScaleOut> scale_outs(o.runs), warm_scale_outs(o.runs);
    for (int run = 0; run < o.runs; ++run) {
        with.push_back(run_once(o, bootstrap, **broker, watcher, {.standbys = 1}, run));
        without.push_back(run_once(o, bootstrap, **broker, watcher, {.standbys = 0}, run));
        two_killed.push_back(run_once(o, bootstrap, **broker, watcher, {.standbys = 1, .kills = 2}, run));
        run_once(o, bootstrap, **broker, watcher, {.standbys = 1, .scale_out = true}, run, &scale_outs[run]);
        run_once(o, bootstrap, **broker, watcher, {.standbys = 1, .scale_out = true, .warm_up = true}, run,
                 &warm_scale_outs[run]);
    }
    rd_kafka_destroy(watcher);
    std::filesystem::remove_all(g_temp_dir);

    std::printf("## Failover: kill -9 of one of three hosts (`build/bench/bench_failover --runs %d`)\n\n", o.runs);
    std::printf("%d keys in an int64 RocksDB table over %d partitions, a steady load of %d events/s, session.timeout.ms "
                "%d, commit_interval 200 ms; the owner of partition 0 is killed. Medians of %d runs each.\n\n",
                o.keys, o.partitions, o.rate, o.session_timeout_ms, o.runs);
    std::printf("| standby_replicas | hosts killed | re-join (kill -> assigned) | recovery (assigned -> tables current) "
                "| kill -> first out | changelog records replayed | of the moved partitions' changelogs |\n"
                "|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto* runs : {&with, &without, &two_killed}) {
        std::vector<double> rejoin, recovery, out, replayed, changelog;
        for (const auto& r : *runs) {
            rejoin.push_back(r.rejoin);
            recovery.push_back(r.recovery);
            out.push_back(r.first_out);
            replayed.push_back(static_cast<double>(r.replayed));
            changelog.push_back(static_cast<double>(r.changelog));
        }
        std::printf("| %d | %d | %.3f s | %.3f s | %.3f s | %.0f | %.0f |\n", runs->front().standbys,
                    runs->front().kills, median(rejoin), median(recovery), median(out), median(replayed),
                    median(changelog));
    }
    std::printf("\nPer run:\n\n| standby_replicas | hosts killed | run | partitions moved | re-join | recovery | first out "
                "| replayed |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto* runs : {&with, &without, &two_killed})
        for (size_t i = 0; i < runs->size(); ++i) {
            const Run& r = (*runs)[i];
            std::printf("| %d | %d | %zu | %d | %.3f s | %.3f s | %.3f s | %lld |\n", r.standbys, r.kills, i + 1, r.moved,
                        r.rejoin, r.recovery, r.first_out, static_cast<long long>(r.replayed));
        }
    std::vector<double> thread_per, host_per, host_without;
    for (const auto& r : with) {
        if (r.followed == 0) continue;
        thread_per.push_back(r.standby_thread_cpu / static_cast<double>(r.followed) * 1e6);
        host_per.push_back(r.host_cpu);
    }
    for (const auto& r : without) host_without.push_back(r.host_cpu);
    uint64_t followed = 0;
    for (const auto& r : with) followed += r.followed;
    std::printf("\n### The cost of following standbys (5 s of the steady load, three hosts)\n\n");
    std::printf("| | median |\n|:--|---:|\n");
    std::printf("| changelog records the standbys applied | %.0f |\n", static_cast<double>(followed) / o.runs);
    std::printf("| standby threads' CPU per record applied | %.2f µs |\n", thread_per.empty() ? 0.0 : median(thread_per));
    std::printf("| the three hosts' CPU, with standbys | %.2f s |\n", host_per.empty() ? 0.0 : median(host_per));
    std::printf("| the three hosts' CPU, without | %.2f s |\n", median(host_without));
    if (!host_per.empty() && followed > 0)
        std::printf("| the difference per record applied | %.2f µs |\n",
                    (median(host_per) - median(host_without)) / (static_cast<double>(followed) / o.runs) * 1e6);
    // The scale-outs' pauses.
    auto med = [](const std::vector<double>& v) { return v.empty() ? 0.0 : median(v); };
    std::printf("\n### Scale-out: a third host joins two (standby_replicas 1, the same table and load)\n\n");
    std::printf("Join -> the new host assigned (with a warm-up: the warm-up, then the group's rebalance), and per moved "
                "partition its recovery (assigned -> tables current) and the records it replayed; medians over %d runs:"
                "\n\n", o.runs);
    std::printf("| the new host | join -> assigned | of which warm-up | moved to | partitions | recovery | records replayed "
                "|\n|:--|---:|---:|:--|---:|---:|---:|\n");
    for (const auto* runs : {&scale_outs, &warm_scale_outs}) {
        std::vector<double> rejoin, warm_up, standby_pause, fresh_pause, standby_replayed, fresh_replayed;
        for (const auto& so : *runs) {
            rejoin.push_back(so.rejoin);
            warm_up.push_back(so.warm_up);
            for (const auto& m : so.moves) {
                (m.to_new_host ? fresh_pause : standby_pause).push_back(m.recovery);
                (m.to_new_host ? fresh_replayed : standby_replayed).push_back(static_cast<double>(m.replayed));
            }
        }
        const bool warm = runs == &warm_scale_outs;
        const char* how = warm ? "warms up first" : "joins at once";
        std::printf("| %s | %.3f s | %.3f s | the host keeping its standby | %zu | %.3f s | %.0f |\n", how, med(rejoin),
                    med(warm_up), standby_pause.size(), med(standby_pause), med(standby_replayed));
        std::printf("| %s | | | the new host (%s) | %zu | %.3f s | %.0f |\n", how,
                    warm ? "warmed up" : "no state there", fresh_pause.size(), med(fresh_pause), med(fresh_replayed));
    }
    return 0;
}
