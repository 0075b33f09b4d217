// bench_supervised: what process isolation costs (issue 12), in two figures.
//
// 1. Throughput. One broker (librdkafka's mock cluster in this process, 127.0.0.1, free port), one input topic
//    preloaded once. Then, R times, in rotating order:
//      raw        — the raw librdkafka loop of bench_support (the baseline every figure is a ratio against);
//      in-process — `mephisto run FILE --isolation none`: the pass-through pipeline in the host process;
//      supervised — `mephisto run DIR --isolation process`: the same pipeline in a worker process of a
//                   supervisor.
//    Both hosts are real `mephisto` processes measured the same way from outside: from the first output on the
//    output topic to the last (the output topic's high watermarks, polled every 5 ms, reaching N). Each writes
//    to a fresh output topic with a fresh group.
// 2. Crash to first event. A supervised pipeline; its worker is killed (SIGKILL) while idle, one record is
//    produced, and the time to its output is split by the supervisor's and worker's log lines into
//    restart (kill -> the new worker runs its pipeline), group re-join (-> partitions assigned) and first
//    event (-> the output is on the broker).
// Prints markdown on stdout; progress on stderr.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "bench_support.hpp"
#include "common/logging.hpp"
#include "kafka/embedded_broker.hpp"

#ifndef MEPHISTO_BENCH_PLUGIN_DIR
#define MEPHISTO_BENCH_PLUGIN_DIR "build/bench/plugins"
#endif
#ifndef MEPHISTO_BENCH_BINARY
#define MEPHISTO_BENCH_BINARY "build/runtime/mephisto"
#endif

