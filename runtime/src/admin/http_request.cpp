#include "admin/http_request.hpp"

#include <cctype>

#include <boost/asio/buffer.hpp>

#include "admin/http_request_beast.hpp"

namespace mephisto {

namespace http = boost::beast::http;

std::string percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
            i += 2;
        } else {
            out.push_back(in[i]);
        }
    }
    return out;
}

std::string percent_encode(std::string_view in) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : in) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (percent_decode(pair.substr(0, eq)) == name)
            return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        rest = rest.substr(amp + 1);
    }
    return std::nullopt;
}

std::optional<std::string_view> bearer_token(std::string_view header) {
    constexpr std::string_view scheme = "bearer";
    if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return std::nullopt;
    for (size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return std::nullopt;
    header.remove_prefix(scheme.size());
    while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
    while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
    return header;
}

void apply_limits(BeastParser& parser, const HttpLimits& limits) {
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
}

std::optional<std::pair<int, std::string>> refusal_of(const boost::beast::error_code& ec) {
    if (ec == http::error::body_limit) return std::pair{413, std::string("request body too large")};
    if (ec == http::error::header_limit) return std::pair{431, std::string("request header too large")};
    if (ec && ec != http::error::end_of_stream && ec != http::error::need_more &&
        ec.category() == http::make_error_code(http::error::bad_target).category())
        return std::pair{400, "malformed request: " + ec.message()};
    return std::nullopt;
}

HttpRequest to_request(BeastRequest&& req) {
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.path = percent_decode(std::string_view(request.target).substr(0, request.target.find('?')));
    request.body = std::move(req.body());
    return request;
}

ParsedRequest parse_http_request(std::string_view bytes, const HttpLimits& limits) {
    ParsedRequest out;
    BeastParser parser;
    apply_limits(parser, limits);
    parser.eager(true);
    boost::beast::error_code ec;
    while (!bytes.empty() && !parser.is_done()) {
        const size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec == http::error::need_more) {
            ec = {};
            if (used == 0) break;  // a partial line: more bytes would be needed
        } else if (ec) {
            break;
        }
        bytes.remove_prefix(used);
    }
    if (ec) {
        if (auto refused = refusal_of(ec)) {
            out.outcome = ParsedRequest::Outcome::refused;
            out.status = refused->first;
            out.reason = refused->second;
        }
        return out;
    }
    if (!parser.is_done()) return out;  // incomplete
    BeastRequest req = parser.release();
    out.outcome = ParsedRequest::Outcome::complete;
    out.keep_alive = req.keep_alive();
    const auto auth = req[http::field::authorization];
    out.authorization = std::string(auth.data(), auth.size());
    out.request = to_request(std::move(req));
    return out;
}

}  // namespace mephisto
