#pragma once
// The host side of the opaque mph_agent_ctx handle: what a host function needs to know about the instance
// calling it. One per agent instance (lane) and one per timer; only the thread running that instance's
// callback touches it (ABI convention 7).
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <spdlog/logger.h>

#include "mephisto/mephisto.h"

namespace mephisto {
class Pipeline;
struct InFlight;
struct Lane;
struct AgentStats;
class TableStore;
class TableShard;

// A table an instance may use, bound to the shard of the instance's partition. mph_table* points at one.
struct TableBinding {
    std::string name;
    TableStore* store = nullptr;
    TableShard* shard = nullptr;  // null for a timer instance (no partition)
};
}  // namespace mephisto

struct mph_agent_ctx {
    mephisto::Pipeline* pipeline = nullptr;
    std::string agent_name;
    std::map<std::string, std::string> params;  // YAML params over the plugin's declared defaults
    const std::vector<std::string>* sinks = nullptr;
    std::shared_ptr<spdlog::logger> log;
    int32_t partition = -1;
    mephisto::AgentStats* stats = nullptr;  // the agent's counters (null for timers)
    mephisto::Lane* lane = nullptr;          // the partition instance's lane (null for timers)

    // Set only while a callback runs:
    const rd_kafka_message_t* message = nullptr;  // on_event of a consumed message: the message (window time)
    const mephisto::InFlight* current = nullptr;  // on_event: the event, for forward() and reply()
    mephisto::InFlight* inflight = nullptr;       // outputs are tracked against this input (or NULL: timers)
    std::string error;                            // set_error's text for the current verdict

    std::vector<mephisto::TableBinding> tables;   // the tables the agent declared
    std::deque<std::string> views;                // table_get results, valid until the callback returns
};

namespace mephisto {
// The host function table handed to every plugin. Static storage: valid for the life of the process.
const mph_host_api* host_api();
}  // namespace mephisto