namespace {

using namespace mephisto::bench;
using namespace std::chrono_literals;

struct Options {
    long events = 1'000'000;
    int runs = 3;
    int restarts = 3;
    int partitions = 0;
    int session_timeout_ms = 4000;  // of the restart figure's pipeline
    std::string plugin_dir = MEPHISTO_BENCH_PLUGIN_DIR;
    std::string binary = MEPHISTO_BENCH_BINARY;
};

std::filesystem::path g_temp_dir;

void usage() {
    std::printf(
        "usage: bench_supervised [--events N] [--runs R] [--restarts K] [--partitions P] [--session-timeout-ms MS]\n"
        "                        [--plugin-dir DIR] [--mephisto PATH]\n"
        "  --events N      events preloaded and passed through per run (default 1000000)\n"
        "  --runs R        runs of each side: raw, in-process host, supervised host (default 3)\n"
        "  --restarts K    worker kills timed for the crash-to-first-event figure (default 3; 0: none)\n"
        "  --partitions P  partitions of the topics (default: enough for the mock's 5 MiB per partition)\n"
        "  --session-timeout-ms MS  the restart pipeline's consumer session.timeout.ms (default 4000)\n"
        "  --plugin-dir D  where passthrough.so is (default: the build tree's bench/plugins)\n"
        "  --mephisto PATH the mephisto binary (default: the build tree's)\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& a = args.flag();
        auto value = [&] { return args.value(); };
        auto number = [&](long lo, long hi) { return args.number(lo, hi); };
        if (a == "--events") o.events = number(1, 100'000'000);
        else if (a == "--runs") o.runs = static_cast<int>(number(1, 100));
        else if (a == "--restarts") o.restarts = static_cast<int>(number(0, 100));
        else if (a == "--partitions") o.partitions = static_cast<int>(number(1, 1024));
        else if (a == "--session-timeout-ms") o.session_timeout_ms = static_cast<int>(number(1000, 300'000));
        else if (a == "--plugin-dir") o.plugin_dir = value();
        else if (a == "--mephisto") o.binary = value();
        else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
        else die("unknown argument '" + a + "' (see --help)");
    }
    return o;
}

// As bench_passthrough: the input must fit the mock's 5 MiB per partition.
int partitions_for(const Options& o) {
    if (o.partitions > 0) return o.partitions;
    const double bytes = static_cast<double>(o.events) * (100 + 32);
    const int needed = static_cast<int>(bytes / (4.0 * 1024 * 1024)) + 1;
    return std::max(4, (needed + 3) / 4 * 4);
}

void preload(long events, const std::string& bootstrap) {
    Acks acks;
    auto props = producer_props(bootstrap);
    props["linger.ms"] = "20";
    props["batch.num.messages"] = "10000";
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, props, count_delivery, &acks);
    std::string value(100, 'v');
    for (long i = 0; i < events; ++i) {
        int n = std::snprintf(value.data(), value.size(), "%ld:", i);
        if (n > 0 && static_cast<size_t>(n) < value.size()) value[static_cast<size_t>(n)] = 'v';
        const std::string key = "k" + std::to_string(i % 4096);
        for (;;) {
            auto err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_KEY(key.data(), key.size()),
                                         RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("preload: ") + rd_kafka_err2str(err));
            rd_kafka_poll(p, 10);
        }
        if (i % 10000 == 0) rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR || acks.failed || acks.ok != events)
        die("preload: not every input was acknowledged");
    rd_kafka_destroy(p);
}

void produce_one(rd_kafka_t* producer, const std::string& topic, const std::string& value) {
    if (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
        die("produce failed");
    rd_kafka_flush(producer, 10'000);
}


std::string pipeline_yaml(const Options& o, const std::string& app, const std::string& bootstrap,
                          const std::string& out, const std::string& extra) {
    return "# written by bench_supervised\napp: {id: " + app + "}\nbroker: {bootstrap: \"" + bootstrap +
           "\"}\nplugins: {dir: \"" + std::filesystem::absolute(o.plugin_dir).string() + "\"}\n"
           "workers: 2\nshutdown_timeout: 30s\n" + extra +
           "topics:\n  in: {partitions: " + std::to_string(o.partitions) + "}\n  " + out +
           ": {partitions: " + std::to_string(o.partitions) + "}\n"
           "agents:\n  pass: {plugin: passthrough, agent: pass, from: in, sinks: [" + out + "]}\n";
}

struct HostRun {
    double seconds = 0;  // first output on the broker -> every output on the broker
    double startup = 0;  // process start -> first output (process start, plugin load, group join)
};

// One run of a host process: `supervised` runs the pipeline's directory under the supervisor.
HostRun run_host(const Options& o, const std::string& bootstrap, rd_kafka_t* watcher, const std::string& out, int run,
                 bool supervised) {
    const std::string app = std::string(supervised ? "bench-sup-" : "bench-inp-") + std::to_string(getpid()) + "-" +
                            run_name(run);
    const auto dir = g_temp_dir / app;
    std::filesystem::create_directories(dir / "pipelines");
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    std::filesystem::permissions(dir / "pipelines", std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    const auto yaml = dir / "pipelines" / (app + ".yaml");
    std::ofstream(yaml) << pipeline_yaml(o, app, bootstrap, out, "state_dir: " + (dir / "state").string() + "\n");
    const auto start = Clock::now();
    MephistoProcess host(o.binary, {"run", supervised ? (dir / "pipelines").string() : yaml.string(), "--isolation",
                                    supervised ? "process" : "none", "--broker", "kafka://" + bootstrap, "--admin", "off"});
    HostRun r;
    std::optional<Clock::time_point> first;
    const auto deadline = start + 300s;
    for (;;) {
        const long n = high_watermarks(watcher, out, o.partitions);
        const auto now = Clock::now();
        if (n > 0 && !first) first = now;
        if (n >= o.events) {
            r.seconds = seconds(now - *first);
            r.startup = seconds(*first - start);
            break;
        }
        if (now > deadline) die(app + ": only " + std::to_string(n) + " outputs within 300 s:\n" + host.tail());
        std::this_thread::sleep_for(5ms);
    }
    host.stop();
    std::filesystem::remove_all(dir);
    return r;
}

struct RestartRun {
    double restart = 0, rejoin = 0, first_event = 0, total = 0;
};

// Kills the supervised worker `restarts` times; each time, one record produced right after the kill is timed
// to its output.
std::vector<RestartRun> run_restarts(const Options& o, const std::string& bootstrap, rd_kafka_t* watcher) {
    const std::string app = "bench-restart-" + std::to_string(getpid()), out = "out-restart";
    const auto dir = g_temp_dir / app;
    std::filesystem::create_directories(dir / "pipelines");
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    std::filesystem::permissions(dir / "pipelines", std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    // Restarts counted in a short window, so each waits the first backoff (100 ms), not a growing one.
    std::ofstream(dir / "pipelines" / "restart.yaml")
        << pipeline_yaml(o, app, bootstrap, out,
                         "state_dir: " + (dir / "state").string() + "\n"
                         "consumer: {session.timeout.ms: " + std::to_string(o.session_timeout_ms) +
                         ", heartbeat.interval.ms: 300}\n"
                         "supervisor: {max_restarts: 5, within: 2s, backoff: 100ms}\n");
    rd_kafka_t* producer = client(RD_KAFKA_PRODUCER, producer_props(bootstrap));
    MephistoProcess host(o.binary, {"run", (dir / "pipelines").string(), "--isolation", "process", "--broker",
                                    "kafka://" + bootstrap, "--admin", "off"});
    host.await("worker " + app + " (pid", 0, 60s);
    // Wait until it consumes: everything preloaded passes through first.
    const auto deadline = Clock::now() + 300s;
    while (high_watermarks(watcher, out, o.partitions) < o.events) {
        if (Clock::now() > deadline) die("the restart pipeline did not pass the preloaded input within 300 s:\n" + host.tail());
        std::this_thread::sleep_for(10ms);
    }
    std::vector<RestartRun> runs;
    for (int k = 0; k < o.restarts; ++k) {
        // The worker's pid, from the supervisor's last "worker APP (pid N) runs pipeline(s)" line.
        const std::string text = "worker " + app + " (pid ";
        const std::string line = host.last_line_with(text);
        if (line.empty()) die("no worker pid in the supervisor's log");
        const pid_t worker = static_cast<pid_t>(std::stol(line.substr(line.find(text) + text.size())));
        const size_t marker = host.line_count();
        const long before = high_watermarks(watcher, out, o.partitions);
        const auto killed = Clock::now();
        if (::kill(worker, SIGKILL) != 0) die("cannot kill worker " + std::to_string(worker));
        produce_one(producer, "in", "after-kill-" + std::to_string(k));
        auto [ready, ready_line] = host.await("worker " + app + " (pid", marker, 120s);
        auto [assigned, assigned_line] = host.await("[" + app + "] assigned", ready_line, 120s);
        while (high_watermarks(watcher, out, o.partitions) <= before) {
            if (Clock::now() - killed > 300s) die("no output within 300 s of the kill:\n" + host.tail());
            std::this_thread::sleep_for(1ms);
        }
        const auto output = Clock::now();
        RestartRun r;
        r.restart = seconds(ready - killed);
        r.rejoin = seconds(assigned - ready);
        r.first_event = seconds(output - assigned);
        r.total = seconds(output - killed);
        std::fprintf(stderr, "restart %d: %.3f s to the new worker, %.3f s group re-join, %.3f s to the output; %.3f s in all\n",
                     k + 1, r.restart, r.rejoin, r.first_event, r.total);
        runs.push_back(r);
        std::this_thread::sleep_for(2500ms);  // past the restart window: the next restart waits the first backoff
    }
    host.stop();
    rd_kafka_destroy(producer);
    std::filesystem::remove_all(dir);
    return runs;
}

}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(stderr, "bench_supervised: %s\n", what.c_str());
    kill_child_process();
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    o.partitions = partitions_for(o);
    mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::warn);
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / "passthrough.so"))
        die(o.plugin_dir + "/passthrough.so not found (build the `passthrough` target, or pass --plugin-dir)");
    if (::access(o.binary.c_str(), X_OK) != 0) die(o.binary + " is not an executable (build `mephisto`, or pass --mephisto)");
    ::signal(SIGPIPE, SIG_IGN);

