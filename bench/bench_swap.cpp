// bench_swap: how long a hot plugin swap pauses an agent under load (issue 4; target p99 <= 50 ms).
//
// One process: an embedded broker, an in-process mephisto::Host running the pass-through agent (`pass` of
// bench/plugins/passthrough.c) from `in` (4 partitions) to `out`, and a producer keeping a steady load on `in`.
// The plugin file alternates between two builds that differ only in their version string; each swap is asked
// for with Host::reload_plugins (what SIGHUP, POST /reload and the directory watcher call). Figures:
//   pause  - per swap, how long the agent's lanes took no events (stop -> resume, as the host reports it);
//   reload - per swap, the whole reload_plugins call: read and hash the file, load and check it, swap,
//            unload the old image and check it left memory;
// and, at the end, that every event produced reached `out` exactly once (nothing lost or repeated).
//
//   build/bench/bench_swap [--swaps N] [--rate EVENTS_PER_S]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "bench_support.hpp"
#include "common/logging.hpp"
#include "host/host.hpp"
#include "kafka/embedded_broker.hpp"

using namespace mephisto::bench;
using namespace std::chrono_literals;

namespace {

std::filesystem::path g_temp_dir;

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
    return v[i];
}

void install(const std::filesystem::path& source, const std::filesystem::path& dir) {
    std::filesystem::copy_file(source, dir / ".passthrough.so.partial", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(dir / ".passthrough.so.partial", dir / "passthrough.so");
}

}  // namespace

namespace mephisto::bench {
void die(const std::string& what) {
    std::fprintf(stderr, "bench_swap: %s\n", what.c_str());
    std::error_code ec;
    if (!g_temp_dir.empty()) std::filesystem::remove_all(g_temp_dir, ec);
    std::exit(1);
}
}  // namespace mephisto::bench

int main(int argc, char** argv) {
    int swaps = 100;
    long rate = 20'000;  // events/s of steady load
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--swaps" && i + 1 < argc) swaps = std::stoi(argv[++i]);
        else if (a == "--rate" && i + 1 < argc) rate = std::stol(argv[++i]);
        else die("usage: bench_swap [--swaps N] [--rate EVENTS_PER_S]");
    }
    mephisto::setup_logging(mephisto::LogFormat::text, spdlog::level::warn);
    const std::filesystem::path builds = MEPHISTO_SWAP_PLUGIN_DIR;

    char pattern[] = "/tmp/mephisto-bench-swap-XXXXXX";
    if (!mkdtemp(pattern)) die("mkdtemp failed");
    g_temp_dir = pattern;
    const auto plugins = g_temp_dir / "plugins";
    std::filesystem::create_directories(plugins);
    install(builds / "passthrough_a.so", plugins);

    auto broker = mephisto::EmbeddedBroker::start(0, 1);
    if (!broker) die(broker.error());
    const std::string bootstrap = (*broker)->bootstrap();
    for (const char* t : {"in", "out"})
        if (auto st = (*broker)->create_topic(t, 4); !st) die(st.error());
    const auto yaml = g_temp_dir / "swap.yaml";
    std::ofstream(yaml) << "app: {id: swap}\nplugins: {dir: " << plugins.string() << "}\n"
                        << "topics: {in: {partitions: 4}, out: {partitions: 4}}\n"
                        << "agents:\n  pass: {plugin: passthrough, agent: pass, from: in, sinks: [out]}\n";

    mephisto::HostOptions options;
    options.files = {yaml};
    options.broker = "kafka://" + bootstrap;
    options.watch = false;  // each swap is asked for, so each is measured alone
    auto host = mephisto::Host::start(options);
    if (!host) die("host: " + host.error());
    const auto& pipeline = *(*host)->pipelines().front();
    const auto started = Clock::now();
    while (pipeline.assigned_partitions() == 0) {
        if (Clock::now() - started > 60s) die("no partitions assigned within 60 s");
        std::this_thread::sleep_for(5ms);
    }

    // The steady load: `rate` events/s in 10 ms slices, numbered so the output can be checked.
    Acks acks;
    rd_kafka_t* producer = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
    std::atomic<bool> stop{false};
    std::atomic<long> produced{0};
    std::thread load([&] {
        const long per_slice = std::max(1L, rate / 100);
        auto next = Clock::now();
        while (!stop) {
            for (long i = 0; i < per_slice; ++i) {
                const std::string value = std::to_string(produced.load());
                if (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR)
                    produced++;
                rd_kafka_poll(producer, 0);
            }
            next += 10ms;
            std::this_thread::sleep_until(next);  // pacing the load generator, not synchronising
        }
        rd_kafka_flush(producer, 30'000);
    });

    std::vector<double> pauses_ms, reloads_ms;
    std::this_thread::sleep_for(500ms);  // let the load reach its steady state before the first swap
    for (int s = 0; s < swaps; ++s) {
        install(builds / (s % 2 ? "passthrough_a.so" : "passthrough_b.so"), plugins);
        const auto t0 = Clock::now();
        const auto record = (*host)->reload_plugins("bench");
        reloads_ms.push_back(seconds(Clock::now() - t0) * 1000);
        if (record.changes.size() != 1 || record.changes[0].result != "swapped")
            die("swap " + std::to_string(s) + " did not happen: " +
                (record.changes.empty() ? std::string("no change seen") : record.changes[0].reason));
        for (const auto& [agent, pause] : record.changes[0].pauses) pauses_ms.push_back(pause.count() / 1000.0);
        std::this_thread::sleep_for(50ms);  // load flows between swaps
    }
    stop = true;
    load.join();
    const long total = produced.load();

    // Every event reached `out` exactly once.
    const auto deadline = Clock::now() + 120s;
    rd_kafka_t* reader = client(RD_KAFKA_CONSUMER, consumer_props(bootstrap, "bench-swap-reader"));
    while (high_watermarks(reader, "out", 4) < total && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
    const long out = high_watermarks(reader, "out", 4);
    rd_kafka_destroy(reader);
    rd_kafka_destroy(producer);
    (*host)->stop();
    host->reset();
    broker->reset();
    std::error_code ec;
    std::filesystem::remove_all(g_temp_dir, ec);

    std::printf("## bench_swap\n\n");
    std::printf("%d swaps of a pass-through agent on 4 partitions under %ld events/s; %ld events in, %ld out "
                "(%s; tests/reload checks every event by its sequence number)\n\n",
                swaps, rate, total, out, out == total ? "equal counts" : "MISMATCH");
    std::printf("| figure | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n");
    std::printf("| pause (lanes stopped -> resumed) | %.3f | %.3f | %.3f |\n", percentile(pauses_ms, 0.5),
                percentile(pauses_ms, 0.99), percentile(pauses_ms, 1.0));
    std::printf("| whole reload (hash, load, check, swap, unload) | %.3f | %.3f | %.3f |\n\n", percentile(reloads_ms, 0.5),
                percentile(reloads_ms, 0.99), percentile(reloads_ms, 1.0));
    std::printf("target: pause p99 <= 50 ms: %s\n", percentile(pauses_ms, 0.99) <= 50 ? "MET" : "NOT MET");
    return out == total ? 0 : 1;
}
