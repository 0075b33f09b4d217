#include "harness.hpp"

#include "tables/codec.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace mephisto::test {

bool await(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

Broker::Broker(int brokers, const std::string& address) {
    auto b = EmbeddedBroker::start(0, brokers, address);
    if (!b) throw std::runtime_error(b.error());
    broker_ = std::move(*b);
}

void Broker::create_topic(const std::string& name, int partitions) {
    if (auto st = broker_->create_topic(name, partitions); !st) throw std::runtime_error(st.error());
}

void Broker::set_down(int32_t broker_id) {
    if (auto err = rd_kafka_mock_broker_set_down(broker_->cluster(), broker_id))
        throw std::runtime_error("set_down: " + std::string(rd_kafka_err2str(err)));
}

void Broker::set_rtt(int32_t broker_id, std::chrono::milliseconds rtt) {
    if (auto err = rd_kafka_mock_broker_set_rtt(broker_->cluster(), broker_id, static_cast<int>(rtt.count())))
        throw std::runtime_error("set_rtt: " + std::string(rd_kafka_err2str(err)));
}

void Broker::set_up(int32_t broker_id) {
    if (auto err = rd_kafka_mock_broker_set_up(broker_->cluster(), broker_id))
        throw std::runtime_error("set_up: " + std::string(rd_kafka_err2str(err)));
}

void Broker::set_leader(const std::string& topic, int32_t partition, int32_t broker_id) {
    if (auto err = rd_kafka_mock_partition_set_leader(broker_->cluster(), topic.c_str(), partition, broker_id))
        throw std::runtime_error("set_leader: " + std::string(rd_kafka_err2str(err)));
}

void Broker::fail_requests(int32_t broker_id, int16_t api_key, rd_kafka_resp_err_t error, size_t count) {
    for (size_t i = 0; i < count; ++i)
        if (auto err = rd_kafka_mock_broker_push_request_error_rtts(broker_->cluster(), broker_id, api_key, 1, error, 0))
            throw std::runtime_error("fail_requests: " + std::string(rd_kafka_err2str(err)));
}

std::string pipeline_yaml(const std::string& app, const std::string& body) {
    return pipeline_yaml(app, body, test_plugin_dir());
}

std::string pipeline_yaml(const std::string& app, const std::string& body, const std::filesystem::path& plugins) {
    return "app: {id: " + app + "}\nplugins: {dir: " + plugins.string() + "}\n" + kFastGroupYaml + body;
}

namespace {

rd_kafka_t* make(rd_kafka_type_t type, const std::map<std::string, std::string>& props) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    for (const auto& [k, v] : props)
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
            throw std::runtime_error(k + ": " + err);
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
            if (m->err) static_cast<std::atomic<int>*>(m->_private)->fetch_add(1);
        });
    rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) throw std::runtime_error(err);
    return rk;
}

}  // namespace

void produce(const std::string& bootstrap, const std::string& topic, const std::vector<Message>& messages) {
    rd_kafka_t* rk = make(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap},
                                              {"enable.idempotence", "true"},
                                              {"partitioner", "murmur2_random"},
                                              {"linger.ms", "5"},
                                              {"message.max.bytes", "10000000"}});  // tests send oversized ones
    std::atomic<int> failures{0};
    for (const auto& m : messages) {
        rd_kafka_headers_t* h = nullptr;
        if (!m.headers.empty()) {
            h = rd_kafka_headers_new(m.headers.size());
            for (const auto& [n, v] : m.headers) rd_kafka_header_add(h, n.data(), n.size(), v.data(), v.size());
        }
        for (;;) {
            auto err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                RD_KAFKA_V_PARTITION(m.partition < 0 ? RD_KAFKA_PARTITION_UA : m.partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY((m.key ? const_cast<char*>(m.key->data()) : nullptr), (m.key ? m.key->size() : 0)),
                RD_KAFKA_V_VALUE((m.value ? const_cast<char*>(m.value->data()) : nullptr),
                                 (m.value ? m.value->size() : 0)),
                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&failures), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 10);
                continue;
            }
            if (err) throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
            break;
        }
    }
    if (rd_kafka_flush(rk, 30'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_destroy(rk);
        throw std::runtime_error("produce: not all messages acknowledged within 30 s");
    }
    rd_kafka_destroy(rk);
    if (failures) throw std::runtime_error("produce: " + std::to_string(failures.load()) + " message(s) failed");
}

void produce_sequence(const std::string& bootstrap, const std::string& topic, int first, int count, int keys,
                      const std::string& prefix) {
    std::vector<Message> messages;
    messages.reserve(count);
    for (int i = first; i < first + count; ++i)
        messages.push_back(Message{"k" + std::to_string(i % keys), prefix + std::to_string(i), {}, -1});
    produce(bootstrap, topic, messages);
}

