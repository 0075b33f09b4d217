#pragma once
// The embedded broker: librdkafka's in-process mock cluster, a real Kafka-protocol server on loopback, so a
// pipeline runs with nothing installed and kcat or any Kafka client can connect to it.
//
// Facts of the librdkafka 2.0.2 mock that shape this class: it has no Admin API (topics are created here,
// through the mock API, or auto-created with 4 partitions when a producer asks), no compaction, and no
// setting for its listen port (see `port` below).
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/result.hpp"
#include "kafka/client_config.hpp"
#include "kafka/topic_provisioner.hpp"

namespace mephisto {

class EmbeddedBroker final : public TopicProvisioner {
public:
    ~EmbeddedBroker() override;

    // Starts `brokers` mock brokers. With port 0 they listen on free ports; otherwise broker i listens on
    // port + i, and a port already in use is a clear error. `address`: the IPv4 address they listen on and
    // advertise (127.0.0.1 by default; another of this machine's, for hosts in other network namespaces).
    static Result<std::unique_ptr<EmbeddedBroker>> start(int port, int brokers = 1,
                                                         const std::string& address = "127.0.0.1");

    // "address:port[,address:port...]"
    const std::string& bootstrap() const override { return bootstrap_; }

    // Creates a topic (an existing topic is left as it is). THREAD: any.
    Status create_topic(const std::string& name, int partitions) override;
    // Creates many topics at once, (name, partitions) each, fast: 8,000 take seconds, not minutes (see the .cpp).
    // Stops early, with an error, once `cancel` is set. THREAD: any.
    Status create_topics(const std::vector<std::pair<std::string, int>>& topics,
                         const std::atomic<bool>* cancel = nullptr) override;

    // The mock cluster, for fault injection (rd_kafka_mock_push_request_errors, broker_set_down...) in tests.
    rd_kafka_mock_cluster_t* cluster() const { return cluster_; }

private:
    EmbeddedBroker() = default;
    KafkaPtr owner_;  // the client handle the mock cluster lives on
    rd_kafka_mock_cluster_t* cluster_ = nullptr;
    std::string bootstrap_;
    uint32_t address_ = 0;  // what the brokers listen on, network order
};

}  // namespace mephisto
