// bench_passthrough: the pass-through figure of bench/README.md.
//
// One process, one broker (librdkafka's mock cluster on 127.0.0.1, free port), one input topic preloaded
// once. Then, alternating, R times each:
//   raw  — a plain librdkafka loop on one thread: consumer (assign mode, from the beginning) -> producer
//          (idempotent, murmur2_random, RD_KAFKA_MSG_F_COPY), with the host's own client settings; the clock
//          runs from assign() until flush() returned (every output acknowledged).
//   host — an in-process mephisto::Host running a one-agent pipeline (C plugin `passthrough`, agent `pass`,
//          api->forward per event); the clock runs from the moment the pipeline holds its partitions (the
//          group join, ~3 s on the mock, is excluded) until the output topic's high watermarks sum to N
//          (every output acknowledged), then on until the committed offsets cover every input.
// Each run writes to a fresh output topic; each host run uses a fresh group, so it starts from the beginning.
// The figure is median(host) / median(raw). Prints a markdown table on stdout; progress on stderr.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "bench_support.hpp"
#include "common/logging.hpp"
#include "host/host.hpp"
#include "kafka/embedded_broker.hpp"

#ifndef MEPHISTO_BENCH_PLUGIN_DIR
#define MEPHISTO_BENCH_PLUGIN_DIR "build/bench/plugins"
#endif

namespace {

using namespace mephisto::bench;
using namespace std::chrono_literals;

struct Options {
    long events = 1'000'000;
    int runs = 5;
    int partitions = 0;  // 0: enough for the mock's retention (see partitions_for)
    int workers = 2;
    int value_size = 100;
    std::string plugin_dir = MEPHISTO_BENCH_PLUGIN_DIR;
    std::string only;  // "raw" or "host": run one side (for profiling); no ratio
    bool warmup = true;
    bool verbose = false;
    // The host's events take a detour through memory: `pass` -> channel `hop` -> `pass_on` (concurrency =
    // workers) -> out. The raw loop stays the same, so the ratio shows what a channel costs.
    bool through_channel = false;
    long channel_maxsize = 0;  // 0: the host's default
};

std::filesystem::path g_temp_dir;  // removed on every exit path


void usage() {
    std::printf(
        "usage: bench_passthrough [--events N] [--runs R] [--partitions P] [--workers W] [--value-size B]\n"
        "                         [--plugin-dir DIR] [--only raw|host] [--no-warmup] [--through-channel]\n"
        "                         [--verbose]\n"
        "  --events N      events preloaded and passed through per run (default 1000000)\n"
        "  --runs R        runs of each side, alternating raw and host (default 5)\n"
        "  --partitions P  partitions of the input and output topics (default: at least 4, and enough that\n"
        "                  the input fits the embedded broker's 5 MiB-per-partition log: 32 for 1M x 100 B)\n"
        "  --workers W     the host pipeline's worker threads (default 2)\n"
        "  --value-size B  bytes per value (default 100)\n"
        "  --plugin-dir D  where passthrough.so is (default: the build tree's bench/plugins)\n"
        "  --only SIDE     run only `raw` or only `host` (to profile one side; prints no ratio)\n"
        "  --no-warmup     skip the unrecorded warm-up pass of each side\n"
        "  --through-channel  the host pipeline is pass -> channel hop -> pass_on -> out (concurrency W)\n"
        "  --channel-maxsize N  with --through-channel: the channel's maxsize (default: the host's)\n"
        "  --verbose       the host's info logs on stderr\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& a = args.flag();
        auto value = [&] { return args.value(); };
        auto number = [&](long lo, long hi) { return args.number(lo, hi); };
        if (a == "--events") o.events = number(1, 100'000'000);
        else if (a == "--runs") o.runs = static_cast<int>(number(1, 100));
        else if (a == "--partitions") o.partitions = static_cast<int>(number(1, 1024));
        else if (a == "--workers") o.workers = static_cast<int>(number(1, 64));
        else if (a == "--value-size") o.value_size = static_cast<int>(number(1, 1'000'000));
        else if (a == "--plugin-dir") o.plugin_dir = value();
        else if (a == "--only") {
            o.only = value();
            if (o.only != "raw" && o.only != "host") die("--only must be raw or host");
        }
        else if (a == "--verbose") o.verbose = true;
        else if (a == "--no-warmup") o.warmup = false;
        else if (a == "--through-channel") o.through_channel = true;
        else if (a == "--channel-maxsize") o.channel_maxsize = number(4, 10'000'000);
        else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
        else die("unknown argument '" + a + "' (see --help)");
    }
    return o;
}









// The librdkafka 2.0.2 mock keeps at most 5 MiB of log per partition (rdkafka_mock.c: mpart->max_size, not
// settable) and silently drops the oldest message sets beyond it. The input must fit, so by default it gets
// enough partitions to stay under 4 MiB each (a record of a 100-byte value takes about 125 bytes on the log).
int partitions_for(const Options& o) {
    if (o.partitions > 0) return o.partitions;
    const double bytes = static_cast<double>(o.events) * (o.value_size + 32);
    const int needed = static_cast<int>(bytes / (4.0 * 1024 * 1024)) + 1;
    return std::max(4, (needed + 3) / 4 * 4);
}



void preload(const Options& o, const std::string& bootstrap) {
    Acks acks;
    auto props = producer_props(bootstrap);
    props["linger.ms"] = "20";
    props["batch.num.messages"] = "10000";
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, props, count_delivery, &acks);
    std::string value(static_cast<size_t>(o.value_size), 'v');
    std::mt19937 rng(42);
    for (long i = 0; i < o.events; ++i) {
        // A different 100-byte value each time (the first bytes carry the sequence number), 4096 keys.
        int n = std::snprintf(value.data(), value.size(), "%ld:", i);
        if (n > 0 && static_cast<size_t>(n) < value.size()) value[static_cast<size_t>(n)] = 'v';
        char key[16];
        int key_len = std::snprintf(key, sizeof key, "k%u", static_cast<unsigned>(rng() % 4096));
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("preload: ") + rd_kafka_err2str(err));
            rd_kafka_poll(p, 10);
        }
        if (i % 10000 == 0) rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR || acks.failed || acks.ok != o.events)
        die("preload: not every input was acknowledged");
    rd_kafka_destroy(p);
}