SteadyLoad::SteadyLoad(std::string bootstrap, std::string topic, int chunk, int keys) {
    thread_ = std::thread([this, bootstrap = std::move(bootstrap), topic = std::move(topic), chunk, keys] {
        while (!done_) {
            produce_sequence(bootstrap, topic, sent_.load(), chunk, keys);
            sent_ += chunk;
        }
    });
}

int SteadyLoad::stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return sent_.load();
}

TopicReader::TopicReader(const std::string& bootstrap, const std::string& topic, int partitions)
    : bootstrap_(bootstrap), topic_(topic), partitions_(partitions) {
    rk_ = make(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                   {"group.id", "test-reader"},  // required by librdkafka; never joined
                                   {"enable.auto.commit", "false"},
                                   {"enable.partition.eof", "false"}});
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p)
        rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
}

TopicReader::~TopicReader() {
    rd_kafka_assign(rk_, nullptr);
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

bool TopicReader::read_until(const std::function<bool(const std::vector<Record>&)>& condition,
                             std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition(records_)) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50);
        if (!m) continue;
        if (!m->err) {
            Record r;
            r.topic = rd_kafka_topic_name(m->rkt);
            r.partition = m->partition;
            r.offset = m->offset;
            if (m->key) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
            if (m->payload) r.value = std::string(static_cast<const char*>(m->payload), m->len);
            r.timestamp = rd_kafka_message_timestamp(m, nullptr);
            rd_kafka_headers_t* h = nullptr;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) {
                const char* name;
                const void* value;
                size_t size;
                for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
                    r.headers[name] = value ? std::string(static_cast<const char*>(value), size) : "";
            }
            records_.push_back(std::move(r));
        }
        rd_kafka_message_destroy(m);
    }
    return true;
}

bool TopicReader::read_to_end(std::chrono::milliseconds timeout) {
    const auto ends = end_offsets(bootstrap_, topic_, partitions_);
    std::map<int32_t, int64_t> next;
    size_t seen = 0;  // records already counted in `next`: the condition runs after every poll
    return read_until([&](const std::vector<Record>& records) {
        for (; seen < records.size(); ++seen)
            next[records[seen].partition] = std::max(next[records[seen].partition], records[seen].offset + 1);
        for (auto [p, end] : ends)
            if (next[p] < end) return false;
        return true;
    }, timeout);
}

void TopicReader::read_for(std::chrono::milliseconds quiet) {
    (void)read_until([](const std::vector<Record>&) { return false; }, quiet);
}

std::map<std::string, int> TopicReader::value_counts() const {
    std::map<std::string, int> counts;
    for (const auto& r : records_)
        if (r.value) counts[*r.value]++;
    return counts;
}

std::map<std::string, int64_t> int64_table_from_changelog(const std::string& bootstrap, const std::string& topic,
                                                          int partitions) {
    TopicReader changelog(bootstrap, topic, partitions);
    if (!changelog.read_to_end(20s)) throw std::runtime_error("could not read " + topic + " to its end");
    std::vector<const Record*> sorted;
    for (const auto& r : changelog.records()) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(),
              [](auto* a, auto* b) { return std::tie(a->partition, a->offset) < std::tie(b->partition, b->offset); });
    std::map<std::string, int64_t> out;
    for (auto* r : sorted) {
        if (r->value) out[*r->key] = decode_int64(*r->value);
        else out.erase(*r->key);
    }
    return out;
}

std::map<int32_t, int64_t> committed_offsets(const std::string& bootstrap, const std::string& group,
                                             const std::string& topic, int partitions) {
    rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", group}});
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    auto err = rd_kafka_committed(rk, list, 10'000);
    std::map<int32_t, int64_t> out;
    for (int i = 0; !err && i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (err) throw std::runtime_error(std::string("committed: ") + rd_kafka_err2str(err));
    return out;
}

std::map<int32_t, int64_t> end_offsets(const std::string& bootstrap, const std::string& topic, int partitions) {
    rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap}, {"group.id", "test-offsets"}});
    std::map<int32_t, int64_t> out;
    for (int p = 0; p < partitions; ++p) {
        int64_t low = 0, high = 0;
        auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 10'000);
        if (err) {
            rd_kafka_destroy(rk);
            throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
        }
        out[p] = high;
    }
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return out;
}

bool await_caught_up(const std::string& bootstrap, const std::string& group, const std::string& topic, int partitions,
                     std::chrono::milliseconds timeout, std::string* report) {
    const auto ends = end_offsets(bootstrap, topic, partitions);
    std::map<int32_t, int64_t> committed;
    const bool ok = await([&] {
        committed = committed_offsets(bootstrap, group, topic, partitions);
        for (auto [p, end] : ends)
            if (end > 0 && committed[p] != end) return false;
        return true;
    }, timeout);
    if (report) {
        report->clear();
        for (auto [p, end] : ends)
            *report += topic + "[" + std::to_string(p) + "] end " + std::to_string(end) + " committed " +
                       std::to_string(committed[p]) + "\n";
    }
    return ok;
}

