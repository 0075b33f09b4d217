#pragma once
// An HTTP/1.1 request over a Unix socket, with a deadline: how the supervisor asks its workers' admin APIs
// (each serves one in its state directory, never a TCP port).
#include <chrono>
#include <filesystem>
#include <string>

#include "admin/http_request.hpp"
#include "common/result.hpp"

namespace mephisto {

// Sends `method` `target` (with `body`, if any) to the server on the socket `path` and reads its answer, all
// within `timeout`; an answer larger than `max_body_bytes` is an error, as is a worker that is not listening.
Result<HttpResponse> unix_http_request(const std::filesystem::path& path, const std::string& method,
                                       const std::string& target, std::chrono::milliseconds timeout,
                                       size_t max_body_bytes = 64 << 20);

}  // namespace mephisto
