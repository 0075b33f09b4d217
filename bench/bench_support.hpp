#pragma once
// What the benchmarks share: the librdkafka clients set up as the host sets up its own, the raw
// consume -> produce loop every figure is measured against, and small measuring helpers.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <librdkafka/rdkafka.h>

namespace mephisto::bench {

using Clock = std::chrono::steady_clock;

// Each benchmark program defines it: print, clean up its temporary files, exit 1.
[[noreturn]] void die(const std::string& what);

// The command line of a benchmark, flag by flag: `for (ArgReader args(argc, argv); args.next();)`. A missing
// or malformed value dies naming the flag.
class ArgReader {
public:
    ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}
    bool next();                          // to the next flag; false after the last
    const std::string& flag() const { return flag_; }
    std::string value();                  // the flag's value (the next argument)
    long number(long lo, long hi);        // the flag's value, a whole number in [lo, hi]

private:
    int argc_;
    char** argv_;
    int at_ = 0;
    std::string flag_;
};

double cpu_seconds();  // process CPU time, all threads
double seconds(Clock::duration d);
double median(std::vector<double> v);
std::string num(const char* format, double v);
std::string run_name(int run);  // "warmup" for run < 0

rd_kafka_t* client(rd_kafka_type_t type, const std::map<std::string, std::string>& props,
                   void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr, void* opaque = nullptr);

// Delivery reports counted by count_delivery (the producer's opaque).
struct Acks {
    std::atomic<long> ok{0};
    std::atomic<long> failed{0};
};
void count_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

// The host's producer settings (runtime/src/kafka/producer.cpp), so the raw loop is not handicapped.
std::map<std::string, std::string> producer_props(const std::string& bootstrap);
// The host's consumer prefetch settings (Pipeline::start, runtime/src/engine/pipeline.cpp).
std::map<std::string, std::string> consumer_props(const std::string& bootstrap, const std::string& group);

// Sum of the end offsets of `topic`, partitions 0..n-1; -1 when the query failed.
long high_watermarks(rd_kafka_t* rk, const std::string& topic, int partitions);
// The low watermarks of `topic`: all 0 when the broker kept every message.
bool nothing_trimmed(rd_kafka_t* rk, const std::string& topic, int partitions);

struct RawResult {
    double seconds = 0;  // first event consumed -> every output acknowledged (the figure)
    double startup = 0;  // assign -> first event consumed
    double cpu = 0;      // process CPU, assign -> every output acknowledged
};

// The baseline: the simplest correct consume -> produce loop a librdkafka user would write, on one thread,
// from offset 0 of every partition of `in` to `out`, until `events` were consumed and acknowledged.
RawResult run_raw(const std::string& bootstrap, const std::string& in, int partitions, long events, const std::string& out,
                  int run);


// A `mephisto` child process (binary and arguments), its output read line by line and each line stamped on
// arrival. It dies with the benchmark (PR_SET_PDEATHSIG), and kill_child_process() kills it from die().
class MephistoProcess {
public:
    MephistoProcess(const std::string& binary, const std::vector<std::string>& args);
    ~MephistoProcess() { stop(); }
    MephistoProcess(const MephistoProcess&) = delete;
    MephistoProcess& operator=(const MephistoProcess&) = delete;

    pid_t pid() const { return pid_; }
    bool alive();
    // The first line from `from` on containing `text`: its time and index.
    std::optional<std::pair<Clock::time_point, size_t>> find(const std::string& text, size_t from = 0);
    // find(), awaited; dies with the last lines after `timeout`.
    std::pair<Clock::time_point, size_t> await(const std::string& text, size_t from, std::chrono::seconds timeout);
    std::string last_line_with(const std::string& text);
    size_t line_count();
    std::string tail();  // the last 20 lines
    void stop();         // SIGTERM, then SIGKILL after 60 s

private:
    pid_t pid_ = -1;
    std::thread reader_;
    std::mutex mu_;
    std::vector<std::pair<Clock::time_point, std::string>> lines_;
};
// For die(): kills the MephistoProcess alive, if any.
void kill_child_process();

}  // namespace mephisto::bench
