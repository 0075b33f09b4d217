// bench_windowed_count: the windowed-count figure of bench/README.md.
//
// One process, one broker (librdkafka's mock cluster on 127.0.0.1, free port). `events` is preloaded once with
// N events, key = value = one of K distinct keys (uniform), with Kafka timestamps (CreateTime) increasing evenly
// over S seconds of event time from 2026-11-25 00:00:00 UTC, so that tumbling one-minute windows close and expire
// while the host reads them. Then, alternating, R times each:
//   raw  — the plain librdkafka consume -> produce loop of bench_passthrough over `events` (assign mode,
//          idempotent producer, the host's client settings); first event consumed -> flush() returned.
//   host — an in-process mephisto::Host running agent `count` of the C plugin `window_count`
//          (api->table_add(key, +1) per event; on_window_close returns MPH_OK) reading `events` directly, with the
//          int64 RocksDB table `counts` declared `window: {tumbling: 60s, grace: 10s, expires: 2m}` (time: the
//          Kafka timestamp, relative_to: stream) in a temporary state_dir, its changelog produced by the host;
//          first event processed -> the app group's committed offsets (rd_kafka_committed through a separate
//          client, every 20 ms) cover all N inputs. A commit waits for the changelog flush, so this includes table
//          persistence (window values, their tombstones once expired, and the stream-time marks).
// The figure is median(host) / median(raw). The windows closed, expired and the late events are the table's own
// counters (TableStore::windows_closed etc., what /metrics shows), read when every input is committed; they are
// checked against what the preloaded timestamps imply. `--no-window` runs the host with the same table without
// `window:` (a plain counter of the same events), to isolate what windowing costs.
// Prints markdown on stdout; progress on stderr.
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "bench_support.hpp"
#include "common/logging.hpp"
#include "host/host.hpp"
#include "engine/pipeline.hpp"
#include "kafka/embedded_broker.hpp"
#include "tables/table_store.hpp"

#ifndef MEPHISTO_BENCH_PLUGIN_DIR
#define MEPHISTO_BENCH_PLUGIN_DIR "build/bench/plugins"
#endif

