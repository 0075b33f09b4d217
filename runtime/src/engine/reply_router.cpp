#include "engine/reply_router.hpp"

#include <charconv>

namespace mephisto {

std::string header_value(const rd_kafka_message_t* message, const char* name) {
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR || !headers) return {};
    const void* value = nullptr;
    size_t size = 0;
    if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR || !value) return {};
    return std::string(static_cast<const char*>(value), size);
}

uint64_t correlation_id(const rd_kafka_message_t* message) {
    const std::string text = header_value(message, kCorrelationHeader);
    uint64_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    return ec == std::errc() && end == text.data() + text.size() ? id : 0;
}

ReplyRouter::ReplyRouter(std::string topic, std::map<std::string, std::string> client_properties, Deliver deliver,
                         std::shared_ptr<spdlog::logger> log)
    : topic_(std::move(topic)),
      properties_(std::move(client_properties)),
      deliver_(std::move(deliver)),
      log_(std::move(log)) {}

ReplyRouter::~ReplyRouter() { stop(); }

Status ReplyRouter::start() {
    // Not a group member: the topic is this host's alone, and its offsets never need committing (a restarted
    // host has a new topic; the requests of the old one died with it).
    const std::map<std::string, std::string> defaults = {{"group.id", topic_},
                                                         {"enable.auto.commit", "false"},
                                                         {"enable.partition.eof", "false"},
                                                         {"fetch.wait.max.ms", "20"},
                                                         {"fetch.error.backoff.ms", "50"}};
    auto conf = make_conf({&properties_, &defaults});
    if (!conf) return make_error("reply topic " + topic_ + ": " + conf.error());
    route_logs(conf->get());
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!consumer) return make_error("reply topic " + topic_ + ": " + consumer.error());
    consumer_ = std::move(*consumer);
    rd_kafka_poll_set_consumer(consumer_.get());
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic_.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    const rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) return make_error("reply topic " + topic_ + ": assign: " + rd_kafka_err2str(err));
    thread_ = std::thread([this] { run(); });
    log_->info("replies to asks arrive on {}", topic_);
    return {};
}

void ReplyRouter::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (consumer_) {
        rd_kafka_assign(consumer_.get(), nullptr);
        rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    std::vector<uint64_t> ids;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, w] : waiting_) ids.push_back(id);
    }
    for (uint64_t id : ids) answer(id, MPH_ERR_STATE, nullptr);
}

uint64_t ReplyRouter::expect(std::weak_ptr<ReplyWaiter> waiter, void* token, Clock::time_point deadline) {
    std::lock_guard lock(mu_);
    const uint64_t id = next_id_++;
    waiting_.emplace(id, Waiting{std::move(waiter), token, deadline});
    deadlines_.emplace(deadline, id);
    return id;
}

void ReplyRouter::forget(std::map<uint64_t, Waiting>::iterator it) {
    auto [lo, hi] = deadlines_.equal_range(it->second.deadline);
    for (auto d = lo; d != hi; ++d)
        if (d->second == it->first) {
            deadlines_.erase(d);
            break;
        }
    waiting_.erase(it);
}

void* ReplyRouter::withdraw(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return nullptr;
    void* token = it->second.token;
    forget(it);
    return token;
}

size_t ReplyRouter::waiting() const {
    std::lock_guard lock(mu_);
    return waiting_.size();
}

void ReplyRouter::answer(uint64_t id, mph_status status, rd_kafka_message_t* message) {
    Answer a;
    {
        std::lock_guard lock(mu_);
        auto it = waiting_.find(id);
        if (it == waiting_.end()) {  // answered already (a timeout, or a reply sent twice by an at-least-once retry)
            if (message) rd_kafka_message_destroy(message);
            return;
        }
        a.waiter = it->second.waiter.lock();
        a.token = it->second.token;
        forget(it);
    }
    a.id = id;
    a.status = status;
    a.message = message;
    deliver_(std::move(a));
}

void ReplyRouter::run() {
    while (!stop_) {
        for (rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer_.get(), 50); msg;
             msg = rd_kafka_consumer_poll(consumer_.get(), 0)) {
            if (msg->err) {
                if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    log_->warn("reply topic {}: {}", topic_, rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
                continue;
            }
            const uint64_t id = correlation_id(msg);
            if (id == 0) {
                log_->warn("reply topic {}: a message at offset {} without a valid {} header is ignored", topic_,
                           msg->offset, kCorrelationHeader);
                rd_kafka_message_destroy(msg);
                continue;
            }
            answer(id, MPH_OK, msg);
        }
        std::vector<uint64_t> expired;
        {
            std::lock_guard lock(mu_);
            const auto now = Clock::now();
            for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now; ++it)
                expired.push_back(it->second);
        }
        for (uint64_t id : expired) answer(id, MPH_ERR_TIMEOUT, nullptr);
    }
}

}  // namespace mephisto
