#include "kafka/client_config.hpp"

#include "common/logging.hpp"

namespace mephisto {

Result<ConfPtr> make_conf(std::initializer_list<const std::map<std::string, std::string>*> layers) {
    ConfPtr conf(rd_kafka_conf_new());
    char err[512];
    for (const auto* layer : layers) {
        if (!layer) continue;
        for (const auto& [key, value] : *layer) {
            if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
                return make_error("librdkafka property " + key + "=" + value + ": " + err);
        }
    }
    return conf;
}

void route_logs(rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
        static auto log = logger("kafka");
        // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug
        auto lvl = level <= 3 ? spdlog::level::err
                 : level == 4 ? spdlog::level::warn
                 : level <= 6 ? spdlog::level::info
                              : spdlog::level::debug;
        log->log(lvl, "{} {}: {}", rd_kafka_name(rk), fac, buf);
    });
}

Result<KafkaPtr> make_client(rd_kafka_type_t type, ConfPtr conf) {
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
    if (!rk) return make_error(std::string("cannot create Kafka client: ") + err);
    conf.release();  // owned by rk now
    return KafkaPtr(rk);
}

}  // namespace mephisto
