#pragma once
// An HTTP/1.1 request with a deadline, over a Unix socket (how the supervisor asks its workers' admin APIs: each
// serves one in its state directory, never a TCP port) or over TCP (how a host asks another host of its cluster,
// e.g. for a table key it does not hold).
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "admin/http_request.hpp"
#include "common/result.hpp"

namespace mephisto {

// Extra request headers, as (name, value).
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Sends `method` `target` to the server on the socket `path` and reads its answer, all within `timeout`; an
// answer larger than `max_body_bytes` is an error, as is a worker that is not listening.
Result<HttpResponse> unix_http_request(const std::filesystem::path& path, const std::string& method,
                                       const std::string& target, std::chrono::milliseconds timeout,
                                       size_t max_body_bytes = 64 << 20);

// The same to "host:port" over TCP, with `headers`. The answer's headers named "Mephisto-*" and "Retry-After"
// are kept in its `headers`.
Result<HttpResponse> tcp_http_request(const std::string& address, const std::string& method, const std::string& target,
                                      const HttpHeaders& headers, std::chrono::milliseconds timeout,
                                      size_t max_body_bytes = 16 << 20);

}  // namespace mephisto
