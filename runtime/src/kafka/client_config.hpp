#pragma once
// Building librdkafka configurations from property maps, with errors as Results.
#include <map>
#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>

#include "common/result.hpp"

namespace mephisto {

struct ConfDeleter {
    void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct KafkaDeleter {
    void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

// Applies `layers` in order (later layers override earlier ones) onto a new configuration. The error names
// the property and librdkafka's reason.
Result<ConfPtr> make_conf(std::initializer_list<const std::map<std::string, std::string>*> layers);

// Routes librdkafka's own log lines into the "kafka" logger.
void route_logs(rd_kafka_conf_t* conf);

// Creates a client; on failure the error carries librdkafka's message.
Result<KafkaPtr> make_client(rd_kafka_type_t type, ConfPtr conf);

}  // namespace mephisto
