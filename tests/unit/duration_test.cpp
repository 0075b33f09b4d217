// Durations as users write them in YAML and on the command line (common/duration.hpp).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "common/duration.hpp"

using mephisto::format_duration;
using mephisto::Millis;
using mephisto::parse_duration;

namespace {

Millis parsed(const std::string& text) {
    auto d = parse_duration(text);
    REQUIRE_MESSAGE(d.ok(), text << ": " << d.error());
    return *d;
}

std::string error_of(const std::string& text) {
    auto d = parse_duration(text);
    REQUIRE_MESSAGE(!d.ok(), text << " parsed as " << d.value().count() << "ms");
    return d.error();
}

}  // namespace

TEST_CASE("duration: parse_duration: every unit") {
    CHECK(parsed("250ms") == Millis(250));
    CHECK(parsed("10s") == Millis(10'000));
    CHECK(parsed("5m") == Millis(300'000));
    CHECK(parsed("5min") == Millis(300'000));
    CHECK(parsed("1h") == Millis(3'600'000));
    CHECK(parsed("2d") == Millis(172'800'000));
    CHECK(parsed("0ms") == Millis(0));
    CHECK(parsed("0") == Millis(0));
}

TEST_CASE("duration: parse_duration: a bare number is seconds, fractions round to the millisecond") {
    CHECK(parsed("30") == Millis(30'000));
    CHECK(parsed("1.5") == Millis(1'500));
    CHECK(parsed("0.25s") == Millis(250));
    CHECK(parsed("1.5m") == Millis(90'000));
    CHECK(parsed("0.0004s") == Millis(0));
    CHECK(parsed("0.0006s") == Millis(1));
    CHECK(parsed("2.5ms") == Millis(3));  // half away from zero
}

TEST_CASE("duration: parse_duration: refusals say what was wrong") {
    CHECK(error_of("") == "empty duration");
    CHECK(error_of("soon") == "'soon' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    CHECK(error_of("ms") == "'ms' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    CHECK(error_of("-1s") == "'-1s' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    CHECK(error_of("inf") == "'inf' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    CHECK(error_of("nan") == "'nan' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)");
    CHECK(error_of("10x") == "'10x' has an unknown unit 'x' (use ms, s, m, h or d)");
    CHECK(error_of("10 s") == "'10 s' has an unknown unit ' s' (use ms, s, m, h or d)");
    CHECK(error_of("10S") == "'10S' has an unknown unit 'S' (use ms, s, m, h or d)");
    CHECK(error_of("10sec") == "'10sec' has an unknown unit 'sec' (use ms, s, m, h or d)");
    CHECK(error_of("1s500ms") == "'1s500ms' has an unknown unit 's500ms' (use ms, s, m, h or d)");
}

TEST_CASE("duration: parse_duration: a value too large for milliseconds is refused, never wrapped") {
    // 1e20 seconds does not fit in an int64 count of milliseconds; it must not come back negative or as garbage.
    for (std::string text : {"1e20s", "1e17d", "9.3e18ms", "1e300"}) {
        CAPTURE(text);
        auto d = parse_duration(text);
        CHECK_FALSE(d.ok());
        if (!d.ok()) CHECK(d.error().find("too long") != std::string::npos);
    }
    // The largest durations anyone writes still parse.
    CHECK(parsed("3650d") == Millis(3650LL * 86'400'000));
}

TEST_CASE("duration: format_duration picks the largest exact unit") {
    CHECK(format_duration(Millis(0)) == "0s");
    CHECK(format_duration(Millis(1)) == "1ms");
    CHECK(format_duration(Millis(250)) == "250ms");
    CHECK(format_duration(Millis(1'500)) == "1500ms");
    CHECK(format_duration(Millis(1'000)) == "1s");
    CHECK(format_duration(Millis(90'000)) == "90s");
    CHECK(format_duration(Millis(60'000)) == "1m");
    CHECK(format_duration(Millis(5'400'000)) == "90m");
    CHECK(format_duration(Millis(3'600'000)) == "1h");
    CHECK(format_duration(Millis(86'400'000)) == "24h");
}

TEST_CASE("duration: format_duration output parses back to the same value") {
    for (long long ms : {0LL, 1LL, 999LL, 1'000LL, 1'001LL, 59'999LL, 60'000LL, 61'000LL, 3'599'000LL, 3'600'000LL,
                         3'660'000LL, 86'400'000LL, 604'800'000LL, 123'456'789LL}) {
        CAPTURE(ms);
        CHECK(parsed(format_duration(Millis(ms))) == Millis(ms));
    }
}
