#include "tables/codec.hpp"

#include <nlohmann/json.hpp>

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

Status validate_value(ValueCodec codec, std::string_view value) {
    switch (codec) {
        case ValueCodec::raw: return {};
        case ValueCodec::int64:
        case ValueCodec::dbl:
            if (value.size() != 8)
                return make_error(std::string("a ") + codec_name(codec) + " value is 8 bytes, got " +
                                  std::to_string(value.size()));
            return {};
        case ValueCodec::json:
            if (!nlohmann::json::accept(value.begin(), value.end())) return make_error("the value is not valid JSON");
            return {};
    }
    return {};
}

const char* codec_name(ValueCodec codec) {
    switch (codec) {
        case ValueCodec::raw: return "raw";
        case ValueCodec::int64: return "int64";
        case ValueCodec::dbl: return "double";
        case ValueCodec::json: return "json";
    }
    return "?";
}

}  // namespace mephisto
