#pragma once
// Table value codecs: what a value's bytes mean. Shared by the store, the changelog and the ABI, so a value
// looks the same in RocksDB, in `<app>-<table>-changelog` and to the plugin.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "config/config.hpp"

namespace mephisto {

std::string encode_int64(int64_t v);       // 8 bytes big-endian (Kafka's LongSerializer)
int64_t decode_int64(std::string_view b);  // b must be 8 bytes
// Checks that `value` is a valid encoding for `codec`.
Status validate_value(ValueCodec codec, std::string_view value);
const char* codec_name(ValueCodec codec);

}  // namespace mephisto
