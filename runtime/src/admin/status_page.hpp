#pragma once
// The status page (GET / on the admin port): an HTML page and its script, style and charting library, built into
// the binary (runtime/ui/, and Debian's libjs-dygraphs; runtime/cmake/embed_assets.cmake), so it works with no
// internet and no file beside the binary. The page reads the admin API itself; these files hold no data, so they
// are served without the bearer token, and the page asks for the token to read the rest.
#include <optional>
#include <string_view>
#include <vector>

#include "admin/http_request.hpp"

namespace mephisto {

struct StaticAsset {
    std::string_view path;          // "/ui/status.js"
    std::string_view content_type;  // "text/javascript; charset=utf-8"
    std::string_view body;
};

// Every file of the page (the generated status_page_assets.cpp).
const std::vector<StaticAsset>& status_page_assets();

// The page's file at `path` ("/" is the page itself); nullopt for any other path.
std::optional<HttpResponse> status_page_file(std::string_view path);

// Whether `path` is one of the page's files: served to anyone, with no token.
bool is_status_page_path(std::string_view path);

}  // namespace mephisto
