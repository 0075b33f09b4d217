// `mephisto ask TOPIC VALUE`: Faust's agent.ask from a shell. Sends VALUE to the topic an agent reads, with
// reply-to and correlation-id headers naming a fresh reply topic, waits for the agent's answer (host function
// `reply`) and prints it. Exit 0 with the answer on stdout, 3 when none came within --timeout, 1 on errors.
#include <condition_variable>
#include <iostream>
#include <random>

#include "cli/commands.hpp"
#include "common/logging.hpp"
#include "engine/reply_router.hpp"
#include "kafka/producer.hpp"

namespace mephisto::cli {
namespace {

struct Waiter : ReplyWaiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Answer> answer;
};

// The reply topic, created the way a client without admin rights can: a metadata request for it, which a
// broker with auto.create.topics.enable (Kafka's default, and the embedded broker) answers by creating it.
bool create_by_metadata(rd_kafka_t* rk, const std::string& topic) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    bool created = false;
    for (int attempt = 0; attempt < 10 && !created; ++attempt) {
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
            created = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                      md->topics[0].partition_cnt > 0;
            rd_kafka_metadata_destroy(md);
        }
        if (!created) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    rd_kafka_topic_destroy(rkt);
    return created;
}

}  // namespace

int ask(const AskOptions& o) {
    std::map<std::string, std::string> props = {{"bootstrap.servers", o.broker}, {"client.id", "mephisto-ask"},
                                                {"message.timeout.ms", "10000"}};
    std::atomic<bool> delivery_failed{false};
    auto producer = Producer::create(
        props,
        [&](void*, rd_kafka_resp_err_t err, const rd_kafka_message_t&) {
            if (err) {
                delivery_failed = true;
                std::cerr << "ask: " << rd_kafka_err2str(err) << "\n";
            }
        },
        [&](rd_kafka_resp_err_t, bool fatal, const std::string& reason) {
            if (fatal) std::cerr << "ask: " << reason << "\n";
        });
    if (!producer) {
        std::cerr << "ask: " << producer.error() << "\n";
        return 1;
    }
    std::random_device random;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>((static_cast<uint64_t>(random()) << 32) ^ random()));
    const std::string reply_topic = std::string("mephisto-ask-") + hex;
    if (!create_by_metadata((*producer)->handle(), reply_topic)) {
        std::cerr << "ask: cannot create the reply topic " << reply_topic << " on " << o.broker
                  << " (is a broker running there, and does it auto-create topics?)\n";
        return 1;
    }
    auto waiter = std::make_shared<Waiter>();
    ReplyRouter router(
        reply_topic, {{"bootstrap.servers", o.broker}, {"client.id", "mephisto-ask"}},
        [](Answer&& a) {
            auto w = std::static_pointer_cast<Waiter>(a.waiter);
            if (!w) {
                if (a.message) rd_kafka_message_destroy(a.message);
                return;
            }
            std::lock_guard lock(w->mu);
            w->answer = std::move(a);
            w->cv.notify_all();
        },
        logger("ask"));
    if (auto st = router.start(); !st) {
        std::cerr << "ask: " << st.error() << "\n";
        return 1;
    }
    const auto deadline = std::chrono::steady_clock::now() + o.timeout;
    const uint64_t id = router.expect(waiter, nullptr, deadline);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(2);
    const std::string correlation = std::to_string(id);
    rd_kafka_header_add(headers, kReplyToHeader, -1, reply_topic.data(), static_cast<ssize_t>(reply_topic.size()));
    rd_kafka_header_add(headers, kCorrelationHeader, -1, correlation.data(), static_cast<ssize_t>(correlation.size()));
    std::string why;
    if ((*producer)->produce(o.topic, o.key ? o.key->data() : nullptr, o.key ? o.key->size() : 0, o.value.data(),
                             o.value.size(), headers, MPH_PARTITION_ANY, 0, nullptr, &why) != MPH_OK) {
        std::cerr << "ask: " << why << "\n";
        return 1;
    }
    if (!(*producer)->flush(std::chrono::seconds(15)) || delivery_failed) {
        std::cerr << "ask: the request was not acknowledged by " << o.broker << "\n";
        return 1;
    }
    std::optional<Answer> answer;
    {
        std::unique_lock lock(waiter->mu);
        waiter->cv.wait(lock, [&] { return waiter->answer.has_value(); });  // the router times it out
        answer = std::move(waiter->answer);
    }
    std::optional<std::string> reply;
    if (answer->status == MPH_OK && answer->message) {
        const rd_kafka_message_t* m = answer->message;
        reply.emplace(static_cast<const char*>(m->payload ? m->payload : ""), m->payload ? m->len : 0);
    }
    if (answer->message) rd_kafka_message_destroy(answer->message);  // before the consumer closes: it waits for it
    (*producer)->stop();
    router.stop();
    if (!reply) {
        std::cerr << "ask: no reply within " << o.timeout.count() << " ms from the agent reading " << o.topic << "\n";
        return 3;
    }
    std::cout << *reply << "\n";
    return 0;
}

}  // namespace mephisto::cli
