#include "bench_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace mephisto::bench {

using namespace std::chrono_literals;

bool ArgReader::next() {
    if (++at_ >= argc_) return false;
    flag_ = argv_[at_];
    return true;
}

std::string ArgReader::value() {
    if (at_ + 1 >= argc_) die(flag_ + " needs a value");
    return argv_[++at_];
}

long ArgReader::number(long lo, long hi) {
    const std::string v = value();
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (!end || *end || v.empty() || n < lo || n > hi)
        die(flag_ + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found '" + v + "'");
    return n;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

rd_kafka_t* client(rd_kafka_type_t type, const std::map<std::string, std::string>& props,
                   void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*), void* opaque) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    if (const char* debug = std::getenv("BENCH_RDKAFKA_DEBUG")) rd_kafka_conf_set(conf, "debug", debug, err, sizeof err);
    for (const auto& [k, v] : props)
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
            die(k + ": " + err);
    if (dr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
    if (opaque) rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) die(err);
    return rk;
}


void count_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* acks = static_cast<Acks*>(opaque);
    if (m->err) acks->failed.fetch_add(1, std::memory_order_relaxed);
    else acks->ok.fetch_add(1, std::memory_order_relaxed);
}

// The host's producer settings (runtime/src/kafka/producer.cpp), so the raw loop is not handicapped.
std::map<std::string, std::string> producer_props(const std::string& bootstrap) {
    return {{"bootstrap.servers", bootstrap},        {"enable.idempotence", "true"},
            {"partitioner", "murmur2_random"},        {"linger.ms", "5"},
            {"queue.buffering.max.messages", "1000000"}, {"queue.buffering.max.kbytes", "1048576"}};
}

// The host's consumer prefetch settings (Pipeline::start, runtime/src/engine/pipeline.cpp).
std::map<std::string, std::string> consumer_props(const std::string& bootstrap, const std::string& group) {
    return {{"bootstrap.servers", bootstrap},   {"group.id", group},
            {"enable.auto.commit", "false"},    {"enable.auto.offset.store", "false"},
            {"auto.offset.reset", "earliest"},  {"enable.partition.eof", "false"},
            {"queued.min.messages", "500000"},  {"queued.max.messages.kbytes", "262144"},
            {"fetch.wait.max.ms", "100"}};
}

// Sum of the end offsets (high watermarks) of `topic`, partitions 0..n-1, in one ListOffsets request per
// broker; -1 when the query failed.
long high_watermarks(rd_kafka_t* rk, const std::string& topic, int partitions) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p)
        rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_END;
    long sum = 0;
    if (rd_kafka_offsets_for_times(rk, list, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) sum = -1;
    for (int i = 0; sum >= 0 && i < list->cnt; ++i) {
        if (list->elems[i].err || list->elems[i].offset < 0) sum = -1;
        else sum += list->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return sum;
}

// The low watermarks of `topic`: all 0 when the broker kept every message.
bool nothing_trimmed(rd_kafka_t* rk, const std::string& topic, int partitions) {
    for (int p = 0; p < partitions; ++p) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            lo != 0)
            return false;
    }
    return true;
}

std::string run_name(int run) { return run < 0 ? "warmup" : std::to_string(run); }


