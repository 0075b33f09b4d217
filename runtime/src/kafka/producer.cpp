#include "kafka/producer.hpp"

#include "common/thread_name.hpp"

#include <chrono>

#include "common/logging.hpp"

namespace mephisto {

Result<std::unique_ptr<Producer>> Producer::create(const std::map<std::string, std::string>& properties,
                                                   DeliveryFn on_delivery, ErrorFn on_error) {
    const std::map<std::string, std::string> defaults = {
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
    auto conf = make_conf({&defaults, &properties});
    if (!conf) return make_error(conf.error());
    std::unique_ptr<Producer> p(new Producer());
    p->on_delivery_ = std::move(on_delivery);
    p->on_error_ = std::move(on_error);
    rd_kafka_conf_set_opaque(conf->get(), p.get());
    route_logs(conf->get());
    rd_kafka_conf_set_dr_msg_cb(conf->get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
        auto* self = static_cast<Producer*>(opaque);
        self->on_delivery_(m->_private, m->err, *m);
    });
    rd_kafka_conf_set_error_cb(conf->get(), [](rd_kafka_t* rk, int err, const char* reason, void* opaque) {
        auto* self = static_cast<Producer*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[512];
            rd_kafka_fatal_error(rk, buf, sizeof buf);
            self->on_error_(static_cast<rd_kafka_resp_err_t>(err), true, std::string("producer fatal error: ") + buf);
        } else {
            self->on_error_(static_cast<rd_kafka_resp_err_t>(err), false,
                            std::string("producer: ") + rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)) + ": " +
                                reason);
        }
    });
    auto rk = make_client(RD_KAFKA_PRODUCER, std::move(*conf));
    if (!rk) return make_error(rk.error());
    p->rk_ = std::move(*rk);
    Producer* raw = p.get();
    p->poller_ = std::thread([raw] {
        name_this_thread("deliveries");
        while (raw->running_.load(std::memory_order_relaxed)) rd_kafka_poll(raw->rk_.get(), 50);
    });
    return p;
}

Producer::~Producer() {
    stop();
    for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
    topics_.clear();
}

void Producer::stop() {
    running_ = false;
    if (poller_.joinable()) poller_.join();
}

rd_kafka_topic_t* Producer::topic_handle(const std::string& name) {
    {
        std::shared_lock lock(topics_mutex_);
        if (auto it = topics_.find(name); it != topics_.end()) return it->second;
    }
    std::unique_lock lock(topics_mutex_);
    if (auto it = topics_.find(name); it != topics_.end()) return it->second;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
    if (rkt) topics_.emplace(name, rkt);
    return rkt;
}

mph_status Producer::produce(const std::string& topic, const void* key, size_t key_len, const void* value,
                             size_t value_len, rd_kafka_headers_t* headers, int32_t partition, int64_t timestamp_ms,
                             void* opaque, std::string* why, rd_kafka_resp_err_t* code) {
    rd_kafka_topic_t* rkt = topic_handle(topic);
    if (!rkt) {
        if (headers) rd_kafka_headers_destroy(headers);
        if (why) *why = "cannot use topic '" + topic + "'";
        if (code) *code = rd_kafka_last_error();
        return MPH_ERR_INVALID;
    }
    // Waiting for room is the backpressure a slow broker exerts on workers; the bound keeps a wedged broker
    // from hanging a worker forever (the event then fails and follows the agent's error policy).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(const_cast<void*>(key), key_len),
            RD_KAFKA_V_VALUE(const_cast<void*>(value), value_len), RD_KAFKA_V_TIMESTAMP(timestamp_ms > 0 ? timestamp_ms : 0),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return MPH_OK;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        if (headers) rd_kafka_headers_destroy(headers);
        if (why) *why = std::string("produce to ") + topic + ": " + rd_kafka_err2str(err);
        if (code) *code = err;
        return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? MPH_ERR_FULL : MPH_ERR_INVALID;
    }
}

bool Producer::flush(Millis timeout) {
    return rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void Producer::purge() {
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // Purged messages report through the delivery callback on the next poll.
    rd_kafka_flush(rk_.get(), 1000);
}

}  // namespace mephisto
