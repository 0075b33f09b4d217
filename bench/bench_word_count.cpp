// bench_word_count: the word-count figures of bench/README.md.
//
// One process, one broker (librdkafka's mock cluster on 127.0.0.1, free port).
//  1. Throughput. `words` is preloaded once with N events, key = value = one of W distinct words (uniform).
//     Then, alternating, R times each:
//       raw  — the plain librdkafka consume -> produce loop of bench_passthrough over `words` (assign mode,
//              idempotent producer, the host's client settings); first event consumed -> flush() returned.
//       host — an in-process mephisto::Host running agent `count` of the word_count plugin reading `words`
//              directly (no group_by) with the int64 RocksDB table `word_counts` in a temporary state_dir, its
//              changelog produced by the host; first event processed -> the app group's committed offsets
//              (rd_kafka_committed through a separate client, every 20 ms) cover all N inputs. A commit waits
//              for the changelog flush, so this includes table persistence.
//     The figure is median(host) / median(raw).
//  2. Recovery. `words-distinct` is preloaded with K distinct words (each once), a host counts them (so the
//     changelog holds ~K records), stops; then, R times: delete the state dir, start a host on the same app id
//     and changelog, and time the restore from the assignment until every table partition logged "recovered N
//     record(s) in X s" (the host's stderr goes to a file meanwhile; the lines are parsed).
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
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "bench_support.hpp"
#include "common/logging.hpp"
#include "host/host.hpp"
#include "kafka/embedded_broker.hpp"

#ifndef MEPHISTO_WORD_COUNT_PLUGIN_DIR
#define MEPHISTO_WORD_COUNT_PLUGIN_DIR "build/plugins"
#endif

