#pragma once
// The Beast side of admin/http_request.hpp, for the server and the parser function only: how a parser gets the
// limits, which parse errors are refusals (and which only mean the connection went away), and a parsed
// request as the handler sees it.
#include <optional>
#include <string>
#include <utility>

#include <boost/beast/http.hpp>

#include "admin/http_request.hpp"

namespace mephisto {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

void apply_limits(BeastParser& parser, const HttpLimits& limits);
// (status, reason) for an error that refuses the request; nullopt for one of the connection (closed, timed
// out, aborted), which is dropped without an answer.
std::optional<std::pair<int, std::string>> refusal_of(const boost::beast::error_code& ec);
// What the handler gets: method, target, the path percent-decoded, the body.
HttpRequest to_request(BeastRequest&& request);

}  // namespace mephisto
