#include "tables/codec.hpp"

#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"
#include "plugin/plugin.hpp"

namespace mephisto {

std::string encode_int64(int64_t v) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(v) >> (56 - 8 * i)) & 0xff);
    return out;
}

int64_t decode_int64(std::string_view b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return static_cast<int64_t>(v);
}

// ----------------------------------------------------------------------------------------- the registry

namespace {

void write_string(mph_write_fn write, void* sink, const std::string& text) { write(sink, text.data(), text.size()); }

mph_status refuse(char* errbuf, size_t size, const std::string& reason) {
    if (errbuf && size > 0) std::snprintf(errbuf, size, "%s", reason.c_str());
    return MPH_ERR_INVALID;
}

std::string_view view(const void* p, size_t n) { return {static_cast<const char*>(p), p ? n : 0}; }

mph_status raw_to_json(const void* value, size_t len, mph_write_fn write, void* sink) {
    // Bytes that are not UTF-8 still render: invalid sequences become U+FFFD rather than failing.
    write_string(write, sink, nlohmann::json(std::string(view(value, len))).dump(-1, ' ', false,
                                                                              nlohmann::json::error_handler_t::replace));
    return MPH_OK;
}

mph_status fixed8_validate(const void*, size_t len, char* errbuf, size_t size, const char* what) {
    if (len == 8) return MPH_OK;
    return refuse(errbuf, size, std::string("a ") + what + " value is 8 bytes, got " + std::to_string(len));
}

mph_status int64_validate(const void* v, size_t len, char* errbuf, size_t size) {
    return fixed8_validate(v, len, errbuf, size, "int64");
}
mph_status int64_to_json(const void* value, size_t len, mph_write_fn write, void* sink) {
    if (len != 8) return MPH_ERR_INVALID;
    write_string(write, sink, std::to_string(decode_int64(view(value, len))));
    return MPH_OK;
}

mph_status double_validate(const void* v, size_t len, char* errbuf, size_t size) {
    return fixed8_validate(v, len, errbuf, size, "double");
}
mph_status double_to_json(const void* value, size_t len, mph_write_fn write, void* sink) {
    if (len != 8) return MPH_ERR_INVALID;
    const auto bits = static_cast<uint64_t>(decode_int64(view(value, len)));
    double d;
    std::memcpy(&d, &bits, 8);
    write_string(write, sink, nlohmann::json(d).dump());
    return MPH_OK;
}

mph_status json_validate(const void* value, size_t len, char* errbuf, size_t size) {
    const auto text = view(value, len);
    // Bounded first: a value too deep for the host's renderings (and for most plugins' parsers) is refused.
    if (auto deep = json_depth_error(text)) return refuse(errbuf, size, "the value is " + *deep);
    if (nlohmann::json::accept(text.begin(), text.end())) return MPH_OK;
    return refuse(errbuf, size, "the value is not valid JSON");
}
mph_status json_to_json(const void* value, size_t len, mph_write_fn write, void* sink) {
    write(sink, value, len);
    return MPH_OK;
}

const mph_codec_descriptor kRaw = {sizeof(mph_codec_descriptor), "raw", "bytes, as they are", nullptr, raw_to_json};
const mph_codec_descriptor kInt64 = {sizeof(mph_codec_descriptor), "int64", "8 bytes big-endian (Kafka's LongSerializer)",
                                     int64_validate, int64_to_json};
const mph_codec_descriptor kDouble = {sizeof(mph_codec_descriptor), "double", "IEEE-754 binary64, big-endian",
                                      double_validate, double_to_json};
const mph_codec_descriptor kJson = {sizeof(mph_codec_descriptor), "json", "UTF-8 JSON text", json_validate,
                                    json_to_json};

void append(void* sink, const void* data, size_t len) {
    if (data && len) static_cast<std::string*>(sink)->append(static_cast<const char*>(data), len);
}

std::string provided(const std::vector<std::string>& names) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return list.empty() ? "none" : list;
}

}  // namespace

const mph_codec_descriptor& builtin_codec(ValueCodec codec) {
    switch (codec) {
        case ValueCodec::int64: return kInt64;
        case ValueCodec::dbl: return kDouble;
        case ValueCodec::json: return kJson;
        default: return kRaw;
    }
}

