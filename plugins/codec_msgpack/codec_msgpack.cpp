// Value codecs for MessagePack and CBOR (Faust's codec registry, ABI 1.2). A table or a topic names one in
// YAML, e.g. `value: {plugin: codec_msgpack, codec: msgpack}`; the host then refuses malformed values (a
// table write fails, an undecodable input follows the agent's error policy) and shows values as JSON in
// `mephisto table get|dump`. nlohmann::json reads both binary formats, so this is decoding, not parsing by hand.
#include <mephisto/mephisto.hpp>

#include <nlohmann/json.hpp>

namespace {

template <auto Decode>
struct BinaryJsonCodec {
    static nlohmann::json decode(std::string_view value) {
        try {
            return Decode(value);
        } catch (const nlohmann::json::exception& e) {
            // "[json.exception.parse_error.110] parse error at byte 3: ..." -> the part after the tag.
            std::string what = e.what();
            if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
            throw mephisto::Error(what, MPH_ERR_INVALID);
        }
    }
    static void validate(std::string_view value) { (void)decode(value); }
    static std::string to_json(std::string_view value) { return decode(value).dump(); }
};

nlohmann::json from_msgpack(std::string_view v) { return nlohmann::json::from_msgpack(v.begin(), v.end()); }
nlohmann::json from_cbor(std::string_view v) { return nlohmann::json::from_cbor(v.begin(), v.end()); }

using MsgPack = BinaryJsonCodec<from_msgpack>;
using Cbor = BinaryJsonCodec<from_cbor>;

}  // namespace

MEPHISTO_PLUGIN("codec_msgpack", "1.0.0", mephisto::description("MessagePack and CBOR value codecs"),
                mephisto::codec<MsgPack>("msgpack", "MessagePack (msgpack.org), shown as JSON"),
                mephisto::codec<Cbor>("cbor", "CBOR (RFC 8949), shown as JSON"));
