#pragma once
// A small HTTP/1.1 server for the admin API (Boost.Beast on Asio), on its own thread. It knows nothing about
// Mephisto: it parses requests within limits, checks the bearer token, and hands each request to a handler.
// Oversized, malformed or slow requests are refused or dropped without touching the handler (RELIABILITY 40).
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.hpp"

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
};

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

// The token of an "Authorization: Bearer <token>" header; nullopt for another scheme. The scheme is
// case-insensitive (RFC 7235); spaces around the token are ignored.
std::optional<std::string_view> bearer_token(std::string_view header);

class HttpServer {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    // Binds `listen` ("host:port"; port 0 picks a free one) and starts serving. An empty token accepts every
    // request; otherwise a request without "Authorization: Bearer <token>" gets 401 (the scheme's case does not
    // matter, RFC 7235). THREAD: the handler runs
    // on the server's thread, one request at a time.
    static Result<std::unique_ptr<HttpServer>> start(const std::string& listen, std::string token, HttpLimits limits,
                                                     Handler handler);
    ~HttpServer();  // stops and joins
    void stop();
    // The address actually bound, "host:port".
    const std::string& address() const { return address_; }

    struct Impl;  // Asio and Beast stay in http_server.cpp

private:
    HttpServer() = default;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
    std::string address_;
};

}  // namespace mephisto