Status validate_with(const mph_codec_descriptor& codec, std::string_view value) {
    if (!codec.validate) return {};
    char errbuf[256] = {};
    if (codec.validate(value.data(), value.size(), errbuf, sizeof errbuf) == MPH_OK) return {};
    errbuf[sizeof errbuf - 1] = '\0';
    return make_error(errbuf[0] ? std::string(errbuf) : std::string("the codec refused the value"));
}

std::string to_json_with(const mph_codec_descriptor& codec, std::string_view value) {
    std::string out;
    if (codec.to_json && codec.to_json(value.data(), value.size(), append, &out) == MPH_OK && !out.empty()) return out;
    out.clear();
    raw_to_json(value.data(), value.size(), append, &out);
    return out;
}

Result<TableTypes> resolve_table_types(const TableSpec& table, const PluginMap& plugins) {
    TableTypes types;
    types.codec = &builtin_codec(table.value);
    if (table.value == ValueCodec::plugin) {
        auto it = plugins.find(table.value_codec.plugin);
        if (it == plugins.end()) return make_error(table.value_codec.mark.str() + ": plugin " + table.value_codec.plugin + " is not loaded");
        const CodecInfo* codec = it->second->find_codec(table.value_codec.name);
        if (!codec) {
            std::vector<std::string> names;
            for (const auto& c : it->second->codecs()) names.push_back(c.name);
            return make_error(table.value_codec.mark.str() + ": plugin " + table.value_codec.plugin + " has no codec '" +
                              table.value_codec.name + "' (it provides: " + provided(names) + ")");
        }
        types.codec = &codec->callbacks;
    }
    if (!table.aggregate.empty()) {
        auto it = plugins.find(table.aggregate.plugin);
        if (it == plugins.end()) return make_error(table.aggregate.mark.str() + ": plugin " + table.aggregate.plugin + " is not loaded");
        const AggregatorInfo* aggregator = it->second->find_aggregator(table.aggregate.name);
        if (!aggregator) {
            std::vector<std::string> names;
            for (const auto& a : it->second->aggregators()) names.push_back(a.name);
            return make_error(table.aggregate.mark.str() + ": plugin " + table.aggregate.plugin + " has no aggregator '" +
                              table.aggregate.name + "' (it provides: " + provided(names) + ")");
        }
        types.aggregator = &aggregator->callbacks;
    }
    if (table.default_value)
        if (auto st = validate_with(*types.codec, *table.default_value); !st)
            return make_error(table.mark.str() + ": table " + table.name + ": the default is not a valid value: " + st.error());
    return types;
}

Result<const mph_codec_descriptor*> resolve_topic_codec(const TopicSpec& topic, const PluginMap& plugins) {
    if (topic.value != Codec::plugin) return nullptr;
    auto it = plugins.find(topic.value_codec.plugin);
    if (it == plugins.end()) return make_error(topic.value_codec.mark.str() + ": plugin " + topic.value_codec.plugin + " is not loaded");
    const CodecInfo* codec = it->second->find_codec(topic.value_codec.name);
    if (!codec) {
        std::vector<std::string> names;
        for (const auto& c : it->second->codecs()) names.push_back(c.name);
        return make_error(topic.value_codec.mark.str() + ": plugin " + topic.value_codec.plugin + " has no codec '" +
                          topic.value_codec.name + "' (it provides: " + provided(names) + ")");
    }
    return &codec->callbacks;
}

std::vector<std::pair<std::string, Mark>> item_plugins(const PipelineConfig& config) {
    std::vector<std::pair<std::string, Mark>> out;
    for (const auto& t : config.topics)
        if (!t.value_codec.empty()) out.emplace_back(t.value_codec.plugin, t.value_codec.mark);
    for (const auto& t : config.tables) {
        if (!t.value_codec.empty()) out.emplace_back(t.value_codec.plugin, t.value_codec.mark);
        if (!t.aggregate.empty()) out.emplace_back(t.aggregate.plugin, t.aggregate.mark);
    }
    for (const auto& a : config.agents) {
        if (!a.key_function.empty()) out.emplace_back(a.key_function.plugin, a.key_function.mark);
        if (!a.filter.empty()) out.emplace_back(a.filter.plugin, a.filter.mark);
    }
    return out;
}

const char* codec_name(ValueCodec codec) {
    switch (codec) {
        case ValueCodec::raw: return "raw";
        case ValueCodec::int64: return "int64";
        case ValueCodec::dbl: return "double";
        case ValueCodec::json: return "json";
        case ValueCodec::plugin: return "plugin";
    }
    return "?";
}

}  // namespace mephisto
