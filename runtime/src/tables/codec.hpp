#pragma once
// Table value codecs: what a value's bytes mean. Shared by the store, the changelog and the ABI, so a value
// looks the same in RocksDB, in `<app>-<table>-changelog` and to the plugin.
#include <cstdint>
#include <string>
#include <string_view>

#include <map>
#include <memory>

#include "common/result.hpp"
#include "config/config.hpp"
#include "mephisto/mephisto.h"

namespace mephisto {

class Plugin;
using PluginMap = std::map<std::string, std::shared_ptr<Plugin>>;

// The codec registry (Faust's codecs, ABI 1.2): every codec the host uses is an mph_codec_descriptor, the
// built-ins (raw, int64, double, json) as much as a plugin's, and is used through these functions only.
const mph_codec_descriptor& builtin_codec(ValueCodec codec);
// The value is well-formed for `codec`; the error is the codec's reason.
Status validate_with(const mph_codec_descriptor& codec, std::string_view value);
// The value as one JSON value (a JSON string of the bytes when the codec cannot render it).
std::string to_json_with(const mph_codec_descriptor& codec, std::string_view value);

// What a table's values are and how table_merge folds into them, resolved against the loaded plugins.
struct TableTypes {
    const mph_codec_descriptor* codec = nullptr;
    const mph_aggregator_descriptor* aggregator = nullptr;  // null: no `aggregate:`
};
// Errors name the YAML position of the reference and what the plugin does provide.
Result<TableTypes> resolve_table_types(const TableSpec& table, const PluginMap& plugins);
// A topic's value codec when it names a plugin's (null for raw and json, which the pipeline checks itself).
Result<const mph_codec_descriptor*> resolve_topic_codec(const TopicSpec& topic, const PluginMap& plugins);
// Plugins that the pipeline's codecs, aggregators and key functions come from (beyond the agents' plugins),
// with the place that names each.
std::vector<std::pair<std::string, Mark>> item_plugins(const PipelineConfig& config);

std::string encode_int64(int64_t v);       // 8 bytes big-endian (Kafka's LongSerializer)
int64_t decode_int64(std::string_view b);  // b must be 8 bytes
const char* codec_name(ValueCodec codec);

}  // namespace mephisto
