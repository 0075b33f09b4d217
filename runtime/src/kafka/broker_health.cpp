#include "kafka/broker_health.hpp"

#include <fmt/format.h>

#include "common/duration.hpp"

namespace mephisto {
namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string seconds_since(int64_t since_ns) {
    return fmt::format("{:.0f} s", static_cast<double>(now_ns() - since_ns) / 1e9);
}

}  // namespace

void BrokerHealth::on_client_error(rd_kafka_resp_err_t err, const std::string& reason) {
    switch (err) {
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: {
            int64_t expected = 0;
            if (down_since_ns_.compare_exchange_strong(expected, now_ns())) {
                std::string why;
                {
                    std::lock_guard lock(mu_);
                    why = reason_.empty() ? reason : reason_;
                }
                log_->error("no broker of {} is reachable: {}; the pipeline waits for one (/ready says so{})",
                            bootstrap_, why,
                            timeout_.count() > 0 ? ", and it fails after " + format_duration(timeout_) : "");
            }
            return;
        }
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__RESOLVE:
        case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        case RD_KAFKA_RESP_ERR__SSL: {
            std::lock_guard lock(mu_);
            reason_ = reason;
            break;
        }
        default: break;
    }
    log_->warn("{}", reason);
}

std::optional<std::string> BrokerHealth::problem() const {
    const int64_t since = down_since_ns_.load();
    if (since == 0) return std::nullopt;
    std::lock_guard lock(mu_);
    return "no broker of " + bootstrap_ + " reachable for " + seconds_since(since) +
           (reason_.empty() ? "" : ": " + reason_);
}

std::optional<std::string> BrokerHealth::probe(rd_kafka_t* client) {
    const int64_t since = down_since_ns_.load();
    if (since == 0 || !client) return std::nullopt;
    const int64_t now = now_ns();
    if (now - probed_ns_ < 1'000'000'000) return std::nullopt;
    probed_ns_ = now;
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(client, 0, nullptr, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md) rd_kafka_metadata_destroy(md);
        if (down_since_ns_.exchange(0) != 0)
            log_->info("a broker of {} is reachable again, after {}", bootstrap_, seconds_since(since));
        std::lock_guard lock(mu_);
        reason_.clear();
        return std::nullopt;
    }
    if (timeout_.count() > 0 && now_ns() - since >= std::chrono::nanoseconds(timeout_).count())
        if (auto text = problem())
            return *text + " (broker_unreachable_timeout " + format_duration(timeout_) +
                   "): stopping, so that a service manager can act";
    return std::nullopt;
}

}  // namespace mephisto