HostProcess::HostProcess(std::vector<std::string> args, const std::filesystem::path& log_file) : log_file_(log_file) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
        int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
}

HostProcess::~HostProcess() {
    if (running()) {
        kill(pid_, SIGKILL);
        (void)wait(10s);
    }
}

bool HostProcess::running() {
    if (exit_code_) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
    }
    return true;
}

std::optional<int> HostProcess::wait(std::chrono::milliseconds timeout) {
    if (!await([&] { return !running(); }, timeout)) return std::nullopt;
    return exit_code_;
}

std::optional<int> HostProcess::stop(int sig, std::chrono::milliseconds timeout) {
    if (running()) kill(pid_, sig);
    return wait(timeout);
}

std::string HostProcess::log() const {
    std::ifstream in(log_file_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

bool HostProcess::await_log(const std::string& text, std::chrono::milliseconds timeout) const {
    return await([&] { return log().find(text) != std::string::npos; }, timeout);
}

size_t HostProcess::count_in_log(const std::string& text) const {
    const std::string l = log();
    size_t n = 0;
    for (size_t pos = l.find(text); pos != std::string::npos; pos = l.find(text, pos + text.size())) ++n;
    return n;
}

std::filesystem::path mephisto_binary() { return std::filesystem::path(MEPHISTO_BINARY_DIR) / "runtime" / "mephisto"; }
std::filesystem::path test_plugin_dir() { return std::filesystem::path(MEPHISTO_BINARY_DIR) / "tests" / "plugins"; }
std::filesystem::path example_plugin_dir() { return MEPHISTO_PLUGIN_DIR; }

std::optional<int> run_cli(const std::vector<std::string>& args, const TempDir& dir, std::string& output) {
    std::vector<std::string> argv = {mephisto_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    HostProcess p(argv, dir.path() / "cli.log");
    auto code = p.wait(30s);
    output = p.log();
    return code;
}

std::unique_ptr<HostProcess> start_host(const std::filesystem::path& yaml, const std::string& bootstrap,
                                        const std::filesystem::path& log_file, std::vector<std::string> extra_args,
                                        bool await_assignment) {
    // Tests run hosts side by side: each admin API takes a free loopback port (the log names it).
    std::vector<std::string> args = {mephisto_binary().string(), "run", yaml.string(), "--broker", "kafka://" + bootstrap,
                                     "--admin", "127.0.0.1:0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto host = std::make_unique<HostProcess>(args, log_file);
    if (await_assignment && !host->await_log("assigned ", 30s))
        throw std::runtime_error("host was not assigned partitions within 30 s; its log:\n" + host->log());
    return host;
}

std::string admin_address(const HostProcess& host, std::chrono::milliseconds timeout) {
    const std::string marker = "admin API on http://";
    if (!host.await_log(marker, timeout)) throw std::runtime_error("the host never opened its admin API:\n" + host.log());
    const std::string log = host.log();
    const auto start = log.find(marker) + marker.size();
    return log.substr(start, log.find('/', start) - start);
}

sockaddr_in ipv4_address(const std::string& address) {
    const auto colon = address.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
    return sa;
}

HttpReply http_raw(const std::string& address, const std::string& raw) {
    sockaddr_in sa = ipv4_address(address);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    HttpReply reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return reply;
    }
    for (size_t sent = 0; sent < raw.size();) {
        const ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server may refuse (and close) before reading everything
        sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);  // all of the request is sent: the server sees the end at once
    std::string response;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, static_cast<size_t>(n));
    ::close(fd);
    const auto head_end = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return reply;
    reply.status = std::stoi(response.substr(9, 3));
    std::istringstream head(response.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    while (std::getline(head, line)) {
        const auto c = line.find(':');
        if (c == std::string::npos) continue;
        std::string name = line.substr(0, c);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::string value = line.substr(c + 1);
        while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
        while (!value.empty() && (value.back() == '\r')) value.pop_back();
        reply.headers[name] = value;
    }
    reply.body = response.substr(head_end + 4);
    return reply;
}

int64_t agent_processed(const std::string& address, const std::string& agent) {
    const HttpReply reply = http_get(address, "/agents");
    if (reply.status != 200) return -1;
    int64_t total = 0;
    for (const auto& a : nlohmann::json::parse(reply.body))
        if (a["agent"] == agent) total += a["processed"].get<int64_t>();
    return total;
}

HttpReply http_get(const std::string& address, const std::string& path, const std::string& token) {
    std::string raw = "GET " + path + " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n";
    if (!token.empty()) raw += "Authorization: Bearer " + token + "\r\n";
    return http_raw(address, raw + "\r\n");
}

int shell(const std::string& command, std::string& output) {
    output.clear();
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (!pipe) throw std::runtime_error("popen failed: " + command);
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
    const int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace mephisto::test