namespace {

using namespace mephisto::bench;
using namespace std::chrono_literals;

// The table's window (fixed: the figure is for this window).
constexpr int64_t kWindowMs = 60'000;
constexpr int64_t kGraceMs = 10'000;
constexpr int64_t kExpiresMs = 120'000;
constexpr int64_t kEpochMs = 1'795'564'800'000;  // 2026-11-25 00:00:00 UTC, a minute boundary

struct Options {
    long events = 1'000'000;
    int keys = 10'000;
    int span_s = 600;  // event time covered by the input
    int runs = 5;
    int partitions = 0;  // 0: enough for the mock's retention (see partitions_for)
    int workers = 2;
    int commit_interval_ms = 0;  // 0: the host's default
    std::string store = "rocksdb";
    bool window = true;
    std::string plugin_dir = MEPHISTO_BENCH_PLUGIN_DIR;
    std::string only;  // "raw" or "host"
    bool warmup = true;
    bool verbose = false;
};

std::filesystem::path g_temp_dir;  // removed on every exit path
FILE* g_progress = stderr;         // the real stderr
mephisto::EmbeddedBroker* g_broker = nullptr;

void usage() {
    std::printf(
        "usage: bench_windowed_count [--events N] [--keys K] [--span S] [--runs R] [--partitions P] [--workers W]\n"
        "                            [--commit-interval MS] [--store rocksdb|memory] [--no-window] [--plugin-dir DIR]\n"
        "                            [--only raw|host] [--no-warmup] [--verbose]\n"
        "  --events N          events preloaded into `events` and counted per run (default 1000000)\n"
        "  --keys K            distinct keys among them, uniform (default 10000)\n"
        "  --span S            seconds of event time the timestamps cover, evenly, in increasing order (default 600:\n"
        "                      ten one-minute windows, nine of which close and seven expire during a run)\n"
        "  --runs R            runs of each side, alternating raw and host (default 5)\n"
        "  --partitions P      partitions of every topic (default: at least 8, enough for the mock's 5 MiB/partition)\n"
        "  --workers W         the host pipeline's worker threads (default 2)\n"
        "  --commit-interval M the pipeline's commit_interval in ms (default: the host's, 1 s)\n"
        "  --store S           the table's store, rocksdb (default) or memory\n"
        "  --no-window         the same table without `window:` (a plain counter of the same events), for comparison\n"
        "  --plugin-dir D      where window_count.so is (default: the build tree's bench/plugins)\n"
        "  --only SIDE         run only `raw` or `host` (for profiling; prints no ratio)\n"
        "  --no-warmup         skip the unrecorded warm-up pass of each side\n"
        "  --verbose           the host's info logs on stderr\n"
        "environment: BENCH_LOG_LEVEL=debug (the host's debug log, e.g. its changelog flushes)\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& a = args.flag();
        auto value = [&] { return args.value(); };
        auto number = [&](long lo, long hi) { return args.number(lo, hi); };
        if (a == "--events") o.events = number(1, 100'000'000);
        else if (a == "--keys") o.keys = static_cast<int>(number(1, 10'000'000));
        else if (a == "--span") o.span_s = static_cast<int>(number(1, 86'400));
        else if (a == "--runs") o.runs = static_cast<int>(number(1, 100));
        else if (a == "--partitions") o.partitions = static_cast<int>(number(1, 1024));
        else if (a == "--workers") o.workers = static_cast<int>(number(1, 64));
        else if (a == "--commit-interval") o.commit_interval_ms = static_cast<int>(number(1, 600'000));
        else if (a == "--store") {
            o.store = value();
            if (o.store != "rocksdb" && o.store != "memory") die("--store must be rocksdb or memory");
        }
        else if (a == "--no-window") o.window = false;
        else if (a == "--plugin-dir") o.plugin_dir = value();
        else if (a == "--only") {
            o.only = value();
            if (o.only != "raw" && o.only != "host") die("--only must be raw or host");
        }
        else if (a == "--verbose") o.verbose = true;
        else if (a == "--no-warmup") o.warmup = false;
        else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
        else die("unknown argument '" + a + "' (see --help)");
    }
    return o;
}

// The librdkafka 2.0.2 mock keeps at most 5 MiB of log per partition (rdkafka_mock.c: mpart->max_size, not
// settable) and silently drops the oldest message sets beyond it: the input must fit. A record carries a ~5-byte
// key and the same value: ~50 bytes on the log, as in bench_word_count.
int partitions_for(const Options& o) {
    if (o.partitions > 0) return o.partitions;
    const double bytes = static_cast<double>(o.events) * 50;
    const int needed = static_cast<int>(bytes / (4.0 * 1024 * 1024)) + 1;
    return std::max(8, (needed + 3) / 4 * 4);
}

std::string key_of(long i) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "k%ld", i);
    return buf;
}

// The i-th of n timestamps spread evenly over the span, increasing.
int64_t timestamp_of(const Options& o, long i) {
    return kEpochMs + static_cast<int64_t>(static_cast<__int128>(i) * (o.span_s * 1000LL) / o.events);
}

// What the input implies for the table, from the windows its (key, minute) pairs fall in and the last timestamp
// (every partition's stream time ends within a few ms of it).
struct Expected {
    long windows = 0;  // distinct (key, window) pairs
    long closed = 0;   // of them, those whose end + grace <= the last event time
    long expired = 0;  // of them, those whose end + expires <= the last event time
};

// N events into `events`: key = value = a uniform pick among o.keys, timestamps increasing over o.span_s.
Expected preload(const Options& o, const std::string& bootstrap, const std::string& topic) {
    Acks acks;
    auto props = producer_props(bootstrap);
    props["linger.ms"] = "20";
    props["batch.num.messages"] = "10000";
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, props, count_delivery, &acks);
    std::mt19937 rng(42);
    const long minutes = (o.span_s * 1000LL + kWindowMs - 1) / kWindowMs;
    std::vector<std::vector<bool>> seen(static_cast<size_t>(minutes), std::vector<bool>(static_cast<size_t>(o.keys)));
    for (long i = 0; i < o.events; ++i) {
        const long k = static_cast<long>(rng() % static_cast<unsigned>(o.keys));
        const std::string key = key_of(k);
        const int64_t ts = timestamp_of(o, i);
        seen[static_cast<size_t>((ts - kEpochMs) / kWindowMs)][static_cast<size_t>(k)] = true;
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(const_cast<char*>(key.data()), key.size()),
                RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("preload: ") + rd_kafka_err2str(err));
            rd_kafka_poll(p, 10);
        }
        if (i % 10000 == 0) rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR || acks.failed || acks.ok != o.events)
        die("preload: not every input was acknowledged");
    rd_kafka_destroy(p);

