// Aggregators for tables (ABI 1.2): a table declares one with `aggregate: {plugin: aggregate_stats, name: max}`
// and agents fold values into it with table_merge (Table::merge in C++). The host runs each merge under the
// key's lock in its write-back cache, so these run at hash-map speed like the built-in counter (table_add).
//  - max, min: int64 tables (8 bytes big-endian); the input is an int64 in the same encoding.
//  - summary:  json tables; the input is a JSON number; the value is {"count", "sum", "min", "max", "mean"}.
#include <mephisto/mephisto.hpp>

#include <nlohmann/json.hpp>

namespace {

int64_t int64_input(std::string_view bytes, const char* what) {
    const std::optional<int64_t> value = mephisto::decode_int64(bytes);
    if (!value)
        throw mephisto::Error(std::string(what) + " takes an int64 (8 bytes big-endian), got " +
                                  std::to_string(bytes.size()) + " bytes",
                              MPH_ERR_INVALID);
    return *value;
}

std::string bytes(int64_t value) {
    const auto encoded = mephisto::encode_int64(value);
    return std::string(encoded.data(), encoded.size());
}

template <bool Greater>
struct Extreme {
    static std::string merge(std::optional<std::string_view> current, std::string_view input) {
        const int64_t in = int64_input(input, Greater ? "max" : "min");
        if (!current) return bytes(in);
        const int64_t now = int64_input(*current, Greater ? "max" : "min");
        return bytes(Greater ? std::max(now, in) : std::min(now, in));
    }
};

struct Summary {
    static std::string merge(std::optional<std::string_view> current, std::string_view input) {
        const auto in = nlohmann::json::parse(input, nullptr, false);
        if (!in.is_number()) throw mephisto::Error("summary takes a JSON number", MPH_ERR_INVALID);
        const double x = in.get<double>();
        nlohmann::json s = current ? nlohmann::json::parse(*current, nullptr, false) : nlohmann::json();
        if (!s.is_object() || !s.contains("count")) s = {{"count", 0}, {"sum", 0.0}, {"min", x}, {"max", x}};
        const auto count = s["count"].get<int64_t>() + 1;
        const double sum = s["sum"].get<double>() + x;
        s["count"] = count;
        s["sum"] = sum;
        s["min"] = std::min(s["min"].get<double>(), x);
        s["max"] = std::max(s["max"].get<double>(), x);
        s["mean"] = sum / static_cast<double>(count);
        return s.dump();
    }
};

}  // namespace

MEPHISTO_PLUGIN("aggregate_stats", "1.0.0", mephisto::description("max, min and summary aggregations for tables"),
                mephisto::aggregator<Extreme<true>>("max", "the largest int64 seen"),
                mephisto::aggregator<Extreme<false>>("min", "the smallest int64 seen"),
                mephisto::aggregator<Summary>("summary", "count, sum, min, max and mean of JSON numbers"));
