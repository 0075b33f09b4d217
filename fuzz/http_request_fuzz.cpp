// The admin API's request parsing, as the server does it (admin/http_request.hpp): Beast's parser within the
// server's limits, the refusals, the path's percent-decoding, the query's parameters and the bearer token.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "admin/http_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    static const mephisto::HttpLimits limits;
    const auto parsed = mephisto::parse_http_request(bytes, limits);
    using Outcome = mephisto::ParsedRequest::Outcome;
    if (parsed.outcome == Outcome::refused && parsed.status != 400 && parsed.status != 413 && parsed.status != 431)
        __builtin_trap();
    if (parsed.outcome == Outcome::complete) {
        if (parsed.request.body.size() > limits.max_body_bytes) __builtin_trap();
        (void)mephisto::bearer_token(parsed.authorization);
        (void)mephisto::percent_decode(parsed.request.target);
        (void)mephisto::query_param(parsed.request.target, "redirect");  // the table route's options
    }
    (void)mephisto::query_param(bytes, "forwarded");
    (void)mephisto::bearer_token(bytes);
    return 0;
}
