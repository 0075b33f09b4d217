#include "conformance_driver.hpp"

#include <mephisto/testing.hpp>

namespace conformance {

WordCountRun word_count_in_driver(const std::vector<KeyValue>& sentences) {
    using mephisto::testing::AgentDriver;
    WordCountRun run;
    AgentDriver split(mephisto_plugin_entry, "split", {}, {.sinks = {"words"}, .from = "sentences"});
    for (const auto& [key, value] : sentences)
        if (const mph_status st = split.send(value, key); st != MPH_OK)
            run.errors.push_back("split: status " + std::to_string(st) + ": " + split.last_error());
    for (const auto& o : split.outputs("words")) run.words.emplace_back(o.key, o.value);
    AgentDriver count(mephisto_plugin_entry, "count", {}, {.tables = {{.name = "word_counts", .value = "int64"}}, .from = "words"});
    for (const auto& [key, value] : run.words)
        if (const mph_status st = count.send(value, key); st != MPH_OK)
            run.errors.push_back("count: status " + std::to_string(st) + ": " + count.last_error());
    for (const auto& [key, stored] : count.table("word_counts")) run.counts[key] = *count.table_int64("word_counts", key);
    return run;
}

}  // namespace conformance