struct HostResult {
    double seconds = 0;    // first event processed -> every output acknowledged (the figure)
    double committed = 0;  // first event processed -> every input committed
    double startup = 0;    // partitions assigned -> first event processed
    double cpu = 0;        // process CPU, assigned -> every output acknowledged
    double join = 0;       // Host::start -> partitions assigned (the group join; not part of any figure)
    double stop = 0;       // Host::stop
    long outputs = 0;
};

HostResult run_host(const Options& o, const std::string& bootstrap, rd_kafka_t* watcher, const std::string& out,
                    int run, const std::filesystem::path& dir) {
    const std::string app = "bench-host-" + std::to_string(getpid()) + "-" + run_name(run);
    const auto yaml = dir / (app + ".yaml");
    {
        std::ofstream file(yaml);
        file << "# written by bench_passthrough\n"
             << "app: {id: " << app << "}\n"
             << "broker: {bootstrap: \"" << bootstrap << "\"}\n"
             << "plugins: {dir: \"" << std::filesystem::absolute(o.plugin_dir).string() << "\"}\n"
             << "workers: " << o.workers << "\n"
             << "shutdown_timeout: 30s\n"
             << "topics:\n"
             << "  in: {partitions: " << o.partitions << "}\n"
             << "  " << out << ": {partitions: " << o.partitions << "}\n"
             << (!o.through_channel           ? ""
                 : o.channel_maxsize > 0 ? "channels: {hop: {maxsize: " + std::to_string(o.channel_maxsize) + "}}\n"
                                         : std::string("channels: {hop: {}}\n"))
             << "agents:\n";
        if (o.through_channel)
            file << "  pass: {plugin: passthrough, agent: pass, from: in, sinks: [hop]}\n"
                 << "  pass_on: {plugin: passthrough, agent: pass, from: hop, sinks: [" << out
                 << "], concurrency: " << o.workers << "}\n";
        else
            file << "  pass: {plugin: passthrough, agent: pass, from: in, sinks: [" << out << "]}\n";
    }

    mephisto::HostOptions options;
    options.files = {yaml};
    options.broker = "kafka://" + bootstrap;
    const auto start = Clock::now();
    auto host = mephisto::Host::start(options);
    if (!host) die("host: " + host.error());
    const auto& pipeline = *(*host)->pipelines().front();

    HostResult r;
    while (pipeline.assigned_partitions() == 0) {
        if ((*host)->failed()) die("host: " + (*host)->failure());
        if (Clock::now() - start > 60s) die("host: no partitions assigned within 60 s");
        std::this_thread::sleep_for(1ms);
    }
    const double cpu0 = cpu_seconds();
    const auto assigned = Clock::now();
    r.join = seconds(assigned - start);
    const auto& processed = pipeline.agents().front()->stats.processed;
    while (processed.load(std::memory_order_relaxed) == 0) {
        if ((*host)->failed()) die("host: " + (*host)->failure());
        if (Clock::now() - assigned > 60s) die("host: no event processed within 60 s of the assignment");
        std::this_thread::sleep_for(200us);
    }
    const auto t0 = Clock::now();
    r.startup = seconds(t0 - assigned);
    auto deadline = t0 + 300s;
    for (;;) {
        const long n = high_watermarks(watcher, out, o.partitions);
        if (n >= o.events) {
            r.outputs = n;
            break;
        }
        if ((*host)->failed()) die("host: " + (*host)->failure());
        if (Clock::now() > deadline) die("host: only " + std::to_string(n) + " outputs within 300 s");
        std::this_thread::sleep_for(10ms);
    }
    const auto t1 = Clock::now();
    const double cpu1 = cpu_seconds();
    r.seconds = seconds(t1 - t0);
    r.cpu = cpu1 - cpu0;
    for (;;) {
        long committed = 0;
        for (const auto& [tp, next] : pipeline.committed_offsets()) committed += std::max<int64_t>(next, 0);
        if (committed >= o.events) break;
        if (Clock::now() > deadline) die("host: offsets not committed within 300 s");
        std::this_thread::sleep_for(5ms);
    }
    r.committed = seconds(Clock::now() - t0);
    const auto s0 = Clock::now();
    (*host)->stop();
    host->reset();
    r.stop = seconds(Clock::now() - s0);
    std::filesystem::remove(yaml);
    return r;
}


}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(stderr, "bench_passthrough: %s\n", what.c_str());
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    o.partitions = partitions_for(o);
    mephisto::setup_logging(mephisto::LogFormat::text, o.verbose ? spdlog::level::info : spdlog::level::warn);
    if (const char* level = std::getenv("BENCH_LOG_LEVEL"))  // e.g. debug: the host's pause/resume lines
        mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::from_str(level));
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / "passthrough.so"))
        die(o.plugin_dir + "/passthrough.so not found (build the `passthrough` target, or pass --plugin-dir)");

    auto broker = mephisto::EmbeddedBroker::start(0, 1);  // 127.0.0.1, a free port
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();
    if (auto st = (*broker)->create_topic("in", o.partitions); !st) die(st.error());
    std::fprintf(stderr, "broker %s; preloading %ld events of %d bytes into `in` (%d partitions)...\n",
                 bootstrap.c_str(), o.events, o.value_size, o.partitions);
    const auto p0 = Clock::now();
    preload(o, bootstrap);
    std::fprintf(stderr, "preloaded in %.1f s\n", seconds(Clock::now() - p0));
    rd_kafka_t* watcher = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", "bench-watcher"}});
    if (!nothing_trimmed(watcher, "in", o.partitions))
        die("the embedded broker dropped the oldest inputs: librdkafka 2.0.2's mock keeps at most 5 MiB per "
            "partition; use more --partitions (or leave it to the default)");

    char tmpl[] = "/tmp/mephisto-bench-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    const std::filesystem::path dir = tmpl;
    g_temp_dir = dir;

    // Warm-up, not recorded: the first pass through a fresh process pays for growing the heap (the broker's
    // log, librdkafka's buffers) and for loading the plugin; without it run 1 of whichever side goes first is
    // slower than the rest.
    if (o.warmup) {
        if (auto st = (*broker)->create_topic("out-warmup-raw", o.partitions); !st) die(st.error());
        if (auto st = (*broker)->create_topic("out-warmup-host", o.partitions); !st) die(st.error());
        if (o.only != "host") run_raw(bootstrap, "in", o.partitions, o.events, "out-warmup-raw", -1);
        if (o.only != "raw") run_host(o, bootstrap, watcher, "out-warmup-host", -1, dir);
        std::fprintf(stderr, "warm-up done\n");
    }

    std::vector<RawResult> raws;
    std::vector<HostResult> hosts;
    for (int i = 0; i < o.runs; ++i) {
        const std::string raw_out = "out-raw-" + std::to_string(i), host_out = "out-host-" + std::to_string(i);
        if (auto st = (*broker)->create_topic(raw_out, o.partitions); !st) die(st.error());
        if (auto st = (*broker)->create_topic(host_out, o.partitions); !st) die(st.error());
        // Alternate which side goes first, so neither always runs on a fresher (or more loaded) broker.
        auto raw = [&] {
            raws.push_back(run_raw(bootstrap, "in", o.partitions, o.events, raw_out, i));
            const auto& r = raws.back();
            std::fprintf(stderr, "run %d raw : %8.0f events/s (%.3f s; startup %.3f s; %.2f CPU-s)\n", i + 1,
                         o.events / r.seconds, r.seconds, r.startup, r.cpu);
        };
        auto host = [&] {
            hosts.push_back(run_host(o, bootstrap, watcher, host_out, i, dir));
            const auto& h = hosts.back();
            std::fprintf(stderr,
                         "run %d host: %8.0f events/s (%.3f s; startup %.3f s; %.2f CPU-s; all committed at %.2f s; "
                         "group join %.2f s, stop %.2f s)\n",
                         i + 1, o.events / h.seconds, h.seconds, h.startup, h.cpu, h.committed, h.join, h.stop);
        };
        if (o.only == "raw") raw();
        else if (o.only == "host") host();
        else if (i % 2 == 0) { raw(); host(); }
        else { host(); raw(); }
    }
    rd_kafka_destroy(watcher);
    std::filesystem::remove_all(dir);
    if (!o.only.empty()) return 0;

    std::vector<double> raw_eps, host_eps, host_commit_eps, ratios, raw_cpu, host_cpu, raw_start, host_start;
    for (int i = 0; i < o.runs; ++i) {
        raw_eps.push_back(o.events / raws[i].seconds);
        host_eps.push_back(o.events / hosts[i].seconds);
        host_commit_eps.push_back(o.events / hosts[i].committed);
        ratios.push_back(host_eps.back() / raw_eps.back());
        raw_cpu.push_back(raws[i].cpu / (o.events / 1e6));
        host_cpu.push_back(hosts[i].cpu / (o.events / 1e6));
        raw_start.push_back(raws[i].startup * 1e3);
        host_start.push_back(hosts[i].startup * 1e3);
    }

    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    std::printf("\n## bench_passthrough%s — %s\n\n", o.through_channel ? " --through-channel" : "", date);
    std::printf("%ld events of %d bytes, %d partitions, host workers %d, %u hardware threads, librdkafka %s, "
                "mock broker %s\n\n",
                o.events, o.value_size, o.partitions, o.workers, std::thread::hardware_concurrency(),
                rd_kafka_version_str(), bootstrap.c_str());
    std::printf("| run | order | raw events/s | host events/s | ratio | host events/s incl. commit | raw CPU-s/M | "
                "host CPU-s/M | raw startup ms | host startup ms |\n");
    std::printf("|----:|:------|-------------:|--------------:|------:|---------------------------:|------------:|"
                "-------------:|---------------:|----------------:|\n");
    for (int i = 0; i < o.runs; ++i)
        std::printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", i + 1, i % 2 == 0 ? "raw, host" : "host, raw",
                    num("%.0f", raw_eps[i]).c_str(), num("%.0f", host_eps[i]).c_str(),
                    num("%.1f %%", 100 * ratios[i]).c_str(), num("%.0f", host_commit_eps[i]).c_str(),
                    num("%.2f", raw_cpu[i]).c_str(), num("%.2f", host_cpu[i]).c_str(), num("%.0f", raw_start[i]).c_str(),
                    num("%.0f", host_start[i]).c_str());
    const double ratio = median(host_eps) / median(raw_eps);
    const double efficiency = median(raw_cpu) / median(host_cpu);
    std::printf("| **median** | | **%s** | **%s** | **%s** | %s | %s | %s | %s | %s |\n", num("%.0f", median(raw_eps)).c_str(),
                num("%.0f", median(host_eps)).c_str(), num("%.1f %%", 100 * ratio).c_str(),
                num("%.0f", median(host_commit_eps)).c_str(), num("%.2f", median(raw_cpu)).c_str(),
                num("%.2f", median(host_cpu)).c_str(), num("%.0f", median(raw_start)).c_str(),
                num("%.0f", median(host_start)).c_str());
    std::printf("\nratio = median(host events/s) / median(raw events/s) = %.1f %% (median of per-run ratios %.1f %%); "
                "target >= 70 %%: %s\n",
                100 * ratio, 100 * median(ratios), ratio >= 0.70 ? "MET" : "NOT MET");
    std::printf("CPU efficiency = median(raw CPU-s/M) / median(host CPU-s/M) = %.1f %%\n", 100 * efficiency);
    std::printf("events/s: first event consumed (raw) or processed (host) -> every output acknowledged by the broker.\n"
                "CPU-s/M: process CPU seconds (all threads, the in-process broker included) per million events.\n"
                "startup: partitions assigned -> first event (not in events/s; the host's group join is excluded too).\n");
    return 0;
}