namespace {

using namespace mephisto::bench;

struct Options {
    long events = 1'000'000;
    int words = 1000;
    int runs = 5;
    int recovery_runs = 0;  // 0: same as runs
    long recovery_keys = 1'000'000;
    int partitions = 0;  // 0: enough for the mock's retention (see partitions_for)
    int workers = 2;
    int commit_interval_ms = 0;  // 0: the host's default
    std::string plugin_dir = MEPHISTO_WORD_COUNT_PLUGIN_DIR;
    std::string only;  // "raw", "host" or "recovery"
    bool warmup = true;
    bool verbose = false;
};

std::filesystem::path g_temp_dir;  // removed on every exit path
FILE* g_progress = stderr;         // the real stderr, also while the host's log goes to a file
mephisto::EmbeddedBroker* g_broker = nullptr;


void usage() {
    std::printf(
        "usage: bench_word_count [--events N] [--words W] [--runs R] [--recovery-keys K] [--recovery-runs R]\n"
        "                        [--partitions P] [--workers W] [--commit-interval MS] [--plugin-dir DIR]\n"
        "                        [--only raw|host|recovery] [--no-warmup] [--verbose]\n"
        "  --events N          words preloaded into `words` and counted per run (default 1000000)\n"
        "  --words W           distinct words among them, uniform (default 1000)\n"
        "  --runs R            throughput runs of each side, alternating raw and host (default 5)\n"
        "  --recovery-keys K   distinct words of the recovery-only input, i.e. changelog records (default 1000000;\n"
        "                      0 skips the recovery figure)\n"
        "  --recovery-runs R   recoveries timed (default: --runs)\n"
        "  --partitions P      partitions of every topic (default: at least 8, enough for the mock's 5 MiB/partition)\n"
        "  --workers W         the host pipeline's worker threads (default 2)\n"
        "  --commit-interval M the pipeline's commit_interval in ms (default: the host's, 1 s)\n"
        "  --plugin-dir D      where word_count.so is (default: the build tree's plugins/)\n"
        "  --only SIDE         run only `raw`, `host` or `recovery` (for profiling; prints no ratio)\n"
        "  --no-warmup         skip the unrecorded warm-up pass of each side\n"
        "  --verbose           the host's info logs on stderr\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& a = args.flag();
        auto value = [&] { return args.value(); };
        auto number = [&](long lo, long hi) { return args.number(lo, hi); };
        if (a == "--events") o.events = number(1, 100'000'000);
        else if (a == "--words") o.words = static_cast<int>(number(1, 100'000'000));
        else if (a == "--runs") o.runs = static_cast<int>(number(1, 100));
        else if (a == "--recovery-runs") o.recovery_runs = static_cast<int>(number(1, 100));
        else if (a == "--recovery-keys") o.recovery_keys = number(0, 100'000'000);
        else if (a == "--partitions") o.partitions = static_cast<int>(number(1, 1024));
        else if (a == "--workers") o.workers = static_cast<int>(number(1, 64));
        else if (a == "--commit-interval") o.commit_interval_ms = static_cast<int>(number(1, 600'000));
        else if (a == "--plugin-dir") o.plugin_dir = value();
        else if (a == "--only") {
            o.only = value();
            if (o.only != "raw" && o.only != "host" && o.only != "recovery") die("--only must be raw, host or recovery");
        }
        else if (a == "--verbose") o.verbose = true;
        else if (a == "--no-warmup") o.warmup = false;
        else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
        else die("unknown argument '" + a + "' (see --help)");
    }
    if (o.recovery_runs == 0) o.recovery_runs = o.runs;
    return o;
}

using namespace std::chrono_literals;










// The librdkafka 2.0.2 mock keeps at most 5 MiB of log per partition (rdkafka_mock.c: mpart->max_size, not
// settable) and silently drops the oldest message sets beyond it: the inputs and changelogs must fit.
// Here a record carries an ~7-byte key and the same ~7-byte value: ~50 bytes on the log, and the
// recovery-only input (--recovery-keys) counts too.
int partitions_for(const Options& o) {
    if (o.partitions > 0) return o.partitions;
    const double bytes = static_cast<double>(std::max(o.events, o.recovery_keys)) * 50;
    const int needed = static_cast<int>(bytes / (4.0 * 1024 * 1024)) + 1;
    return std::max(8, (needed + 3) / 4 * 4);
}






std::string word(long i) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "w%ld", i);
    return buf;
}

// `count` events into `topic`: key = value = a word; with `distinct` the i-th event is word i (each once),
// otherwise a uniform pick among o.words.
void preload(const Options& o, const std::string& bootstrap, const std::string& topic, long count, bool distinct) {
    Acks acks;
    auto props = producer_props(bootstrap);
    props["linger.ms"] = "20";
    props["batch.num.messages"] = "10000";
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, props, count_delivery, &acks);
    std::mt19937 rng(42);
    for (long i = 0; i < count; ++i) {
        const std::string w = word(distinct ? i : static_cast<long>(rng() % static_cast<unsigned>(o.words)));
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(w.data(), w.size()), RD_KAFKA_V_VALUE(const_cast<char*>(w.data()), w.size()), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("preload: ") + rd_kafka_err2str(err));
            rd_kafka_poll(p, 10);
        }
        if (i % 10000 == 0) rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR || acks.failed || acks.ok != count)
        die("preload: not every input was acknowledged");
    rd_kafka_destroy(p);
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
    f << "# written by bench_word_count\n"
      << "app: {id: " << app << "}\n"
      << "broker: {bootstrap: \"" << bootstrap << "\"}\n"
      << "plugins: {dir: \"" << std::filesystem::absolute(o.plugin_dir).string() << "\"}\n"
      << "state_dir: \"" << (dir / (app + "-state")).string() << "\"\n"
      << "workers: " << o.workers << "\n"
      << "shutdown_timeout: 30s\n"
      // A restarted host (the recovery runs reuse the app id) gets the partitions back without waiting out the
      // previous member's session (45 s by default on the mock).
      << "consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}\n";
    if (o.commit_interval_ms > 0) f << "commit_interval: " << o.commit_interval_ms << "ms\n";
    f << "topics:\n"
      << "  " << input << ": {partitions: " << o.partitions << "}\n"
      << "tables:\n"
      << "  word_counts: {store: rocksdb, value: int64, default: 0, partitions: " << o.partitions << "}\n"
      << "agents:\n"
      << "  count: {plugin: word_count, agent: count, from: " << input << ", tables: [word_counts]}\n";
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
};

