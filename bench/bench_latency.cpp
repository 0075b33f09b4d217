// bench_latency: how long an event takes through the host at a steady load, p50 and p99.
//
// One process, one broker (librdkafka's mock cluster on 127.0.0.1, free port). First the raw loop's capacity
// (bench_support's run_raw over a preloaded topic, median of 3); the load is half of it unless --rate says
// otherwise. Then, for each client setting below, R runs of: a fresh pair of topics and an in-process host
// running the pass-through (C plugin `passthrough`, agent `pass`, api->forward per event); a paced producer
// writes the load for --seconds, each value carrying the steady clock at its produce() call; a consumer
// assigned to the output (fetch.wait.max.ms 1) reads each output and records now minus that time: from the
// input's produce call to the output readable on the broker, an upper bound of "to its acknowledgement". The
// first second of each run is not recorded (the clients' connections and batches warm up).
// Settings: first the baseline, librdkafka's own consume -> produce loop in place of the host with the host's
// client defaults on the embedded broker, then the host with the consumer's fetch.wait.max.ms at 5 ms (the host's default on its embedded broker) and 100 ms (its
// default on an external broker, and everywhere before), and 5 ms with the producer's linger.ms at 0 (5 by default). Prints a markdown table on stdout; progress on stderr.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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

std::filesystem::path g_temp_dir;

struct Options {
    long rate = 0;  // events/s; 0: half of the raw loop's capacity
    int seconds = 10;
    int runs = 5;
    int partitions = 8;
    int value_size = 100;
    long capacity_events = 300'000;  // preloaded for the raw loop's capacity
    std::string plugin_dir = MEPHISTO_BENCH_PLUGIN_DIR;
};

Options parse(int argc, char** argv) {
    Options o;
    for (ArgReader args(argc, argv); args.next();) {
        const std::string& f = args.flag();
        if (f == "--rate") o.rate = args.number(1, 10'000'000);
        else if (f == "--seconds") o.seconds = static_cast<int>(args.number(2, 3600));
        else if (f == "--runs") o.runs = static_cast<int>(args.number(1, 100));
        else if (f == "--partitions") o.partitions = static_cast<int>(args.number(1, 256));
        else if (f == "--plugin-dir") o.plugin_dir = args.value();
        else {
            std::fprintf(stderr,
                         "usage: bench_latency [--rate N] [--seconds S] [--runs R] [--partitions P] [--plugin-dir DIR]\n"
                         "  --rate N        events/s (default: half of the raw loop's capacity, measured first)\n"
                         "  --seconds S     load per run (default 10; the first second is not recorded)\n"
                         "  --runs R        runs per setting (default 5)\n"
                         "  --partitions P  partitions of the input and output topics (default 8)\n");
            std::exit(f == "--help" ? 0 : 2);
        }
    }
    return o;
}

struct Setting {
    const char* name;
    const char* yaml;  // consumer:/producer: lines of the pipeline file; null: the raw loop instead of a host
};

// The bench's host reaches the broker as an external one (kafka://), so the settings name the values.
const Setting kSettings[] = {
    // The baseline: librdkafka's consume -> produce loop with the host's embedded-broker defaults (fetch.wait.max.ms
    // 5, linger.ms 5), in the same process beside the same load and reader.
    {"raw librdkafka loop, fetch.wait.max.ms 5, linger.ms 5 (the baseline)", nullptr},
    {"fetch.wait.max.ms 5 (the host's default on its embedded broker)", "consumer: {fetch.wait.max.ms: 5}\n"},
    {"fetch.wait.max.ms 100 (the default on an external broker; before: everywhere)",
     "consumer: {fetch.wait.max.ms: 100}\n"},
    {"fetch.wait.max.ms 5, producer linger.ms 0", "consumer: {fetch.wait.max.ms: 5}\nproducer: {linger.ms: 0}\n"},
};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return v[i];
}

struct RunResult {
    double p50 = 0, p99 = 0, max = 0;  // milliseconds
    long recorded = 0;
    long lost = 0;  // outputs the reader never saw (dropped by the broker's retention before it got there)
};

