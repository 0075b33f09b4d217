#pragma once
// The host-internal agent behind `group_by` and `through` (Faust's stream.group_by): it re-keys each event
// (by its key, or by a JSON field of its value) and sends it to the repartition topic, where the events of
// one key land on one partition, next to that key's table shard. It is an ordinary agent to the pipeline, so
// its acknowledgements, retries and error policy are those of every other agent.
#include "plugin/plugin.hpp"

namespace mephisto {

// Params: by = key | field, field = NAME (for by: field), topic = the repartition topic.
const AgentInfo& repartition_agent();

}  // namespace mephisto