    Expected e;
    const int64_t last = timestamp_of(o, o.events - 1);
    for (long m = 0; m < minutes; ++m) {
        const long n = static_cast<long>(std::count(seen[static_cast<size_t>(m)].begin(), seen[static_cast<size_t>(m)].end(), true));
        const int64_t end = kEpochMs + (m + 1) * kWindowMs;
        e.windows += n;
        if (end + kGraceMs <= last) e.closed += n;
        if (end + kExpiresMs <= last) e.expired += n;
    }
    return e;
}

// Sum of the committed offsets of `group` on `topic` (rd_kafka_committed through `rk`, a client of that group
// that never joins it); -1 when the query failed.
long committed_sum(rd_kafka_t* rk, const std::string& topic, int partitions) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    long sum = 0;
    if (rd_kafka_committed(rk, list, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) sum = -1;
    for (int i = 0; sum >= 0 && i < list->cnt; ++i)
        if (list->elems[i].err) sum = -1;
        else sum += std::max<int64_t>(list->elems[i].offset, 0);
    rd_kafka_topic_partition_list_destroy(list);
    return sum;
}

std::filesystem::path write_yaml(const Options& o, const std::string& bootstrap, const std::string& app,
                                 const std::string& input, const std::filesystem::path& dir) {
    const auto yaml = dir / (app + ".yaml");
    std::ofstream f(yaml);
    f << "# written by bench_windowed_count\n"
      << "app: {id: " << app << "}\n"
      << "broker: {bootstrap: \"" << bootstrap << "\"}\n"
      << "plugins: {dir: \"" << std::filesystem::absolute(o.plugin_dir).string() << "\"}\n"
      << "state_dir: \"" << (dir / (app + "-state")).string() << "\"\n"
      << "workers: " << o.workers << "\n"
      << "shutdown_timeout: 30s\n";
    if (o.commit_interval_ms > 0) f << "commit_interval: " << o.commit_interval_ms << "ms\n";
    f << "topics:\n"
      << "  " << input << ": {partitions: " << o.partitions << "}\n"
      << "tables:\n"
      << "  counts: {store: " << o.store << ", value: int64, partitions: " << o.partitions;
    if (o.window) f << ", window: {tumbling: 60s, grace: 10s, expires: 2m, relative_to: stream}";
    f << "}\n"
      << "agents:\n"
      << "  count: {plugin: window_count, agent: count, from: " << input << ", tables: [counts]}\n";
    return yaml;
}

struct HostResult {
    double seconds = 0;    // first event processed -> every input committed (the figure)
    double processed = 0;  // first event processed -> processed counter reached N
    double startup = 0;    // partitions assigned -> first event processed
    double cpu = 0;        // process CPU, assigned -> every input committed
    double join = 0;       // Host::start -> partitions assigned
    double stop = 0;       // Host::stop
    long changelog = 0;    // records in the changelog afterwards
    uint64_t closed = 0;   // the table's counters when every input was committed
    uint64_t expired = 0;
    uint64_t late = 0;
};

