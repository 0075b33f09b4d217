#pragma once
// A record that crashed its worker process again and again (supervisor/crash_ledger.hpp counts them): the
// next worker dead-letters it instead of giving it to the agent again (issue 12, the poison-record quarantine).
#include <cstdint>
#include <string>

namespace mephisto {

struct PoisonRecord {
    std::string pipeline, agent, topic;
    int32_t partition = -1;
    int64_t offset = -1;
    int crashes = 0;
    std::string fault;       // "SIGSEGV", "exit", "callback_timeout"... of the last crash
    std::string plugin, sha1;  // of the plugin that crashed on it
    int64_t last_crash_ms = 0;  // wall clock
    // "topic[partition]@offset", as the pipeline names an event's place.
    std::string place() const { return topic + "[" + std::to_string(partition) + "]@" + std::to_string(offset); }
};

}  // namespace mephisto
