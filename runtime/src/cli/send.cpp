// `mephisto send TOPIC [VALUE]`: Faust's `send` command. Produces one value, or one per line of stdin, and
// waits for every acknowledgement; exits non-zero when any message was not delivered.
#include <atomic>
#include <iostream>

#include "cli/commands.hpp"
#include "common/logging.hpp"
#include "kafka/producer.hpp"

namespace mephisto::cli {

int send(const SendOptions& o) {
    std::atomic<int64_t> failed{0};
    std::atomic<int64_t> delivered{0};
    std::map<std::string, std::string> props = {{"bootstrap.servers", o.broker}, {"client.id", "mephisto-send"},
                                                {"message.timeout.ms", "10000"}};
    auto producer = Producer::create(
        props,
        [&](void*, rd_kafka_resp_err_t err, const rd_kafka_message_t&) {
            if (err) {
                if (failed++ == 0) std::cerr << "send: " << rd_kafka_err2str(err) << "\n";
            } else {
                delivered++;
            }
        },
        [&](rd_kafka_resp_err_t, bool fatal, const std::string& reason) {
            if (fatal) std::cerr << "send: " << reason << "\n";
        });
    if (!producer) {
        std::cerr << "send: " << producer.error() << "\n";
        return 1;
    }
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : o.headers) {
        auto eq = h.find('=');
        if (eq == std::string::npos) {
            std::cerr << "send: header '" << h << "' must be name=value\n";
            return 2;
        }
        headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
    }
    int64_t sent = 0;
    auto send_one = [&](const std::string& value) {
        rd_kafka_headers_t* hdrs = nullptr;
        if (!headers.empty()) {
            hdrs = rd_kafka_headers_new(headers.size());
            for (const auto& [n, v] : headers) rd_kafka_header_add(hdrs, n.data(), n.size(), v.data(), v.size());
        }
        std::string why;
        mph_status st = (*producer)->produce(o.topic, o.key ? o.key->data() : nullptr, o.key ? o.key->size() : 0,
                                             value.data(), value.size(), hdrs, o.partition, 0, nullptr, &why);
        if (st != MPH_OK) {
            std::cerr << "send: " << why << "\n";
            return false;
        }
        ++sent;
        return true;
    };
    bool ok = true;
    if (o.value) {
        ok = send_one(*o.value);
    } else {
        std::string line;
        while (ok && std::getline(std::cin, line)) ok = send_one(line);
    }
    if (!(*producer)->flush(std::chrono::seconds(15))) {
        std::cerr << "send: " << (*producer)->outstanding() << " message(s) not acknowledged by " << o.broker
                  << " within 15 s (is a broker running there? `mephisto run` starts one on 127.0.0.1:9092)\n";
        return 1;
    }
    (*producer)->stop();
    if (!ok || failed > 0) return 1;
    std::cerr << "sent " << delivered.load() << " message(s) to " << o.topic << "\n";
    return 0;
}

}  // namespace mephisto::cli
