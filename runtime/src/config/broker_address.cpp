#include "config/broker_address.hpp"

#include <algorithm>

namespace mephisto {

std::optional<std::string> bootstrap_servers(std::string_view address) {
    std::string s(address);
    if (s.rfind("kafka://", 0) == 0) s = s.substr(8);
    if (s.empty() || s.find("://") != std::string::npos) return std::nullopt;
    std::replace(s.begin(), s.end(), ';', ',');  // Faust's separator
    return s;
}

}  // namespace mephisto
