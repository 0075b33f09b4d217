#pragma once
// One Prometheus text exposition from several: the supervisor's /metrics joins its workers'. The text format
// wants each family once, its HELP and TYPE before all its samples, so the samples of a family are gathered
// from every exposition under the first one's HELP and TYPE. Series stay apart by their `pipeline` label,
// which every worker puts on all of its series.
#include <string>
#include <vector>

namespace mephisto {

std::string merge_expositions(const std::vector<std::string>& expositions);

}  // namespace mephisto
