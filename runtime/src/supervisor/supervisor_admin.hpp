#pragma once
// The supervisor's admin API: the state of every worker, and health and readiness that name the pipeline
// that is down or restarting, and why.
#include <vector>

#include "admin/http_request.hpp"
#include "supervisor/supervisor.hpp"

namespace mephisto {

// GET /health: 503 while some pipeline has failed (past its restart limit, or refused), else 200.
// GET /ready: 200 when every worker runs its pipelines, else 503 naming each one that does not and why.
// GET /workers: every worker: pipelines, files, state, pid, restarts, last exit cause, since when.
HttpResponse handle_supervisor_request(const std::vector<WorkerStatus>& workers, const HttpRequest& request);

}  // namespace mephisto
