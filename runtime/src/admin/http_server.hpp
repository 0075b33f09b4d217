#pragma once
// A small HTTP/1.1 server for the admin API (Boost.Beast on Asio), on its own thread. It knows nothing about
// Mephisto: it parses requests within limits, checks the bearer token, and hands each request to a handler.
// Oversized, malformed or slow requests are refused or dropped without touching the handler (RELIABILITY 40).
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "admin/http_request.hpp"
#include "common/result.hpp"

namespace mephisto {

class HttpServer {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    // Binds `listen` ("host:port"; port 0 picks a free one) and starts serving. An empty token accepts every
    // request; otherwise a request without "Authorization: Bearer <token>" gets 401 (the scheme's case does not
    // matter, RFC 7235). THREAD: the handler runs
    // on the server's thread, one request at a time.
    static Result<std::unique_ptr<HttpServer>> start(const std::string& listen, std::string token, HttpLimits limits,
                                                     Handler handler);
    // Serves on a Unix socket at `path` (made 0600; a stale one is replaced), with no token: who may connect is
    // decided by the file's permissions and its directory's, which the caller keeps private. Removed when the server stops.
    static Result<std::unique_ptr<HttpServer>> listen_unix(const std::filesystem::path& path, HttpLimits limits,
                                                           Handler handler);
    ~HttpServer();  // stops and joins
    void stop();
    // The address actually bound, "host:port", or "unix:PATH".
    const std::string& address() const { return address_; }

    struct Impl;  // Asio and Beast stay in http_server.cpp

private:
    HttpServer() = default;
    void run();  // starts the server's thread
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
    std::string address_;
};

}  // namespace mephisto
