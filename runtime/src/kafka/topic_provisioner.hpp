#pragma once
// Who creates the topics of a pipeline on the embedded broker. The librdkafka 2.0.2 mock has no Admin API, so
// topics are created through the mock's own API, which only the process that runs the mock can call: the host
// itself (EmbeddedBroker), or, for a worker process, its supervisor (supervisor/worker_channel.hpp).
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace mephisto {

class TopicProvisioner {
public:
    virtual ~TopicProvisioner() = default;
    // "127.0.0.1:port[,127.0.0.1:port...]" of the broker the topics are created on.
    virtual const std::string& bootstrap() const = 0;
    // Creates a topic (an existing topic is left as it is). THREAD: any.
    virtual Status create_topic(const std::string& name, int partitions) = 0;
    // Creates many topics, (name, partitions) each; stops early, with an error, once `cancel` is set. THREAD: any.
    virtual Status create_topics(const std::vector<std::pair<std::string, int>>& topics,
                                 const std::atomic<bool>* cancel = nullptr) = 0;
};

}  // namespace mephisto
