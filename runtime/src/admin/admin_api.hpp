#pragma once
// The admin HTTP API of a running host (Faust's web server, port 6066): health, readiness, Prometheus
// metrics, agents, plugins, pipelines and local table reads, as JSON. Read-only views of the host's state;
// every handler runs on the HTTP server's thread and only reads thread-safe accessors.
#include <string>

#include "admin/http_server.hpp"

namespace mephisto {

class Host;

// Routes one request. THREAD: the HTTP server's.
HttpResponse handle_admin_request(const Host& host, const HttpRequest& request);

// The Prometheus text exposition of the host's figures (metrics.cpp).
std::string render_metrics(const Host& host);

}  // namespace mephisto
