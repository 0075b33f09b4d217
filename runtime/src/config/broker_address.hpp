#pragma once
// Broker addresses as users write them (Faust's `kafka://host:port`, with ';' or ',' between brokers, or a bare
// `host:port` list) turned into librdkafka's bootstrap.servers list.
#include <optional>
#include <string>
#include <string_view>

namespace mephisto {

// "kafka://a:9092;b:9092", "a:9092,b:9092" -> "a:9092,b:9092"; nullopt when empty or another scheme is named.
std::optional<std::string> bootstrap_servers(std::string_view address);

}  // namespace mephisto
