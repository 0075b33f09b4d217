// The supervisor's /metrics joins its workers' expositions (supervisor/metrics_merge.hpp): each family once,
// its HELP and TYPE before all its samples, whichever workers have it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "supervisor/metrics_merge.hpp"

TEST_CASE("merged expositions keep each family once, with every worker's samples under it") {
    const std::string left =
        "# HELP mephisto_up 1 while up\n# TYPE mephisto_up gauge\nmephisto_up{pipeline=\"left\"} 1\n"
        "# HELP mephisto_agent_processing_seconds time\n# TYPE mephisto_agent_processing_seconds histogram\n"
        "mephisto_agent_processing_seconds_bucket{pipeline=\"left\",le=\"+Inf\"} 3\n"
        "mephisto_agent_processing_seconds_sum{pipeline=\"left\"} 0.5\n"
        "mephisto_agent_processing_seconds_count{pipeline=\"left\"} 3\n";
    const std::string right =
        "# HELP mephisto_up 1 while up\n# TYPE mephisto_up gauge\nmephisto_up{pipeline=\"right\"} 0\n"
        "# a comment of another kind\n"
        "# HELP mephisto_consumer_lag lag\n# TYPE mephisto_consumer_lag gauge\nmephisto_consumer_lag{pipeline=\"right\"} 7";
    const std::string merged = mephisto::merge_expositions({left, right, "", "# HELP lonely no samples\n"});
    CHECK(merged ==
          "# HELP mephisto_up 1 while up\n# TYPE mephisto_up gauge\nmephisto_up{pipeline=\"left\"} 1\n"
          "mephisto_up{pipeline=\"right\"} 0\n"
          "# HELP mephisto_agent_processing_seconds time\n# TYPE mephisto_agent_processing_seconds histogram\n"
          "mephisto_agent_processing_seconds_bucket{pipeline=\"left\",le=\"+Inf\"} 3\n"
          "mephisto_agent_processing_seconds_sum{pipeline=\"left\"} 0.5\n"
          "mephisto_agent_processing_seconds_count{pipeline=\"left\"} 3\n"
          "# HELP mephisto_consumer_lag lag\n# TYPE mephisto_consumer_lag gauge\nmephisto_consumer_lag{pipeline=\"right\"} 7\n");
    CHECK(mephisto::merge_expositions({}).empty());
}