// Runs a host over `input` (count events) until its group committed them all.
HostResult run_host(const Options& o, const std::string& bootstrap, rd_kafka_t* watcher, const std::string& app,
                    const std::string& input, long count, const std::filesystem::path& dir) {
    const auto yaml = write_yaml(o, bootstrap, app, input, dir);
    // Created here with the table's partition count: the mock would auto-create it with its default of 4 when
    // the host first asks for its metadata.
    if (auto st = g_broker->create_topic(app + "-counts-changelog", o.partitions); !st) die(st.error());
    rd_kafka_t* group = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", app}});
    HostResult r;
    mephisto::HostOptions options;
    options.files = {yaml};
    options.broker = "kafka://" + bootstrap;
    const auto start = Clock::now();
    auto started = mephisto::Host::start(options);
    if (!started) die("host: " + started.error());
    std::unique_ptr<mephisto::Host> host = std::move(*started);
    const auto& pipeline = *host->pipelines().front();
    while (pipeline.assigned_partitions() == 0) {
        if (host->failed()) die("host: " + host->failure());
        if (Clock::now() - start > 60s) die("host: no partitions assigned within 60 s");
        std::this_thread::sleep_for(1ms);
    }
    const auto assigned = Clock::now();
    const double cpu0 = cpu_seconds();
    r.join = seconds(assigned - start);
    const auto& processed = pipeline.agents().front()->stats.processed;
    while (processed.load(std::memory_order_relaxed) == 0) {
        if (host->failed()) die("host: " + host->failure());
        if (Clock::now() - assigned > 60s) die("host: no event processed within 60 s of the assignment");
        std::this_thread::sleep_for(200us);
    }
    const auto t0 = Clock::now();
    r.startup = seconds(t0 - assigned);
    const auto deadline = t0 + 300s;
    bool all_processed = false;
    for (;;) {
        if (!all_processed && processed.load(std::memory_order_relaxed) >= static_cast<uint64_t>(count)) {
            all_processed = true;
            r.processed = seconds(Clock::now() - t0);
        }
        const long n = committed_sum(group, input, o.partitions);
        if (n >= count) break;
        if (host->failed()) die("host: " + host->failure());
        if (Clock::now() > deadline) die("host: only " + std::to_string(n) + " inputs committed within 300 s");
        std::this_thread::sleep_for(20ms);
    }
    const auto t1 = Clock::now();
    r.cpu = cpu_seconds() - cpu0;
    r.seconds = seconds(t1 - t0);
    if (!all_processed) r.processed = r.seconds;
    const auto& counts = *pipeline.tables().at("counts");
    r.closed = counts.windows_closed.load();
    r.expired = counts.windows_expired.load();
    r.late = counts.late_events.load();
    const auto s0 = Clock::now();
    host->stop();
    host.reset();
    r.stop = seconds(Clock::now() - s0);
    r.changelog = high_watermarks(watcher, app + "-counts-changelog", o.partitions);
    rd_kafka_destroy(group);
    std::filesystem::remove(yaml);
    std::filesystem::remove_all(dir / (app + "-state"));
    return r;
}

}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(g_progress, "bench_windowed_count: %s\n", what.c_str());
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    o.partitions = partitions_for(o);
    if (int fd = dup(2); fd >= 0) {
        if (FILE* f = fdopen(fd, "w")) {
            setvbuf(f, nullptr, _IONBF, 0);
            g_progress = f;
        }
    }
    mephisto::setup_logging(mephisto::LogFormat::text, o.verbose ? spdlog::level::info : spdlog::level::warn);
    if (const char* level = std::getenv("BENCH_LOG_LEVEL"))  // e.g. debug: the host's changelog flushes
        mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::from_str(level));
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / "window_count.so"))
        die(o.plugin_dir + "/window_count.so not found (build the `window_count` target, or pass --plugin-dir)");

    auto broker = mephisto::EmbeddedBroker::start(0, 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();
    g_broker = broker->get();
    rd_kafka_t* watcher = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", "bench-watcher"}});

    char tmpl[] = "/tmp/mephisto-bench-wnd-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    const std::filesystem::path dir = tmpl;
    g_temp_dir = dir;
    const std::string pid = std::to_string(getpid());

    if (auto st = (*broker)->create_topic("events", o.partitions); !st) die(st.error());
    std::fprintf(g_progress,
                 "broker %s; preloading %ld events (%d distinct keys, %d s of event time) into `events` (%d partitions)...\n",
                 bootstrap.c_str(), o.events, o.keys, o.span_s, o.partitions);
    const auto p0 = Clock::now();
    const Expected expected = preload(o, bootstrap, "events");
    std::fprintf(g_progress, "preloaded in %.1f s: %ld (key, window) pairs, %ld should close and %ld expire\n",
                 seconds(Clock::now() - p0), expected.windows, expected.closed, expected.expired);
    if (!nothing_trimmed(watcher, "events", o.partitions))
        die("the embedded broker dropped the oldest inputs (5 MiB per partition): use more --partitions");

    std::vector<RawResult> raws;
    std::vector<HostResult> hosts;
    if (o.warmup) {
        if (auto st = (*broker)->create_topic("out-warmup-raw", o.partitions); !st) die(st.error());
        if (o.only != "host") run_raw(bootstrap, "events", o.partitions, o.events, "out-warmup-raw", -1);
        if (o.only != "raw") run_host(o, bootstrap, watcher, "bench-wnd-" + pid + "-warmup", "events", o.events, dir);
        std::fprintf(g_progress, "warm-up done\n");
    }
    for (int i = 0; i < o.runs; ++i) {
        const std::string raw_out = "out-raw-" + std::to_string(i);
        if (auto st = (*broker)->create_topic(raw_out, o.partitions); !st) die(st.error());
        auto raw = [&] {
            raws.push_back(run_raw(bootstrap, "events", o.partitions, o.events, raw_out, i));
            const auto& r = raws.back();
            std::fprintf(g_progress, "run %d raw : %8.0f events/s (%.3f s; startup %.3f s; %.2f CPU-s)\n", i + 1,
                         o.events / r.seconds, r.seconds, r.startup, r.cpu);
        };
        auto host = [&] {
            hosts.push_back(run_host(o, bootstrap, watcher, "bench-wnd-" + pid + "-" + std::to_string(i), "events",
                                     o.events, dir));
            const auto& h = hosts.back();
            std::fprintf(g_progress,
                         "run %d host: %8.0f events/s (%.3f s to committed; all processed at %.3f s; startup %.3f s; "
                         "%.2f CPU-s; windows closed %llu, expired %llu, late events %llu; changelog %ld records; "
                         "group join %.2f s, stop %.2f s)\n",
                         i + 1, o.events / h.seconds, h.seconds, h.processed, h.startup, h.cpu,
                         static_cast<unsigned long long>(h.closed), static_cast<unsigned long long>(h.expired),
                         static_cast<unsigned long long>(h.late), h.changelog, h.join, h.stop);
            if (o.window && (h.closed != static_cast<uint64_t>(expected.closed) ||
                             h.expired != static_cast<uint64_t>(expected.expired) || h.late != 0))
                std::fprintf(g_progress, "run %d host: expected %ld windows closed, %ld expired, 0 late events\n", i + 1,
                             expected.closed, expected.expired);
        };
        if (o.only == "raw") raw();
        else if (o.only == "host") host();
        else if (i % 2 == 0) { raw(); host(); }
        else { host(); raw(); }
    }
    rd_kafka_destroy(watcher);
    std::filesystem::remove_all(dir);

    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    std::printf("\n## bench_windowed_count — %s\n\n", date);
    std::printf("%d partitions, host workers %d, commit_interval %s, %s store, %u hardware threads, librdkafka %s, "
                "mock broker %s\n",
                o.partitions, o.workers,
                o.commit_interval_ms > 0 ? (std::to_string(o.commit_interval_ms) + " ms").c_str() : "default (1 s)",
                o.store == "rocksdb" ? "RocksDB" : "memory", std::thread::hardware_concurrency(), rd_kafka_version_str(),
                bootstrap.c_str());

    if (o.only.empty()) {
        std::vector<double> raw_eps, host_eps, host_proc_eps, ratios, raw_cpu, host_cpu, changelog;
        for (int i = 0; i < o.runs; ++i) {
            raw_eps.push_back(o.events / raws[i].seconds);
            host_eps.push_back(o.events / hosts[i].seconds);
            host_proc_eps.push_back(o.events / hosts[i].processed);
            ratios.push_back(host_eps.back() / raw_eps.back());
            raw_cpu.push_back(raws[i].cpu / (o.events / 1e6));
            host_cpu.push_back(hosts[i].cpu / (o.events / 1e6));
            changelog.push_back(static_cast<double>(hosts[i].changelog));
        }
        if (o.window)
            std::printf("\n### %ld events (%d distinct keys, uniform; timestamps over %d s) -> agent `count` (table counts, "
                        "window: tumbling 60s, grace 10s, expires 2m)\n\n",
                        o.events, o.keys, o.span_s);
        else
            std::printf("\n### %ld events (%d distinct keys, uniform; timestamps over %d s) -> agent `count` (table counts, "
                        "NOT windowed: --no-window)\n\n",
                        o.events, o.keys, o.span_s);
        std::printf("| run | order | raw events/s | host events/s (to committed) | ratio | host events/s (processed) | "
                    "raw CPU-s/M | host CPU-s/M | windows closed | windows expired | changelog records |\n");
        std::printf("|----:|:------|-------------:|-----------------------------:|------:|--------------------------:|"
                    "------------:|-------------:|---------------:|----------------:|------------------:|\n");
        for (int i = 0; i < o.runs; ++i)
            std::printf("| %d | %s | %s | %s | %s | %s | %s | %s | %llu | %llu | %ld |\n", i + 1,
                        i % 2 == 0 ? "raw, host" : "host, raw", num("%.0f", raw_eps[i]).c_str(),
                        num("%.0f", host_eps[i]).c_str(), num("%.1f %%", 100 * ratios[i]).c_str(),
                        num("%.0f", host_proc_eps[i]).c_str(), num("%.2f", raw_cpu[i]).c_str(),
                        num("%.2f", host_cpu[i]).c_str(), static_cast<unsigned long long>(hosts[i].closed),
                        static_cast<unsigned long long>(hosts[i].expired), hosts[i].changelog);
        const double ratio = median(host_eps) / median(raw_eps);
        std::printf("| **median** | | **%s** | **%s** | **%s** | %s | %s | %s | | | %s |\n",
                    num("%.0f", median(raw_eps)).c_str(), num("%.0f", median(host_eps)).c_str(),
                    num("%.1f %%", 100 * ratio).c_str(), num("%.0f", median(host_proc_eps)).c_str(),
                    num("%.2f", median(raw_cpu)).c_str(), num("%.2f", median(host_cpu)).c_str(),
                    num("%.0f", median(changelog)).c_str());
        auto [rlo, rhi] = std::minmax_element(raw_eps.begin(), raw_eps.end());
        auto [hlo, hhi] = std::minmax_element(host_eps.begin(), host_eps.end());
        auto [qlo, qhi] = std::minmax_element(ratios.begin(), ratios.end());
        std::printf("\nratio = median(host events/s) / median(raw events/s) = %.1f %% (median of per-run ratios %.1f %%)\n",
                    100 * ratio, 100 * median(ratios));
        std::printf("spread: raw %.0f-%.0f events/s, host %.0f-%.0f events/s, per-run ratios %.1f-%.1f %%\n", *rlo, *rhi,
                    *hlo, *hhi, 100 * *qlo, 100 * *qhi);
        if (o.window) {
            bool all_as_expected = true;
            for (const auto& h : hosts)
                all_as_expected = all_as_expected && h.closed == static_cast<uint64_t>(expected.closed) &&
                                  h.expired == static_cast<uint64_t>(expected.expired) && h.late == 0;
            std::printf("windows: %ld (key, window) pairs in the input; %ld closed (on_window_close) and %ld expired "
                        "expected per run: %s\n",
                        expected.windows, expected.closed, expected.expired,
                        all_as_expected ? "every run matched, no late events" : "MISMATCH (see the table)");
        }
        std::printf("raw: first event consumed -> every output acknowledged (consume -> produce, no state).\n"
                    "host: first event processed -> the group's committed offsets cover every input (a commit waits "
                    "for the changelog flush); \"processed\": -> the agent's processed counter reached N.\n");
    }
    return 0;
}
