#pragma once
// The supervisor's count of the crashes of each record (the poison-record quarantine, issue 12): a JSON file in
// the worker's directory, so the bookkeeping survives a supervisor restart. The supervisor adds a crash after
// each worker death it can pin on a record (common/call_slots.hpp); the next worker reads the file and
// dead-letters the records that reached their agent's on_crash.quarantine_after.
#include <filesystem>
#include <string>
#include <vector>

#include "common/call_slots.hpp"
#include "common/result.hpp"
#include "engine/poison_record.hpp"

namespace mephisto::crash_ledger {

// Records beyond this many, the ones whose last crash is oldest are forgotten.
inline constexpr size_t kMaxRecords = 1000;

// The records of `file`; none when it does not exist. Errors: unreadable, too large, or not a ledger.
Result<std::vector<PoisonRecord>> read(const std::filesystem::path& file);
// Counts one crash of `call` (`fault`: "SIGSEGV", "exit"...) and writes the file again (a new file renamed over
// the old one). Returns the record with its new count.
Result<PoisonRecord> add_crash(const std::filesystem::path& file, const call_slots::CallInProgress& call,
                               const std::string& fault, int64_t now_ms);

}  // namespace mephisto::crash_ledger
