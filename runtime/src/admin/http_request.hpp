#pragma once
// An admin request as the server reads it, apart from the socket: Beast's parser within the limits, the
// refusals (400 malformed, 413 body too large, 431 header too large), the target's path percent-decoded, and
// the bearer token. The server (admin/http_server.cpp) and the fuzz target (fuzz/http_request_fuzz.cpp) share
// this code, so what is fuzzed is what faces the network.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mephisto {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // path and query, as sent
    std::string path;    // target without the query, percent-decoded
    std::string body;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers = {};  // more headers, as (name, value)
};

// The value of `name` in the query of `target` ("/path?a=1&b=x"), percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

struct HttpLimits {
    size_t max_header_bytes = 8 * 1024;
    size_t max_body_bytes = 64 * 1024;
    int read_timeout_seconds = 10;
    // Open connections in all, and from one address. Past either, the oldest connection still waiting for its
    // request (of the address holding the most) is closed to make room: idle connections cannot lock anyone out,
    // and a client that sends its request at once is always served.
    int max_connections = 64;
    int max_connections_per_peer = 16;
};

// `in` with %XX sequences decoded (a malformed one is kept as it is).
std::string percent_decode(std::string_view in);
// `in` with every byte but the unreserved ones (RFC 3986: letters, digits, - _ . ~) as %XX: for a path segment.
std::string percent_encode(std::string_view in);

// The token of an "Authorization: Bearer <token>" header; nullopt for another scheme. The scheme is
// case-insensitive (RFC 7235: credentials = auth-scheme 1*SP token68); spaces around the token are ignored.
std::optional<std::string_view> bearer_token(std::string_view header);

// One request parsed from `bytes` with the server's limits.
struct ParsedRequest {
    enum class Outcome { complete, incomplete, refused } outcome = Outcome::incomplete;
    int status = 0;      // refused: the answer
    std::string reason;  // refused: why
    HttpRequest request;          // complete
    std::string authorization;    // complete: the Authorization header as sent
    bool keep_alive = false;      // complete
};
ParsedRequest parse_http_request(std::string_view bytes, const HttpLimits& limits);

}  // namespace mephisto
