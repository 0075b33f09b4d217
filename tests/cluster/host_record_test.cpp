// A host's record on the control topic: what one host writes, every other host reads back the same; and what
// arrives from elsewhere is outside input, refused with a reason when it is not a record.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "cluster/host_record.hpp"

using namespace mephisto;

namespace {

HostRecord sample() {
    HostRecord r;
    r.host = "alpha-12-0f3a";
    r.pipeline = "counts";
    r.admin = "http://127.0.0.1:6066";
    r.member = "rdkafka-6c1f";
    r.instance = "counts-alpha";
    r.active = {{"in", 0, false}, {"in", 3, true}};
    r.standby = {{"totals", 1, 877, 12}, {"totals", 2, -1, -1}};
    r.tables = {{"totals", 0, 1234}, {"totals", 3, -1}};
    r.started_ms = 1'790'000'000'000;
    r.heartbeat_ms = 1'790'000'012'345;
    return r;
}

}  // namespace

TEST_CASE("host record: what one host writes, another reads back whole") {
    const HostRecord r = sample();
    auto back = parse_host_record(r.host, to_json(r));
    REQUIRE(back);
    CHECK(*back == r);
}

TEST_CASE("host record: a host with nothing yet (no admin API, not joined, no partitions) round-trips too") {
    HostRecord r;
    r.host = "beta";
    r.pipeline = "counts";
    auto back = parse_host_record("beta", to_json(r));
    REQUIRE(back);
    CHECK(*back == r);
}

TEST_CASE("host record: a record under another host's key is refused") {
    auto back = parse_host_record("mallory", to_json(sample()));
    REQUIRE_FALSE(back);
    CHECK(back.error().find("names host 'alpha-12-0f3a' under the key 'mallory'") != std::string::npos);
}

TEST_CASE("host record: what is not a record is refused with what is wrong") {
    CHECK(parse_host_record("a", "not json").error() == "not a JSON object");
    CHECK(parse_host_record("a", "[1,2]").error() == "not a JSON object");
    CHECK(parse_host_record("a", R"({"host":"a"})").error().find("no field 'pipeline'") != std::string::npos);
    CHECK(parse_host_record("a", R"({"host":"a","pipeline":"p","admin":"","member":"","heartbeat_ms":"soon","started_ms":0})")
              .error()
              .find("field 'heartbeat_ms' has the wrong type") != std::string::npos);
    std::string bad_partitions = to_json(sample());
    bad_partitions.replace(bad_partitions.find("\"active\":["), 10, "\"active\":[7,");
    CHECK(parse_host_record("alpha-12-0f3a", bad_partitions).error().find("an entry of 'active'") != std::string::npos);
}

TEST_CASE("host record: a record too large or nested too deep is refused before it is parsed") {
    const std::string huge(kMaxHostRecordBytes + 1, ' ');
    CHECK(parse_host_record("a", huge).error().find("more than the") != std::string::npos);
    const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    CHECK(parse_host_record("a", deep).error() == "not a JSON object");
}
