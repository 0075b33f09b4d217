// The status page's files (admin/status_page.hpp).
#include "admin/status_page.hpp"

namespace mephisto {

namespace {

const StaticAsset* find(std::string_view path) {
    if (path == "/" || path == "/index.html") path = "/ui/index.html";
    for (const auto& asset : status_page_assets())
        if (asset.path == path) return &asset;
    return nullptr;
}

}  // namespace

bool is_status_page_path(std::string_view path) { return find(path) != nullptr; }

std::optional<HttpResponse> status_page_file(std::string_view path) {
    const StaticAsset* asset = find(path);
    if (!asset) return std::nullopt;
    HttpResponse r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    // The page's own files only: no frames from elsewhere, no scripts or connections but to this host.
    r.headers = {{"Content-Security-Policy",
                  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Cache-Control", "no-cache"}};
    return r;
}

}  // namespace mephisto
