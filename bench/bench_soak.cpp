// bench_soak: a host's memory and CPU under a long steady load (RELIABILITY 33 and 34).
//
// One broker (librdkafka's mock cluster on 127.0.0.1, free port) in this process; the host is a real `mephisto
// run` child process, so its RSS and CPU are its own. First the raw loop's capacity (bench_support's run_raw over
// a preloaded topic, median of 3); the load is half of it unless --rate says otherwise. The host runs the word
// count (examples/word_count, agent `count`, an int64 RocksDB table) over --words distinct words, or the
// pass-through (bench/plugins/passthrough.c) to `out`; a paced producer here writes the load for --seconds. With
// --sink-rtt the sink (the changelog, or `out`) is led by a second broker that answers after that many ms: a slow
// sink, whose acknowledgements hold the inputs back. Every --every seconds: the host's RSS (VmRSS), its CPU over the
// interval, and how far the group's committed offsets are behind what was produced. Once the load stops: the
// time until everything is committed, then the host's CPU over 10 idle seconds. Prints a markdown table on stdout;
// progress on stderr.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bench_support.hpp"
#include "common/logging.hpp"
#include "kafka/embedded_broker.hpp"

#ifndef MEPHISTO_WORD_COUNT_PLUGIN_DIR
#define MEPHISTO_WORD_COUNT_PLUGIN_DIR "build/plugins"
#endif
#ifndef MEPHISTO_BENCH_PLUGIN_DIR
#define MEPHISTO_BENCH_PLUGIN_DIR "build/bench/plugins"
#endif
#ifndef MEPHISTO_BENCH_BINARY
#define MEPHISTO_BENCH_BINARY "build/mephisto"
#endif

namespace {

using namespace mephisto::bench;
using namespace std::chrono_literals;

std::filesystem::path g_temp_dir;

struct Options {
    long rate = 0;  // events/s; 0: half of the raw loop's capacity
    int seconds = 600;
    int every = 10;
    long words = 100'000;
    int partitions = 12;
    long capacity_events = 300'000;
    std::string pipeline = "word_count";  // or "passthrough"
    int sink_rtt_ms = 0;                  // a slow sink: the round trip of the broker leading the sink's partitions
    std::string plugin_dir;               // default: where the pipeline's plugin is built
    std::string binary = MEPHISTO_BENCH_BINARY;
    std::string extra_yaml;  // appended to the pipeline file, e.g. "consumer: {queued.min.messages: 100000}"
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_soak [--seconds S] [--rate N] [--words W] [--every S] [--partitions P]\n"
                 "                  [--pipeline word_count|passthrough] [--sink-rtt MS]\n"
                 "                  [--plugin-dir DIR] [--mephisto PATH] [--yaml TEXT]\n"
                 "  --seconds S     how long the load runs (default 600)\n"
                 "  --rate N        events/s (default: half of the raw loop's capacity, measured first)\n"
                 "  --words W       distinct words, uniform (default 100000)\n"
                 "  --every S       seconds between samples (default 10)\n"
                 "  --partitions P  partitions of the input (default 12)\n"
                 "  --pipeline NAME word_count (default: the count into a RocksDB table, its changelog the sink) or\n"
                 "                  passthrough (bench/plugins/passthrough.c: every event forwarded to `out`)\n"
                 "  --sink-rtt MS   a slow sink: the sink's partitions are led by a second broker answering after MS\n"
                 "  --yaml TEXT     appended to the pipeline file (a setting to compare: 'consumer: {...}')\n");
}

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& f = args.flag();
        if (f == "--seconds") o.seconds = static_cast<int>(args.number(10, 24 * 3600));
        else if (f == "--rate") o.rate = args.number(1, 10'000'000);
        else if (f == "--words") o.words = args.number(1, 100'000'000);
        else if (f == "--every") o.every = static_cast<int>(args.number(1, 3600));
        else if (f == "--partitions") o.partitions = static_cast<int>(args.number(1, 256));
        else if (f == "--plugin-dir") o.plugin_dir = args.value();
        else if (f == "--pipeline") o.pipeline = args.value();
        else if (f == "--sink-rtt") o.sink_rtt_ms = static_cast<int>(args.number(0, 60'000));
        else if (f == "--mephisto") o.binary = args.value();
        else if (f == "--yaml") o.extra_yaml = args.value();
        else if (f == "--help" || f == "-h") {
            usage();
            std::exit(0);
        } else {
            usage();
            die("unknown flag " + f);
        }
    }
    if (o.pipeline != "word_count" && o.pipeline != "passthrough") die("--pipeline: word_count or passthrough");
    if (o.plugin_dir.empty())
        o.plugin_dir = o.pipeline == "word_count" ? MEPHISTO_WORD_COUNT_PLUGIN_DIR : MEPHISTO_BENCH_PLUGIN_DIR;
    return o;
}


