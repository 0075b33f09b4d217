#include "admin/http_client.hpp"

#include <strings.h>

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mephisto {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using tcp = asio::ip::tcp;

namespace {

// One request on a stream of protocol P, every step bounded by the stream's deadline: a server that accepts and
// never answers costs `timeout`, not the caller's thread. `where` names the server in errors.
template <typename Protocol>
Result<HttpResponse> request_over(const typename Protocol::endpoint& endpoint, const std::string& where,
                                  const std::string& host_header, const std::string& method, const std::string& target,
                                  const HttpHeaders& headers, std::chrono::milliseconds timeout, size_t max_body_bytes) {
    asio::io_context io;
    beast::basic_stream<Protocol> stream(io);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, "mephisto");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.keep_alive(false);
    req.prepare_payload();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body_bytes);
    beast::error_code failure;
    std::string step = "connect";
    stream.expires_after(timeout);
    stream.async_connect(endpoint, [&](beast::error_code ec) {
        if (ec) return void(failure = ec);
        step = "send";
        http::async_write(stream, req, [&](beast::error_code ec, size_t) {
            if (ec) return void(failure = ec);
            step = "read the answer";
            http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) { failure = ec; });
        });
    });
    io.run();
    if (failure) return make_error(where + ": cannot " + step + ": " + failure.message());
    auto res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    for (const auto& field : res) {
        const std::string name(field.name_string());
        if (!strncasecmp(name.c_str(), "mephisto-", 9) || !strcasecmp(name.c_str(), "retry-after"))
            out.headers.emplace_back(name, std::string(field.value()));
    }
    out.body = std::move(res.body());
    return out;
}

}  // namespace

Result<HttpResponse> unix_http_request(const std::filesystem::path& path, const std::string& method,
                                       const std::string& target, std::chrono::milliseconds timeout,
                                       size_t max_body_bytes) {
    return request_over<local>(local::endpoint(path.string()), path.string(), "localhost", method, target, {}, timeout,
                               max_body_bytes);
}

Result<HttpResponse> tcp_http_request(const std::string& address, const std::string& method, const std::string& target,
                                      const HttpHeaders& headers, std::chrono::milliseconds timeout,
                                      size_t max_body_bytes) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) return make_error(address + ": not host:port");
    // An address, never a name: what is asked for comes from other hosts' records, and a lookup would wait on DNS.
    beast::error_code ec;
    const auto ip = asio::ip::make_address(address.substr(0, colon), ec);
    if (ec) return make_error(address + ": not an IP address and port");
    unsigned long port = 0;
    try {
        port = std::stoul(address.substr(colon + 1));
    } catch (const std::exception&) {
    }
    if (port == 0 || port > 65535) return make_error(address + ": not a port");
    return request_over<tcp>(tcp::endpoint(ip, static_cast<uint16_t>(port)), address, address, method, target, headers,
                             timeout, max_body_bytes);
}

}  // namespace mephisto
