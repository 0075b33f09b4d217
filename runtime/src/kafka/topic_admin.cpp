#include <chrono>
#include <thread>

#include "kafka/topic_admin.hpp"

namespace mephisto {

int TopicAdmin::partitions_of(const std::string& topic) {
    // Metadata of all topics: asking for one by name would make a broker with auto-creation create it, with
    // its default partition count (the host never creates source topics, RELIABILITY 35).
    const rd_kafka_metadata_t* md = nullptr;
    int partitions = 0;
    if (rd_kafka_metadata(client_, 1, nullptr, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
        for (int i = 0; i < md->topic_cnt; ++i)
            if (topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                partitions = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    return partitions;
}

int TopicAdmin::auto_create(const std::string& topic) {
    // A metadata request naming the topic, from a client that allows auto-creation (the producer's default).
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(client_, topic.c_str(), nullptr);
    int partitions = 0;
    for (int attempt = 0; attempt < 3 && partitions == 0; ++attempt) {  // ~6 s at most: the broker may be down
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(client_, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                partitions = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (partitions == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));  // leader election
    }
    rd_kafka_topic_destroy(rkt);
    return partitions;
}

Status TopicAdmin::ensure(const std::string& name, int partitions) {
    if (broker_) return broker_->create_topic(name, partitions);
    if (partitions_of(name) > 0) return {};  // exists: no admin call needed
    // A real cluster: CreateTopics through the Admin API. Brokers without it (the 2.0.2 mock has no
    // controller to send it to) would make this wait; the caller then relies on auto-creation.
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(name.c_str(), partitions, -1, nullptr, 0);
    rd_kafka_queue_t* q = rd_kafka_queue_new(client_);
    rd_kafka_CreateTopics(client_, &topic, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 3'000);
    const bool answered = ev != nullptr;
    Status result;
    if (!ev) {
        result = make_error("creating topic " + name + " timed out");
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (rd_kafka_event_error(ev)) result = make_error("creating topic " + name + ": " + rd_kafka_event_error_string(ev));
        else if (n == 1 && rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
                 rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            result = make_error("creating topic " + name + ": " + rd_kafka_topic_result_error_string(res[0]));
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(topic);
    if (result || answered) return result;  // created, or refused by a broker that answered: no guessing
    // No answer: a broker without an Admin API controller (the 2.0.2 mock). Unless the topic appeared
    // meanwhile, let the broker auto-create it now, rather than on first use, so its partition count can be
    // checked before anything relies on it.
    if (int existing = partitions_of(name); existing > 0) {
        if (existing >= partitions) return {};
        return make_error("topic " + name + " has " + std::to_string(existing) + " partition(s), fewer than the " +
                          std::to_string(partitions) + " needed");
    }
    const int created = auto_create(name);
    if (created == 0) return make_error(result.error() + "; the broker did not auto-create it either");
    if (created < partitions)
        return make_error(result.error() + "; the broker auto-created it with " + std::to_string(created) +
                          " partition(s), fewer than the " + std::to_string(partitions) +
                          " needed: create it with that many");
    log_->info("{}; the broker auto-created {} with {} partition(s)", result.error(), name, created);
    return {};
}

}  // namespace mephisto