// The baseline: the simplest correct consume -> produce loop a librdkafka user would write, on one thread.
RawResult run_raw(const std::string& bootstrap, const std::string& in, int partitions, long events, const std::string& out,
                  int run) {
    Acks acks;
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, producer_props(bootstrap), count_delivery, &acks);
    rd_kafka_t* c = client(RD_KAFKA_CONSUMER, consumer_props(bootstrap, "bench-raw-" + std::to_string(getpid()) + "-" +
                                                                             run_name(run)));
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(p, out.c_str(), nullptr);
    // Connections up before the clock starts (the host's clients are connected by the time it is assigned).
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(p, 0, rkt, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw: producer metadata");
    rd_kafka_metadata_destroy(md);
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(c, in.c_str(), 0, &lo, &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("raw: consumer cannot reach the broker");

    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; ++i)
        rd_kafka_topic_partition_list_add(parts, in.c_str(), i)->offset = 0;  // the caller checked nothing was trimmed

    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    if (rd_kafka_assign(c, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw: assign");
    long consumed = 0;
    Clock::time_point first_at;
    auto last_message = Clock::now();
    while (consumed < events) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
        if (!m) {
            if (Clock::now() - last_message > 30s)
                die("raw: no message for 30 s after " + std::to_string(consumed) + " of " + std::to_string(events));
            continue;
        }
        last_message = Clock::now();
        if (consumed == 0) first_at = last_message;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                std::fprintf(stderr, "raw: consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        rd_kafka_timestamp_type_t type;
        const int64_t ts = rd_kafka_message_timestamp(m, &type);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                p, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, m->key_len),
                RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("raw: produce: ") + rd_kafka_err2str(err));
            rd_kafka_poll(p, 1);
        }
        rd_kafka_message_destroy(m);
        if (++consumed % 1024 == 0) rd_kafka_poll(p, 0);  // serve delivery reports
    }
    if (rd_kafka_flush(p, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw: flush timed out");
    const auto t1 = Clock::now();
    const double cpu1 = cpu_seconds();
    if (acks.failed || acks.ok != events)
        die("raw: " + std::to_string(acks.ok.load()) + " acknowledged, " + std::to_string(acks.failed.load()) + " failed");

    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    return {seconds(t1 - first_at), seconds(first_at - t0), cpu1 - cpu0};
}

std::string num(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// ------------------------------------------------------------------------------------------ MephistoProcess

namespace {
std::atomic<pid_t> g_child{-1};
}  // namespace

void kill_child_process() {
    if (const pid_t child = g_child.load(); child > 0) ::kill(child, SIGKILL);
}

MephistoProcess::MephistoProcess(const std::string& binary, const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) die("pipe failed");
    std::vector<std::string> all{binary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // nothing outlives the benchmark
        if (::getppid() != parent) _exit(127);
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        ::execv(argv[0], argv.data());
        _exit(127);
    }
    g_child = pid_;
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
        std::string pending;
        char buffer[4096];
        for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) {
            pending.append(buffer, static_cast<size_t>(n));
            for (size_t eol; (eol = pending.find('\n')) != std::string::npos; pending.erase(0, eol + 1)) {
                std::lock_guard lock(mu_);
                lines_.push_back({Clock::now(), pending.substr(0, eol)});
            }
        }
        ::close(fd);
    });
}

bool MephistoProcess::alive() { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

std::optional<std::pair<Clock::time_point, size_t>> MephistoProcess::find(const std::string& text, size_t from) {
    std::lock_guard lock(mu_);
    for (size_t i = from; i < lines_.size(); ++i)
        if (lines_[i].second.find(text) != std::string::npos) return std::pair{lines_[i].first, i};
    return std::nullopt;
}

std::pair<Clock::time_point, size_t> MephistoProcess::await(const std::string& text, size_t from, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (auto found = find(text, from)) return *found;
        if (Clock::now() > deadline)
            die("no line with '" + text + "' within " + std::to_string(timeout.count()) + " s:\n" + tail());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

std::string MephistoProcess::last_line_with(const std::string& text) {
    std::lock_guard lock(mu_);
    for (size_t i = lines_.size(); i-- > 0;)
        if (lines_[i].second.find(text) != std::string::npos) return lines_[i].second;
    return {};
}

size_t MephistoProcess::line_count() {
    std::lock_guard lock(mu_);
    return lines_.size();
}

std::string MephistoProcess::tail() {
    std::lock_guard lock(mu_);
    std::string out;
    for (size_t i = lines_.size() > 20 ? lines_.size() - 20 : 0; i < lines_.size(); ++i) out += lines_[i].second + "\n";
    return out;
}

void MephistoProcess::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    g_child = -1;
    if (reader_.joinable()) reader_.join();
}

}  // namespace mephisto::bench