// The resident set of `pid` in MiB (VmRSS), and its CPU seconds (user + system).
double rss_mib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
}

double cpu_of(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');  // the command may hold spaces
    if (close == std::string::npos) return 0;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> field; ++i) {  // field 3 is the state
        if (i == 14) utime = std::stod(field);
        if (i == 15) {
            stime = std::stod(field);
            break;
        }
    }
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Sum of the group's committed offsets over the input's partitions; `watcher` has the host's group id and never
// joins the group.
long committed(rd_kafka_t* watcher, int partitions) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, "words", p);
    long sum = -1;
    if (rd_kafka_committed(watcher, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sum = 0;
        for (int i = 0; i < list->cnt; ++i) sum += std::max<int64_t>(list->elems[i].offset, 0);
    }
    rd_kafka_topic_partition_list_destroy(list);
    return sum;
}

// `events` words of the load's shape (key = value = the word) into `topic`.
void preload(long events, long words, const std::string& bootstrap, const std::string& topic) {
    Acks acks;
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
    for (long i = 0; i < events; ++i) {
        const std::string w = "w" + std::to_string(i % words);
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(w.data(), w.size()),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(w.data()), w.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
    }
    rd_kafka_flush(p, 60'000);
    if (acks.ok != events) die("preload: " + std::to_string(acks.ok.load()) + " of " + std::to_string(events) + " acknowledged");
    rd_kafka_destroy(p);
}

struct Sample {
    double t = 0;
    long produced = 0;
    long committed = 0;
    double rss = 0;
    double cpu_percent = 0;  // of one core, over the interval
};

}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(stderr, "bench_soak: %s\n", what.c_str());
    kill_child_process();
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::warn);
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / (o.pipeline + ".so")))
        die(o.plugin_dir + "/" + o.pipeline + ".so not found (build the `" + o.pipeline + "` target, or pass --plugin-dir)");
    if (::access(o.binary.c_str(), X_OK) != 0) die(o.binary + " is not an executable (build `mephisto`, or pass --mephisto)");
    ::signal(SIGPIPE, SIG_IGN);

    auto broker = mephisto::EmbeddedBroker::start(0, o.sink_rtt_ms > 0 ? 2 : 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();

    long rate = o.rate;
    double capacity = 0;
    if (rate == 0) {
        for (const char* t : {"capacity-in", "capacity-out-0", "capacity-out-1", "capacity-out-2"})
            if (auto st = (*broker)->create_topic(t, o.partitions); !st) die(st.error());
        preload(o.capacity_events, o.words, bootstrap, "capacity-in");
        std::vector<double> eps;
        for (int i = 0; i < 3; ++i) {
            const auto r = run_raw(bootstrap, "capacity-in", o.partitions, o.capacity_events, "capacity-out-" + std::to_string(i), i);
            eps.push_back(static_cast<double>(o.capacity_events) / r.seconds);
        }
        capacity = median(eps);
        rate = static_cast<long>(capacity / 2);
        std::fprintf(stderr, "raw loop capacity %.0f events/s: the load is %ld events/s\n", capacity, rate);
    }

    char tmpl[] = "/tmp/mephisto-soak-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    g_temp_dir = tmpl;
    if (auto st = (*broker)->create_topic("words", o.partitions); !st) die(st.error());
    const std::string app = "soak-" + std::to_string(::getpid());
    // The sink: the word count's changelog (the mock has no Admin API: created here, as bench_word_count does), or
    // the pass-through's output.
    const std::string sink = o.pipeline == "word_count" ? app + "-word_counts-changelog" : "out";
    if (auto st = (*broker)->create_topic(sink, o.partitions); !st) die(st.error());
    if (o.sink_rtt_ms > 0) {
        rd_kafka_mock_cluster_t* cluster = (*broker)->cluster();
        for (int p = 0; p < o.partitions; ++p) {
            if (rd_kafka_mock_partition_set_leader(cluster, "words", p, 1) ||
                rd_kafka_mock_partition_set_leader(cluster, sink.c_str(), p, 2))
                die("cannot move the partitions' leaders");
        }
        if (rd_kafka_mock_broker_set_rtt(cluster, 2, o.sink_rtt_ms)) die("cannot slow broker 2 down");
    }
    const auto yaml = g_temp_dir / "soak.yaml";
    {
        std::ofstream f(yaml);
        f << "# written by bench_soak\n"
          << "app: {id: " << app << "}\n"
          << "broker: {bootstrap: \"" << bootstrap << "\"}\n"
          << "plugins: {dir: \"" << std::filesystem::absolute(o.plugin_dir).string() << "\"}\n"
          << "state_dir: \"" << (g_temp_dir / "state").string() << "\"\n"
          << "topics:\n  words: {partitions: " << o.partitions << "}\n";
        if (o.pipeline == "passthrough") f << "  out: {partitions: " << o.partitions << "}\n";
        if (o.pipeline == "word_count")
            f << "tables:\n  word_counts: {store: rocksdb, value: int64, default: 0, partitions: " << o.partitions << "}\n"
              << "agents:\n  count: {plugin: word_count, agent: count, from: words, tables: [word_counts]}\n";
        else
            f << "agents:\n  pass: {plugin: passthrough, agent: pass, from: words, sinks: [out]}\n";
        if (!o.extra_yaml.empty()) f << o.extra_yaml << "\n";
    }
    MephistoProcess host(o.binary, {"run", yaml.string()});
    host.await("[" + app + "] assigned", 0, 60s);
    std::fprintf(stderr, "host %d has its partitions; %ld events/s for %d s over %ld words\n", host.pid(), rate, o.seconds,
                 o.words);

    rd_kafka_t* watcher = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", app}});
    Acks acks;
    rd_kafka_t* producer = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
    std::mt19937_64 random(42);
    std::vector<std::string> words;
    words.reserve(static_cast<size_t>(o.words));
    for (long w = 0; w < o.words; ++w) words.push_back("w" + std::to_string(w));

    std::vector<Sample> samples;
    const auto started = Clock::now();
    const auto end = started + std::chrono::seconds(o.seconds);
    auto next_sample = started;
    double last_cpu = cpu_of(host.pid());
    auto last_cpu_at = started;
    long produced = 0;
    auto sample = [&](Clock::time_point now) {
        Sample s;
        s.t = seconds(now - started);
        s.produced = produced;
        s.committed = committed(watcher, o.partitions);
        s.rss = rss_mib(host.pid());
        const double cpu = cpu_of(host.pid());
        const double span = seconds(now - last_cpu_at);
        s.cpu_percent = span > 0 ? 100.0 * (cpu - last_cpu) / span : 0;
        last_cpu = cpu;
        last_cpu_at = now;
        samples.push_back(s);
        std::fprintf(stderr, "%6.0f s: produced %ld, committed %ld, RSS %.1f MiB, CPU %.0f %%\n", s.t, s.produced, s.committed,
                     s.rss, s.cpu_percent);
    };
    // Paced in 1 ms slices: each slice's share is produced, then the next slice is awaited.
    const auto slice = 1ms;
    const double per_slice = static_cast<double>(rate) / 1000.0;
    double owed = 0;
    for (auto at = started; at < end; at += slice) {
        std::this_thread::sleep_until(at);
        owed += per_slice;
        for (; owed >= 1; owed -= 1) {
            const std::string& w = words[random() % words.size()];
            while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("words"), RD_KAFKA_V_KEY(w.data(), w.size()),
                                     RD_KAFKA_V_VALUE(const_cast<char*>(w.data()), w.size()),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 1);
            ++produced;
        }
        rd_kafka_poll(producer, 0);
        if (Clock::now() >= next_sample) {
            if (!host.alive()) die("the host exited:\n" + host.tail());
            sample(Clock::now());
            next_sample += std::chrono::seconds(o.every);
        }
    }
    rd_kafka_flush(producer, 60'000);
    if (acks.ok != produced) die("the load: " + std::to_string(acks.ok.load()) + " of " + std::to_string(produced) + " acknowledged");
    const auto load_stopped = Clock::now();
    sample(load_stopped);
    const double achieved = static_cast<double>(produced) / seconds(load_stopped - started);
    // Everything committed: the host caught up.
    long done = 0;
    while ((done = committed(watcher, o.partitions)) < produced) {
        if (Clock::now() - load_stopped > 120s) die("the host did not commit every input within 120 s: " + std::to_string(done));
        std::this_thread::sleep_for(50ms);
    }
    const double catch_up = seconds(Clock::now() - load_stopped);
    const double rss_after = rss_mib(host.pid());
    const double idle_from = cpu_of(host.pid());
    const auto idle_started = Clock::now();
    std::this_thread::sleep_for(10s);  // measuring an interval, not waiting for a condition
    const double idle_cpu = 100.0 * (cpu_of(host.pid()) - idle_from) / seconds(Clock::now() - idle_started);
    host.stop();
    rd_kafka_destroy(producer);
    rd_kafka_destroy(watcher);
    std::filesystem::remove_all(g_temp_dir);

    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
    std::printf("## bench_soak — %s\n\n", date);
    std::printf("%s over %ld distinct words, %d partitions, a `mephisto run` child process; load %ld events/s%s for %d s "
                "(achieved %.0f)%s, librdkafka %s, embedded broker in the bench\n\n",
                o.pipeline == "word_count" ? "word count (`count`, int64 RocksDB table)" : "pass-through (`pass` to `out`)",
                o.words, o.partitions, rate, capacity > 0 ? (" (half of the raw loop's " + num("%.0f", capacity) + ")").c_str() : "",
                o.seconds, achieved,
                o.sink_rtt_ms > 0 ? (", the sink (" + sink + ") on a broker answering after " + std::to_string(o.sink_rtt_ms) + " ms").c_str() : "",
                rd_kafka_version_str());
    std::printf("| t s | produced | committed | behind | host RSS MiB | host CPU %% of a core |\n");
    std::printf("|--:|--:|--:|--:|--:|--:|\n");
    for (const auto& s : samples)
        std::printf("| %.0f | %ld | %ld | %ld | %.1f | %.0f |\n", s.t, s.produced, s.committed, s.produced - s.committed,
                    s.rss, s.cpu_percent);
    // The first sample a minute in: the tables and the caches have their size by then.
    const Sample* start = &samples.front();
    for (const auto& s : samples)
        if (s.t >= 60) {
            start = &s;
            break;
        }
    std::printf("\nRSS: %.1f MiB at %.0f s, %.1f MiB at the end of the load (%.0f s), %.1f MiB once caught up; everything "
                "committed %.2f s after the load stopped; then the host's CPU over 10 idle seconds: %.1f %% of a core\n",
                start->rss, start->t, samples.back().rss, samples.back().t, rss_after, catch_up, idle_cpu);
    return 0;
}