struct RunningHost {
    std::unique_ptr<mephisto::Host> host;
    Clock::time_point start, assigned;
};

RunningHost start_host(const std::filesystem::path& yaml, const std::string& bootstrap) {
    mephisto::HostOptions options;
    options.files = {yaml};
    options.broker = "kafka://" + bootstrap;
    RunningHost r;
    r.start = Clock::now();
    auto host = mephisto::Host::start(options);
    if (!host) die("host: " + host.error());
    r.host = std::move(*host);
    const auto& pipeline = *r.host->pipelines().front();
    while (pipeline.assigned_partitions() == 0) {
        if (r.host->failed()) die("host: " + r.host->failure());
        if (Clock::now() - r.start > 60s) die("host: no partitions assigned within 60 s");
        std::this_thread::sleep_for(1ms);
    }
    r.assigned = Clock::now();
    return r;
}

// Runs a host over `input` (count events) until its group committed them all.
HostResult run_host(const Options& o, const std::string& bootstrap, rd_kafka_t* watcher, const std::string& app,
                    const std::string& input, long count, const std::filesystem::path& dir) {
    const auto yaml = write_yaml(o, bootstrap, app, input, dir);
    // Created here with the table's partition count: the mock would auto-create it with its default of 4 when
    // the host first asks for its metadata.
    if (auto st = g_broker->create_topic(app + "-word_counts-changelog", o.partitions); !st) die(st.error());
    rd_kafka_t* group = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", app}});
    HostResult r;
    RunningHost h = start_host(yaml, bootstrap);
    const double cpu0 = cpu_seconds();
    r.join = seconds(h.assigned - h.start);
    const auto& pipeline = *h.host->pipelines().front();
    const auto& processed = pipeline.agents().front()->stats.processed;
    while (processed.load(std::memory_order_relaxed) == 0) {
        if (h.host->failed()) die("host: " + h.host->failure());
        if (Clock::now() - h.assigned > 60s) die("host: no event processed within 60 s of the assignment");
        std::this_thread::sleep_for(200us);
    }
    const auto t0 = Clock::now();
    r.startup = seconds(t0 - h.assigned);
    const auto deadline = t0 + 300s;
    bool all_processed = false;
    for (;;) {
        if (!all_processed && processed.load(std::memory_order_relaxed) >= static_cast<uint64_t>(count)) {
            all_processed = true;
            r.processed = seconds(Clock::now() - t0);
        }
        const long n = committed_sum(group, input, o.partitions);
        if (n >= count) break;
        if (h.host->failed()) die("host: " + h.host->failure());
        if (Clock::now() > deadline) die("host: only " + std::to_string(n) + " inputs committed within 300 s");
        std::this_thread::sleep_for(20ms);
    }
    const auto t1 = Clock::now();
    r.cpu = cpu_seconds() - cpu0;
    r.seconds = seconds(t1 - t0);
    if (!all_processed) r.processed = r.seconds;
    const auto s0 = Clock::now();
    h.host->stop();
    h.host.reset();
    r.stop = seconds(Clock::now() - s0);
    r.changelog = high_watermarks(watcher, app + "-word_counts-changelog", o.partitions);
    rd_kafka_destroy(group);
    std::filesystem::remove(yaml);
    return r;
}

struct RecoveryResult {
    double wall = 0;        // partitions assigned -> every table partition logged "recovered"
    double logged = 0;      // sum of the X of "recovered N record(s) in X s"
    long records = 0;       // sum of the N
    int shards = 0;
    double join = 0;
};

