// bench_topic_creation: how long the embedded broker takes to create the topics a pipeline declares, one by
// one (how the host did it before issue 11: librdkafka 2.0.2's mock loses the wake-up of an operation queued
// while it drains its wake-up pipe, so each creation could wait for its poll) against EmbeddedBroker::
// create_topics (a waker connects to the mock every millisecond while a batch is created). Each run uses a
// fresh broker for each way. Usage: bench_topic_creation [--topics N] [--runs R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kafka/embedded_broker.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    int topics = 200, runs = 3;  // the baseline takes 70-225 ms a topic
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--topics")) topics = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    }
    std::vector<std::pair<std::string, int>> names;
    for (int i = 0; i < topics; ++i) names.emplace_back("t" + std::to_string(i), 1);
    std::printf("## bench_topic_creation: %d topics of one partition on the embedded broker, %d run(s)\n\n", topics, runs);
    std::printf("| run | one by one s | batch (create_topics) s | speed-up |\n|----:|-------------:|------------------------:|---------:|\n");
    std::vector<double> single, batch, ratio;
    for (int run = 1; run <= runs; ++run) {
        auto a = mephisto::EmbeddedBroker::start(0, 1);
        if (!a) return std::fprintf(stderr, "%s\n", a.error().c_str()), 1;
        auto t = Clock::now();
        for (const auto& [name, partitions] : names) (void)(*a)->create_topic(name, partitions);
        single.push_back(seconds_since(t));
        a->reset();
        auto b = mephisto::EmbeddedBroker::start(0, 1);
        if (!b) return std::fprintf(stderr, "%s\n", b.error().c_str()), 1;
        t = Clock::now();
        if (auto st = (*b)->create_topics(names); !st) return std::fprintf(stderr, "%s\n", st.error().c_str()), 1;
        batch.push_back(seconds_since(t));
        ratio.push_back(single.back() / batch.back());
        std::printf("| %d | %.2f | %.2f | %.1fx |\n", run, single.back(), batch.back(), ratio.back());
        std::fflush(stdout);
    }
    std::printf("| **median** | **%.2f** | **%.2f** | **%.1fx** |\n", median(single), median(batch), median(ratio));
}
