// Value codecs for MessagePack and CBOR (Faust's codec registry, ABI 1.2). A table or a topic names one in
// YAML, e.g. `value: {plugin: codec_msgpack, codec: msgpack}`; the host then refuses malformed values (a
// table write fails, an undecodable input follows the agent's error policy) and shows values as JSON in
// `mephisto table get|dump`. nlohmann::json reads both binary formats, so this is decoding, not parsing by hand.
#include <mephisto/mephisto.hpp>

#include <nlohmann/json.hpp>

namespace {

// nlohmann's binary readers recurse once per nesting level, so an input of 100,000 nested one-element arrays
// (100 KB of 0x91) would overflow the stack of the host's thread. The SAX handler below builds the document
// and stops the reader before it descends past kMaxDepth, as the host bounds JSON (common/json_bounds.hpp).
constexpr std::size_t kMaxDepth = 512;

class BoundedDom : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
public:
    using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;
    explicit BoundedDom(nlohmann::json& result) : Base(result, /*allow_exceptions=*/true) {}
    bool start_object(std::size_t n) { return deeper() && Base::start_object(n); }
    bool start_array(std::size_t n) { return deeper() && Base::start_array(n); }
    bool end_object() { --depth_; return Base::end_object(); }
    bool end_array() { --depth_; return Base::end_array(); }
    bool too_deep() const { return too_deep_; }

private:
    bool deeper() {
        too_deep_ = ++depth_ > kMaxDepth;
        return !too_deep_;
    }
    std::size_t depth_ = 0;
    bool too_deep_ = false;
};

template <nlohmann::json::input_format_t Format>
nlohmann::json read_bounded(std::string_view v) {
    nlohmann::json result;
    BoundedDom dom(result);
    nlohmann::json::sax_parse(v.begin(), v.end(), &dom, Format);
    if (dom.too_deep())
        throw mephisto::Error("nested deeper than " + std::to_string(kMaxDepth) + " levels", MPH_ERR_INVALID);
    return result;
}

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

nlohmann::json from_msgpack(std::string_view v) { return read_bounded<nlohmann::json::input_format_t::msgpack>(v); }
nlohmann::json from_cbor(std::string_view v) { return read_bounded<nlohmann::json::input_format_t::cbor>(v); }

using MsgPack = BinaryJsonCodec<from_msgpack>;
using Cbor = BinaryJsonCodec<from_cbor>;

}  // namespace

MEPHISTO_PLUGIN("codec_msgpack", "1.0.0", mephisto::description("MessagePack and CBOR value codecs"),
                mephisto::codec<MsgPack>("msgpack", "MessagePack (msgpack.org), shown as JSON"),
                mephisto::codec<Cbor>("cbor", "CBOR (RFC 8949), shown as JSON"));