// The raw loop between `in` and `out` until `stop`: the baseline of what librdkafka alone adds at this load.
void raw_loop(const std::string& bootstrap, const std::string& in, const std::string& out, int partitions,
              const std::string& group, const std::atomic<bool>& stop) {
    Acks acks;
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
    auto props = consumer_props(bootstrap, group);
    props["fetch.wait.max.ms"] = "5";
    rd_kafka_t* c = client(RD_KAFKA_CONSUMER, props);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(p, out.c_str(), nullptr);
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; ++i) rd_kafka_topic_partition_list_add(parts, in.c_str(), i)->offset = 0;
    if (rd_kafka_assign(c, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw: assign");
    rd_kafka_topic_partition_list_destroy(parts);
    for (long consumed = 0; !stop.load(std::memory_order_relaxed);) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (!m->err) {
            while (rd_kafka_producev(p, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 1);
            if (++consumed % 1024 == 0) rd_kafka_poll(p, 0);  // serve delivery reports
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(p, 30'000);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
}

RunResult run(const Options& o, mephisto::EmbeddedBroker& broker, const Setting& setting, int run_no, long rate) {
    const std::string tag = std::to_string(getpid()) + "-" + std::to_string(run_no) + "-" +
                            std::to_string(&setting - kSettings);
    const std::string in = "lat-in-" + tag, out = "lat-out-" + tag, app = "bench-latency-" + tag;
    if (auto st = broker.create_topic(in, o.partitions); !st) die(st.error());
    if (auto st = broker.create_topic(out, o.partitions); !st) die(st.error());
    const std::string bootstrap = broker.bootstrap();
    const auto yaml = g_temp_dir / (app + ".yaml");
    std::unique_ptr<mephisto::Host> host;  // null: the raw loop runs instead
    std::atomic<bool> raw_stop{false};
    std::thread raw;
    if (!setting.yaml) {
        raw = std::thread([&] { raw_loop(bootstrap, in, out, o.partitions, app, raw_stop); });
    } else {
        std::ofstream file(yaml);
        file << "app: {id: " << app << "}\n"
             << "broker: {bootstrap: \"" << bootstrap << "\"}\n"
             << "plugins: {dir: \"" << std::filesystem::absolute(o.plugin_dir).string() << "\"}\n"
             << setting.yaml << "topics:\n"
             << "  " << in << ": {partitions: " << o.partitions << "}\n"
             << "  " << out << ": {partitions: " << o.partitions << "}\n"
             << "agents:\n  pass: {plugin: passthrough, agent: pass, from: " << in << ", sinks: [" << out << "]}\n";
        file.close();
        mephisto::HostOptions options;
        options.files = {yaml};
        options.broker = "kafka://" + bootstrap;
        auto started = mephisto::Host::start(options);
        if (!started) die("host: " + started.error());
        host = std::move(*started);
        const auto& pipeline = *host->pipelines().front();
        const auto start = Clock::now();
        while (pipeline.assigned_partitions() == 0) {
            if (host->failed()) die("host: " + host->failure());
            if (Clock::now() - start > 60s) die("host: no partitions assigned within 60 s");
            std::this_thread::sleep_for(1ms);
        }
    }

    // The reader of the outputs, from their beginning.
    rd_kafka_t* reader = client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                                    {"group.id", app + "-reader"},
                                                    {"enable.auto.commit", "false"},
                                                    {"fetch.wait.max.ms", "1"},
                                                    {"enable.partition.eof", "false"}});
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(o.partitions);
    for (int p = 0; p < o.partitions; ++p)
        rd_kafka_topic_partition_list_add(parts, out.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(reader, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    const long total = rate * o.seconds;
    std::atomic<int64_t> record_from_ns{INT64_MAX};
    std::atomic<bool> loaded{false};  // every input acknowledged
    std::thread load([&] {
        Acks acks;
        auto props = producer_props(bootstrap);
        props["linger.ms"] = "1";  // the load's own batching adds at most 1 ms
        rd_kafka_t* producer = client(RD_KAFKA_PRODUCER, props, count_delivery, &acks);
        std::string value(static_cast<size_t>(o.value_size), 'v');
        const auto t0 = Clock::now();
        record_from_ns = now_ns() + 1'000'000'000;  // the first second warms up
        for (long i = 0; i < total; ++i) {
            // Paced: event i is due at t0 + i / rate.
            const auto due = t0 + std::chrono::nanoseconds(static_cast<int64_t>(1e9 * static_cast<double>(i) / rate));
            while (Clock::now() < due) std::this_thread::sleep_for(std::chrono::microseconds(200));
            const int64_t sent = now_ns();
            std::memcpy(value.data(), &sent, sizeof sent);
            const std::string key = std::to_string(i);
            while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(in.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                                     RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 1);
            rd_kafka_poll(producer, 0);
        }
        rd_kafka_flush(producer, 30'000);
        rd_kafka_destroy(producer);
        loaded = true;
    });

    std::vector<double> latencies;
    latencies.reserve(static_cast<size_t>(total));
    long read = 0;
    // Until every output is read, or nothing came for 10 s after the load ended: at high rates the embedded broker
    // may drop outputs the reader had not reached yet (its retention), and the run is then reported incomplete.
    auto last_read = Clock::now();
    while (read < total) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(reader, 100);
        if (!m) {
            if (loaded.load() && Clock::now() - last_read > 10s) break;
            if (host && host->failed()) die("host: " + host->failure());
            continue;
        }
        const int64_t at = now_ns();
        last_read = Clock::now();
        if (!m->err && m->len >= sizeof(int64_t)) {
            int64_t sent;
            std::memcpy(&sent, m->payload, sizeof sent);
            if (sent >= record_from_ns.load(std::memory_order_relaxed)) latencies.push_back((at - sent) / 1e6);
            ++read;
        }
        rd_kafka_message_destroy(m);
    }
    load.join();
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    if (host) {
        host->stop();
        host.reset();
        std::filesystem::remove(yaml);
    } else {
        raw_stop = true;
        raw.join();
    }

    RunResult r;
    r.recorded = static_cast<long>(latencies.size());
    r.lost = total - read;
    r.max = latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
    r.p99 = percentile(latencies, 0.99);
    r.p50 = percentile(latencies, 0.50);
    return r;
}

}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(stderr, "bench_latency: %s\n", what.c_str());
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::warn);
    if (!std::filesystem::exists(std::filesystem::path(o.plugin_dir) / "passthrough.so"))
        die(o.plugin_dir + "/passthrough.so not found (build the `passthrough` target, or pass --plugin-dir)");
    char tmpl[] = "/tmp/mephisto-bench-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    g_temp_dir = tmpl;

    auto broker = mephisto::EmbeddedBroker::start(0, 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();

    long rate = o.rate;
    double capacity = 0;
    if (rate == 0) {
        // The raw loop's capacity over a preloaded topic (median of 3), the load is half of it.
        if (auto st = (*broker)->create_topic("cap-in", o.partitions); !st) die(st.error());
        {
            Acks acks;
            rd_kafka_t* producer = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
            std::string value(static_cast<size_t>(o.value_size), 'v');
            for (long i = 0; i < o.capacity_events; ++i) {
                const std::string key = std::to_string(i);
                while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("cap-in"), RD_KAFKA_V_KEY(key.data(), key.size()),
                                         RD_KAFKA_V_VALUE(value.data(), value.size()),
                                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    rd_kafka_poll(producer, 10);
            }
            rd_kafka_flush(producer, 60'000);
            rd_kafka_destroy(producer);
        }
        std::vector<double> eps;
        for (int i = 0; i < 3; ++i) {
            const std::string out = "cap-out-" + std::to_string(i);
            if (auto st = (*broker)->create_topic(out, o.partitions); !st) die(st.error());
            const RawResult r = run_raw(bootstrap, "cap-in", o.partitions, o.capacity_events, out, i);
            eps.push_back(static_cast<double>(o.capacity_events) / r.seconds);
        }
        capacity = median(eps);
        rate = static_cast<long>(capacity / 2);
        std::fprintf(stderr, "raw loop capacity %.0f events/s (median of 3): the load is %ld events/s\n", capacity, rate);
    }

    std::printf("## bench_latency\n\n%ld events/s for %d s per run (the first second not recorded), %d partitions, "
                "%d B values, %d runs per setting%s\n\n",
                rate, o.seconds, o.partitions, o.value_size, o.runs,
                capacity > 0 ? (", half of the raw loop's " + num("%.0f", capacity) + " events/s").c_str() : "");
    std::printf("| setting | p50 ms (median of runs) | p99 ms (median) | p99 ms per run | max ms (worst run) |\n"
                "|:--|--:|--:|:--|--:|\n");
    for (const Setting& setting : kSettings) {
        std::vector<double> p50, p99;
        double worst = 0;
        std::string per_run;
        for (int i = 0; i < o.runs; ++i) {
            const RunResult r = run(o, **broker, setting, i, rate);
            std::fprintf(stderr, "%s, run %d: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%ld recorded, %ld lost)\n",
                         setting.name, i + 1, r.p50, r.p99, r.max, r.recorded, r.lost);
            if (r.lost > 0) {  // not a figure: what the reader missed would have been the slowest
                per_run += (per_run.empty() ? "" : ", ") + std::string("incomplete (") + std::to_string(r.lost) +
                           " outputs not read)";
                continue;
            }
            p50.push_back(r.p50);
            p99.push_back(r.p99);
            worst = std::max(worst, r.max);
            per_run += (per_run.empty() ? "" : ", ") + num("%.1f", r.p99);
        }
        if (p50.empty())
            std::printf("| %s | — | — | %s | — |\n", setting.name, per_run.c_str());
        else
            std::printf("| %s | %.1f | %.1f | %s | %.1f |\n", setting.name, median(p50), median(p99), per_run.c_str(),
                        worst);
        std::fflush(stdout);
    }
    std::filesystem::remove_all(g_temp_dir);
    return 0;
}
