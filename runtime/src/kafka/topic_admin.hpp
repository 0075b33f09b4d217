#pragma once
// The topics a pipeline needs that the host creates itself (dead letters, changelogs, repartition, reply and
// leader topics; Kafka Streams' InternalTopicManager): through the embedded broker's own API, through the Admin
// API, or, on a broker without one, by auto-creation. Source topics are never created (RELIABILITY 35).
#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "common/result.hpp"
#include "kafka/topic_provisioner.hpp"

namespace mephisto {

class TopicAdmin {
public:
    // `client` asks for metadata and creates topics (the pipeline's producer: it allows auto-creation);
    // `broker`, when set, creates them on the embedded broker instead.
    TopicAdmin(rd_kafka_t* client, TopicProvisioner* broker, std::shared_ptr<spdlog::logger> log)
        : client_(client), broker_(broker), log_(std::move(log)) {}

    // Creates `name` with `partitions` unless it exists; an error when it could not, or exists with fewer.
    Status ensure(const std::string& name, int partitions);
    // The topic's partition count; 0 when it does not exist (or is unknown). Never creates it.
    int partitions_of(const std::string& topic);

private:
    // Has a broker without an Admin API auto-create `topic`; its partition count, 0 when it was not created.
    int auto_create(const std::string& topic);

    rd_kafka_t* client_;
    TopicProvisioner* broker_;
    std::shared_ptr<spdlog::logger> log_;
};

}  // namespace mephisto
