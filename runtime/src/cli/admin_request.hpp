#pragma once
// One request to a running host's admin API (a Boost.Beast client), for the commands that talk to a host:
// status, agents, reload, table get --admin, top.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"

namespace mephisto::cli {

struct AdminReply {
    int status = 0;
    std::string body;
};

// Sends `method` `path` to the admin API at o.address (with o.token). nullopt when the host cannot be reached: the
// reason goes to `why` when given, else to stderr.
std::optional<AdminReply> admin_request(const AdminOptions& o, const std::string& method, const std::string& path,
                                        std::string* why = nullptr);

// GET `path` as JSON (a 503 too when `accept_503`); nullopt with the reason in `why` (or on stderr) otherwise.
std::optional<nlohmann::json> admin_get_json(const AdminOptions& o, const std::string& path, bool accept_503 = false,
                                             std::string* why = nullptr);

}  // namespace mephisto::cli
