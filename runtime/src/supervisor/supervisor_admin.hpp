#pragma once
// The supervisor's admin API (port 6066, as a host's): it answers for every worker. Its own views say which
// pipeline is down or restarting, and why; the others merge what each worker's admin API answers on the Unix
// socket in its state directory (never a TCP port).
#include <chrono>
#include <functional>
#include <vector>

#include "admin/http_request.hpp"
#include "supervisor/supervisor.hpp"

namespace mephisto {

struct SupervisorAdmin {
    std::function<std::vector<WorkerStatus>()> workers;  // THREAD: any
    std::function<void()> reload_files;                  // POST /reload: the supervisor reads the files again
    std::chrono::milliseconds worker_timeout{5'000};     // for each worker's answer
};

// GET /health: 503 while some pipeline has failed (past its restart limit, or refused), else 200.
// GET /ready: 200 when every worker runs its pipelines and is ready itself, else 503 naming each one that is not
//   and why.
// GET /workers: every worker: pipelines, files, state, pid, restarts, last exit cause, since when.
// GET /cluster: the hosts every worker knows of from its pipelines' control topics, one entry per host.
// GET / (the status page; admin/status_page.hpp): served by the HTTP server itself, as on a host.
// GET /agents, /pipelines, /plugins, /reloads, /history: every worker's, in one list (a pipeline whose worker is down is
//   listed with the worker's state and why); GET /metrics: every worker's series, each with its `pipeline`
//   label, and the supervisor's own per worker; GET /tables/NAME/KEY: the worker that holds it answers;
//   POST /reload: every worker reloads, and the supervisor reads the pipeline files again.
HttpResponse handle_supervisor_request(const SupervisorAdmin& admin, const HttpRequest& request);

}  // namespace mephisto
