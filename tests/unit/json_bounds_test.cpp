// JSON from outside is bounded before anything recursive touches it (common/json_bounds.hpp, issue 11).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"

using namespace mephisto;

namespace {

std::string nested(size_t depth, char open = '[', char close = ']') {
    return std::string(depth, open) + std::string(depth, close);
}

}  // namespace

TEST_CASE("json_depth: counts the deepest nesting of arrays and objects") {
    CHECK(json_depth("1") == 0);
    CHECK(json_depth("\"text\"") == 0);
    CHECK(json_depth("[]") == 1);
    CHECK(json_depth("{\"a\": [1, {\"b\": []}], \"c\": {}}") == 4);
    CHECK(json_depth(nested(512)) == 512);
}

TEST_CASE("json_depth: brackets inside strings, escaped quotes included, do not count") {
    CHECK(json_depth("[\"[[[[{{{{\"]") == 1);
    CHECK(json_depth("[\"a \\\" [[[[ \\\\\", [\"x\"]]") == 2);  // "a \" [[[[ \\" then ["x"]
    CHECK(json_depth("\"unterminated [[[[") == 0);
}

TEST_CASE("json_depth: stops reading past the limit, and unbalanced text gets a number all the same") {
    CHECK(json_depth(nested(100'000), 512) == 513);
    CHECK(json_depth(std::string(100'000, '['), 10) == 11);
    CHECK(json_depth("]]]][") == 1);
    CHECK_FALSE(json_depth_error(nested(512)).has_value());
    REQUIRE(json_depth_error(nested(513)).has_value());
    CHECK(*json_depth_error(nested(513)) == "nested deeper than 512 levels");
}

TEST_CASE("parse_json_bounded: parses within the bound, discards what is deeper or not JSON") {
    CHECK(parse_json_bounded("{\"a\": [1, 2]}")["a"][1] == 2);
    CHECK(parse_json_bounded(nested(512, '[', ']')).is_array());
    CHECK(parse_json_bounded(nested(513)).is_discarded());
    CHECK(parse_json_bounded(nested(100'000)).is_discarded());
    CHECK(parse_json_bounded("{\"a\": ").is_discarded());
}

TEST_CASE("json_field_key: a string's content, anything else as compact JSON") {
    CHECK(*json_field_key("{\"id\": \"user-1\", \"n\": 2}", "id") == "user-1");
    CHECK(*json_field_key("{\"id\": 42}", "id") == "42");
    CHECK(*json_field_key("{\"id\": {\"b\": 1,  \"a\": [true]}}", "id") == "{\"a\":[true],\"b\":1}");
    CHECK(json_field_key("{\"id\": \"\"}", "id").value().empty());
}

TEST_CASE("json_field_key: each refusal says why") {
    CHECK(json_field_key("{\"other\": 1}", "id").error() == "the value has no field 'id'");
    CHECK(json_field_key("{\"id\": null}", "id").error() == "the value has no field 'id'");
    CHECK(json_field_key("[1, 2]", "id").error() == "the value is not a JSON object");
    CHECK(json_field_key("{\"id\": ", "id").error() == "the value is not a JSON object");
    CHECK(json_field_key("{\"id\": " + nested(100'000) + "}", "id").error() == "the value is nested deeper than 512 levels");
}