// Deletes the state dir, starts a host on `app` again with its log (info) in a file, and waits for every table
// partition's "recovered N record(s) in X s" (or "up to date") line.
RecoveryResult run_recovery(const Options& o, const std::string& bootstrap, const std::string& app,
                            const std::string& input, const std::filesystem::path& dir, int run) {
    std::filesystem::remove_all(dir / (app + "-state"));
    const auto yaml = write_yaml(o, bootstrap, app, input, dir);
    const auto log = dir / (app + "-recovery-" + std::to_string(run) + ".log");
    std::fflush(stderr);
    const int saved = dup(2);
    FILE* f = std::fopen(log.c_str(), "w");
    if (!f || saved < 0) die("cannot open " + log.string());
    dup2(fileno(f), 2);
    mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::info);
    auto restore = [&] {
        mephisto::setup_logging(mephisto::LogFormat::text, o.verbose ? spdlog::level::info : spdlog::level::warn);
        std::fflush(stderr);
        dup2(saved, 2);
        close(saved);
        std::fclose(f);
    };

    RecoveryResult r;
    RunningHost h = start_host(yaml, bootstrap);
    r.join = seconds(h.assigned - h.start);
    static const std::regex done_re(R"(table word_counts\[\d+\]: (recovered (\d+) record\(s\) in ([0-9.]+) s|up to date))");
    const auto deadline = h.assigned + 300s;
    for (;;) {
        std::ifstream in(log);
        std::string line;
        int shards = 0;
        long records = 0;
        double logged = 0;
        while (std::getline(in, line)) {
            std::smatch m;
            if (!std::regex_search(line, m, done_re)) continue;
            ++shards;
            if (m[2].matched) {
                records += std::stol(m[2]);
                logged += std::stod(m[3]);
            }
        }
        if (shards >= o.partitions) {
            r.wall = seconds(Clock::now() - h.assigned);
            r.records = records;
            r.logged = logged;
            r.shards = shards;
            break;
        }
        if (h.host->failed()) { restore(); die("host: " + h.host->failure()); }
        if (Clock::now() > deadline) { restore(); die("recovery: not done within 300 s, see " + log.string()); }
        std::this_thread::sleep_for(5ms);
    }
    h.host->stop();
    h.host.reset();
    restore();
    std::filesystem::remove(yaml);
    std::filesystem::remove(log);
    return r;
}


}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(g_progress, "bench_word_count: %s\n", what.c_str());
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
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / "word_count.so"))
        die(o.plugin_dir + "/word_count.so not found (build the `word_count` target, or pass --plugin-dir)");

    auto broker = mephisto::EmbeddedBroker::start(0, 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();
    g_broker = broker->get();
    rd_kafka_t* watcher = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", "bench-watcher"}});

    char tmpl[] = "/tmp/mephisto-bench-wc-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    const std::filesystem::path dir = tmpl;
    g_temp_dir = dir;
    const std::string pid = std::to_string(getpid());

    const bool throughput = o.only != "recovery";
    std::vector<RawResult> raws;
    std::vector<HostResult> hosts;
    if (throughput) {
        if (auto st = (*broker)->create_topic("words", o.partitions); !st) die(st.error());
        std::fprintf(g_progress, "broker %s; preloading %ld words (%d distinct) into `words` (%d partitions)...\n",
                     bootstrap.c_str(), o.events, o.words, o.partitions);
        const auto p0 = Clock::now();
        preload(o, bootstrap, "words", o.events, false);
        std::fprintf(g_progress, "preloaded in %.1f s\n", seconds(Clock::now() - p0));
        if (!nothing_trimmed(watcher, "words", o.partitions))
            die("the embedded broker dropped the oldest inputs (5 MiB per partition): use more --partitions");
        if (o.warmup) {
            if (auto st = (*broker)->create_topic("out-warmup-raw", o.partitions); !st) die(st.error());
            if (o.only != "host") run_raw(bootstrap, "words", o.partitions, o.events, "out-warmup-raw", -1);
            if (o.only != "raw") run_host(o, bootstrap, watcher, "bench-wc-" + pid + "-warmup", "words", o.events, dir);
            std::fprintf(g_progress, "warm-up done\n");
        }
        for (int i = 0; i < o.runs; ++i) {
            const std::string raw_out = "out-raw-" + std::to_string(i);
            if (auto st = (*broker)->create_topic(raw_out, o.partitions); !st) die(st.error());
            auto raw = [&] {
                raws.push_back(run_raw(bootstrap, "words", o.partitions, o.events, raw_out, i));
                const auto& r = raws.back();
                std::fprintf(g_progress, "run %d raw : %8.0f events/s (%.3f s; startup %.3f s; %.2f CPU-s)\n", i + 1,
                             o.events / r.seconds, r.seconds, r.startup, r.cpu);
            };
            auto host = [&] {
                hosts.push_back(run_host(o, bootstrap, watcher, "bench-wc-" + pid + "-" + std::to_string(i), "words",
                                         o.events, dir));
                const auto& h = hosts.back();
                std::fprintf(g_progress,
                             "run %d host: %8.0f events/s (%.3f s to committed; all processed at %.3f s; startup %.3f s; "
                             "%.2f CPU-s; changelog %ld records; group join %.2f s, stop %.2f s)\n",
                             i + 1, o.events / h.seconds, h.seconds, h.processed, h.startup, h.cpu, h.changelog, h.join,
                             h.stop);
            };
            if (o.only == "raw") raw();
            else if (o.only == "host") host();
            else if (i % 2 == 0) { raw(); host(); }
            else { host(); raw(); }
        }
    }

    std::vector<RecoveryResult> recoveries;
    HostResult fill;
    const bool recovery = o.recovery_keys > 0 && (o.only.empty() || o.only == "recovery");
    const std::string rapp = "bench-wc-" + pid + "-recovery";
    if (recovery) {
        if (auto st = (*broker)->create_topic("words-distinct", o.partitions); !st) die(st.error());
        std::fprintf(g_progress, "recovery: preloading %ld distinct words into `words-distinct`...\n", o.recovery_keys);
        preload(o, bootstrap, "words-distinct", o.recovery_keys, true);
        if (!nothing_trimmed(watcher, "words-distinct", o.partitions))
            die("the embedded broker dropped the oldest inputs (5 MiB per partition): use more --partitions");
        fill = run_host(o, bootstrap, watcher, rapp, "words-distinct", o.recovery_keys, dir);
        if (!nothing_trimmed(watcher, rapp + "-word_counts-changelog", o.partitions))
            die("the embedded broker dropped the oldest changelog records: use more --partitions");
        std::fprintf(g_progress, "recovery: counted in %.2f s; changelog %ld records\n", fill.seconds, fill.changelog);
        for (int i = 0; i < o.recovery_runs; ++i) {
            recoveries.push_back(run_recovery(o, bootstrap, rapp, "words-distinct", dir, i));
            const auto& r = recoveries.back();
            std::fprintf(g_progress,
                         "recovery %d: %ld records, %d partitions, %.3f s from assignment (%.0f records/s); logged "
                         "%.2f s (%.0f records/s); group join %.2f s\n",
                         i + 1, r.records, r.shards, r.wall, r.records / r.wall, r.logged,
                         r.logged > 0 ? r.records / r.logged : 0.0, r.join);
        }
    }
    rd_kafka_destroy(watcher);
    std::filesystem::remove_all(dir);

    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    std::printf("\n## bench_word_count — %s\n\n", date);
    std::printf("%d partitions, host workers %d, commit_interval %s, RocksDB store, %u hardware threads, librdkafka %s, "
                "mock broker %s\n",
                o.partitions, o.workers, o.commit_interval_ms > 0 ? (std::to_string(o.commit_interval_ms) + " ms").c_str() : "default (1 s)",
                std::thread::hardware_concurrency(), rd_kafka_version_str(), bootstrap.c_str());

    if (throughput && o.only.empty()) {
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
        std::printf("\n### Throughput: %ld words (%d distinct, uniform) -> agent `count` (table word_counts)\n\n", o.events,
                    o.words);
        std::printf("| run | order | raw events/s | host events/s (to committed) | ratio | host events/s (processed) | "
                    "raw CPU-s/M | host CPU-s/M | changelog records |\n");
        std::printf("|----:|:------|-------------:|-----------------------------:|------:|--------------------------:|"
                    "------------:|-------------:|------------------:|\n");
        for (int i = 0; i < o.runs; ++i)
            std::printf("| %d | %s | %s | %s | %s | %s | %s | %s | %ld |\n", i + 1, i % 2 == 0 ? "raw, host" : "host, raw",
                        num("%.0f", raw_eps[i]).c_str(), num("%.0f", host_eps[i]).c_str(),
                        num("%.1f %%", 100 * ratios[i]).c_str(), num("%.0f", host_proc_eps[i]).c_str(),
                        num("%.2f", raw_cpu[i]).c_str(), num("%.2f", host_cpu[i]).c_str(), hosts[i].changelog);
        const double ratio = median(host_eps) / median(raw_eps);
        std::printf("| **median** | | **%s** | **%s** | **%s** | %s | %s | %s | %s |\n", num("%.0f", median(raw_eps)).c_str(),
                    num("%.0f", median(host_eps)).c_str(), num("%.1f %%", 100 * ratio).c_str(),
                    num("%.0f", median(host_proc_eps)).c_str(), num("%.2f", median(raw_cpu)).c_str(),
                    num("%.2f", median(host_cpu)).c_str(), num("%.0f", median(changelog)).c_str());
        std::printf("\nratio = median(host events/s) / median(raw events/s) = %.1f %% (median of per-run ratios %.1f %%); "
                    "target >= 50 %%: %s\n",
                    100 * ratio, 100 * median(ratios), ratio >= 0.50 ? "MET" : "NOT MET");
        std::printf("raw: first event consumed -> every output acknowledged (consume -> produce, no state).\n"
                    "host: first event processed -> the group's committed offsets cover every input (a commit waits "
                    "for the changelog flush); \"processed\": -> the agent's processed counter reached N.\n");
    }
    if (recovery && !recoveries.empty()) {
        std::vector<double> wall_rate, log_rate;
        std::printf("\n### Recovery: changelog of %ld distinct words (%ld records), state dir deleted before each start\n\n",
                    o.recovery_keys, fill.changelog);
        std::printf("| run | records | partitions | s (assignment -> all recovered) | records/s | s (sum of logged) | "
                    "records/s (logged) | group join s |\n");
        std::printf("|----:|--------:|-----------:|--------------------------------:|----------:|------------------:|"
                    "-------------------:|-------------:|\n");
        for (size_t i = 0; i < recoveries.size(); ++i) {
            const auto& r = recoveries[i];
            wall_rate.push_back(r.records / r.wall);
            log_rate.push_back(r.logged > 0 ? r.records / r.logged : 0.0);
            std::printf("| %zu | %ld | %d | %.3f | %.0f | %.2f | %.0f | %.2f |\n", i + 1, r.records, r.shards, r.wall,
                        wall_rate.back(), r.logged, log_rate.back(), r.join);
        }
        std::printf("| **median** | | | | **%.0f** | | %.0f | |\n", median(wall_rate), median(log_rate));
        std::printf("\nrecovery rate = median(records / (assignment -> last partition recovered)) = %.0f records/s; "
                    "target >= 500000: %s\n",
                    median(wall_rate), median(wall_rate) >= 500000 ? "MET" : "NOT MET");
    }
    return 0;
}
