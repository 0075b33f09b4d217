#pragma once
// The test driver's side of the conformance test, in a file of its own: the SDK's headers and the runtime's
// (through the test harness) each define a mephisto::Error, so they never meet in one translation unit.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace conformance {

using KeyValue = std::pair<std::optional<std::string>, std::optional<std::string>>;

struct WordCountRun {
    std::vector<KeyValue> words;            // what `split` emitted to `words`, in order
    std::map<std::string, int64_t> counts;  // the table word_counts after `count` took those words
    std::vector<std::string> errors;        // verdicts other than MPH_OK, one line each
};

// Runs word_count's `split` on `sentences` (key, value) in mephisto::testing::AgentDriver, then `count` on what
// it emitted.
WordCountRun word_count_in_driver(const std::vector<KeyValue>& sentences);

}  // namespace conformance
