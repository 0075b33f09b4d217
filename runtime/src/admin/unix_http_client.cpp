#include "admin/unix_http_client.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mephisto {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

Result<HttpResponse> unix_http_request(const std::filesystem::path& path, const std::string& method,
                                       const std::string& target, std::chrono::milliseconds timeout,
                                       size_t max_body_bytes) {
    asio::io_context io;
    beast::basic_stream<local> stream(io);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::user_agent, "mephisto-supervisor");
    req.keep_alive(false);
    req.prepare_payload();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body_bytes);
    beast::error_code failure;
    std::string step = "connect";
    // Asynchronous, so the stream's deadline bounds every step: a worker that accepts and never answers
    // costs `timeout`, not the caller's thread.
    stream.expires_after(timeout);
    stream.async_connect(local::endpoint(path.string()), [&](beast::error_code ec) {
        if (ec) return void(failure = ec);
        step = "send";
        http::async_write(stream, req, [&](beast::error_code ec, size_t) {
            if (ec) return void(failure = ec);
            step = "read the answer";
            http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) { failure = ec; });
        });
    });
    io.run();
    if (failure) return make_error(path.string() + ": cannot " + step + ": " + failure.message());
    auto res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    return out;
}

}  // namespace mephisto