    auto broker = mephisto::EmbeddedBroker::start(0, 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();
    if (auto st = (*broker)->create_topic("in", o.partitions); !st) die(st.error());
    std::fprintf(stderr, "broker %s; preloading %ld events into `in` (%d partitions)...\n", bootstrap.c_str(), o.events,
                 o.partitions);
    preload(o.events, bootstrap);
    rd_kafka_t* watcher = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", "bench-watcher"}});
    if (!nothing_trimmed(watcher, "in", o.partitions)) die("the embedded broker dropped the oldest inputs; use more --partitions");

    char tmpl[] = "/tmp/mephisto-bench-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    g_temp_dir = tmpl;

    // Not recorded: the first pass of each side grows the broker's log and the page cache of the binary.
    for (const char* side : {"raw", "in-process", "supervised"}) {
        const std::string out = std::string("out-warmup-") + side;
        if (auto st = (*broker)->create_topic(out, o.partitions); !st) die(st.error());
        if (std::string(side) == "raw") run_raw(bootstrap, "in", o.partitions, o.events, out, -1);
        else run_host(o, bootstrap, watcher, out, -1, std::string(side) == "supervised");
    }
    std::fprintf(stderr, "warm-up done\n");

    std::vector<double> raw_eps, inproc_eps, sup_eps, inproc_start, sup_start;
    for (int i = 0; i < o.runs; ++i) {
        for (int j = 0; j < 3; ++j) {  // raw, in-process, supervised; each run starts one later
            const int side = (i + j) % 3;
            const std::string out = "out-" + std::to_string(i) + "-" + std::to_string(side);
            if (auto st = (*broker)->create_topic(out, o.partitions); !st) die(st.error());
            if (side == 0) {
                const auto r = run_raw(bootstrap, "in", o.partitions, o.events, out, i);
                raw_eps.push_back(o.events / r.seconds);
                std::fprintf(stderr, "run %d raw       : %8.0f events/s\n", i + 1, raw_eps.back());
            } else {
                const auto r = run_host(o, bootstrap, watcher, out, i, side == 2);
                (side == 2 ? sup_eps : inproc_eps).push_back(o.events / r.seconds);
                (side == 2 ? sup_start : inproc_start).push_back(r.startup);
                std::fprintf(stderr, "run %d %-10s: %8.0f events/s (first output %.2f s after the start)\n", i + 1,
                             side == 2 ? "supervised" : "in-process", o.events / r.seconds, r.startup);
            }
        }
    }
    if (auto st = (*broker)->create_topic("out-restart", o.partitions); !st) die(st.error());
    const auto restarts = o.restarts > 0 ? run_restarts(o, bootstrap, watcher) : std::vector<RestartRun>{};
    rd_kafka_destroy(watcher);
    std::filesystem::remove_all(g_temp_dir);

    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    std::printf("\n## bench_supervised — %s\n\n", date);
    std::printf("%ld events of 100 bytes, %d partitions, workers 2, %u hardware threads, librdkafka %s, mock broker %s\n\n",
                o.events, o.partitions, std::thread::hardware_concurrency(), rd_kafka_version_str(), bootstrap.c_str());
    std::printf("| run | raw events/s | in-process host events/s | supervised host events/s | in-process / raw | supervised / raw | supervised / in-process |\n");
    std::printf("|----:|-------------:|-------------------------:|-------------------------:|----------------:|-----------------:|------------------------:|\n");
    for (int i = 0; i < o.runs; ++i)
        std::printf("| %d | %s | %s | %s | %s | %s | %s |\n", i + 1, num("%.0f", raw_eps[i]).c_str(),
                    num("%.0f", inproc_eps[i]).c_str(), num("%.0f", sup_eps[i]).c_str(),
                    num("%.1f %%", 100 * inproc_eps[i] / raw_eps[i]).c_str(), num("%.1f %%", 100 * sup_eps[i] / raw_eps[i]).c_str(),
                    num("%.1f %%", 100 * sup_eps[i] / inproc_eps[i]).c_str());
    const double raw = median(raw_eps), inproc = median(inproc_eps), sup = median(sup_eps);
    std::printf("| **median** | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** |\n", num("%.0f", raw).c_str(),
                num("%.0f", inproc).c_str(), num("%.0f", sup).c_str(), num("%.1f %%", 100 * inproc / raw).c_str(),
                num("%.1f %%", 100 * sup / raw).c_str(), num("%.1f %%", 100 * sup / inproc).c_str());
    std::printf("\nhosts: first output on the broker -> every output on the broker (high watermarks polled every 5 ms), "
                "each a `mephisto run` process; raw: first event consumed -> flush.\n");
    std::printf("first output after the process start (process start, plugin load, group join): in-process %.2f s, "
                "supervised %.2f s (medians)\n",
                median(inproc_start), median(sup_start));
    if (!restarts.empty()) {
        std::printf("\n### crash to first event (worker killed with SIGKILL, session.timeout.ms %d, backoff 100 ms)\n\n",
                    o.session_timeout_ms);
        std::printf("| kill | restart (kill -> new worker runs) | group re-join (-> assigned) | first event (-> output) | total |\n");
        std::printf("|-----:|---------------------------------:|----------------------------:|------------------------:|------:|\n");
        std::vector<double> a, b, c, d;
        for (size_t k = 0; k < restarts.size(); ++k) {
            const auto& r = restarts[k];
            std::printf("| %zu | %.3f s | %.3f s | %.3f s | %.3f s |\n", k + 1, r.restart, r.rejoin, r.first_event, r.total);
            a.push_back(r.restart);
            b.push_back(r.rejoin);
            c.push_back(r.first_event);
            d.push_back(r.total);
        }
        std::printf("| **median** | **%.3f s** | **%.3f s** | **%.3f s** | **%.3f s** |\n", median(a), median(b), median(c),
                    median(d));
    }
    return 0;
}
