// A request to a running host's admin API (cli/admin_request.hpp).
#include "cli/admin_request.hpp"

#include <iostream>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mephisto::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;

void say(std::string* why, const std::string& text) {
    if (why) *why = text;
    else std::cerr << text << "\n";
}

}  // namespace

std::optional<AdminReply> admin_request(const AdminOptions& o, const std::string& method, const std::string& path,
                                        std::string* why) {
    const auto colon = o.address.rfind(':');
    if (colon == std::string::npos) {
        say(why, "--admin: '" + o.address + "' is not host:port");
        return std::nullopt;
    }
    try {
        asio::io_context io;
        asio::ip::tcp::resolver resolver(io);
        beast::tcp_stream stream(io);
        stream.expires_after(std::chrono::seconds(10));
        stream.connect(resolver.resolve(o.address.substr(0, colon), o.address.substr(colon + 1)));
        http::request<http::string_body> req{http::string_to_verb(method), path, 11};
        req.set(http::field::host, o.address);
        req.set(http::field::user_agent, "mephisto-cli");
        if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
        req.prepare_payload();
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(stream, buffer, res);
        beast::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        return AdminReply{static_cast<int>(res.result_int()), res.body()};
    } catch (const std::exception& e) {
        say(why, "cannot reach the host's admin API at " + o.address + ": " + e.what() +
                     " (is `mephisto run` running? --admin HOST:PORT names another address)");
        return std::nullopt;
    }
}

std::optional<json> admin_get_json(const AdminOptions& o, const std::string& path, bool accept_503, std::string* why) {
    auto reply = admin_request(o, "GET", path, why);
    if (!reply) return std::nullopt;
    if (reply->status != 200 && !(accept_503 && reply->status == 503)) {
        say(why, "GET " + path + ": HTTP " + std::to_string(reply->status) + " " + reply->body);
        return std::nullopt;
    }
    auto parsed = json::parse(reply->body, nullptr, false);
    if (parsed.is_discarded()) {
        say(why, "GET " + path + ": the reply is not JSON");
        return std::nullopt;
    }
    return parsed;
}

}  // namespace mephisto::cli
