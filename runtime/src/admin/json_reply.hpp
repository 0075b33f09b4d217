#pragma once
// A JSON answer of the admin APIs (a host's and the supervisor's). Keys and values may hold any bytes: what
// is not UTF-8 is shown as U+FFFD rather than failing the request.
#include <string>

#include <nlohmann/json.hpp>

#include "admin/http_request.hpp"

namespace mephisto {

inline HttpResponse json_reply(int status, const nlohmann::json& body) {
    return {status, "application/json", body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}
inline HttpResponse json_error(int status, const std::string& message) {
    return json_reply(status, nlohmann::json{{"error", message}});
}

}  // namespace mephisto
