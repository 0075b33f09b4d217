#pragma once
// The admin HTTP API of a running host (Faust's web server, port 6066): health, readiness, Prometheus
// metrics, agents, plugins, pipelines, their history (events/s and lag over 15 minutes), local table reads and
// reloads, as JSON; the status page at / is served by the HTTP server itself (admin/status_page.hpp). Every
// handler runs on the HTTP server's thread and reads the host through thread-safe accessors.
#include <string>

#include "admin/http_server.hpp"

namespace mephisto {

class Host;

// Routes one request. THREAD: the HTTP server's. (POST /reload reloads plugins: the only call that changes
// the host.)
HttpResponse handle_admin_request(Host& host, const HttpRequest& request);

// GET /tables/NAME/KEY, here or on the host that holds the key (table_route.cpp).
HttpResponse table_reply(const Host& host, const HttpRequest& request);
// The partition of `key` in a table of `partitions` partitions, as the host's producer places it (murmur2).
int32_t key_partition(const std::string& key, int partitions);

// GET /cluster (cluster_api.cpp).
HttpResponse cluster_reply(const Host& host);

// The Prometheus text exposition of the host's figures (metrics.cpp).
std::string render_metrics(const Host& host);

}  // namespace mephisto
