// Cron schedules of timers (common/cron.hpp): crontab(5) fields, named months and days, the day-of-month /
// day-of-week rule, and local time in a time zone, daylight saving included.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <ctime>

#include "common/cron.hpp"

using namespace mephisto;
using std::chrono::system_clock;

namespace {

// A UTC time from its fields.
system_clock::time_point utc(int year, int month, int day, int hour, int minute) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    return system_clock::from_time_t(timegm(&tm));
}

std::string show(std::optional<system_clock::time_point> t) {
    if (!t) return "none";
    const std::time_t s = system_clock::to_time_t(*t);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
    return text;
}

std::string next(const std::string& expr, system_clock::time_point after, const std::string& zone = "UTC") {
    auto s = CronSchedule::parse(expr);
    REQUIRE_MESSAGE(s, (s ? "" : s.error()));
    return show(s->next_after(after, zone));
}

}  // namespace

TEST_CASE("fields: every n, ranges, lists and names") {
    const auto t = utc(2026, 11, 25, 10, 7);  // a Wednesday
    CHECK(next("*/15 * * * *", t) == "2026-11-25 10:15");
    CHECK(next("* * * * *", t) == "2026-11-25 10:08");  // strictly after
    CHECK(next("0 9-17 * * *", t) == "2026-11-25 11:00");
    CHECK(next("30 8,20 * * *", t) == "2026-11-25 20:30");
    CHECK(next("0 0 1 jan *", t) == "2027-01-01 00:00");
    CHECK(next("0 12 * * sat", t) == "2026-11-28 12:00");
    CHECK(next("0 12 * * 7", t) == "2026-11-29 12:00");  // 7 is Sunday too
    CHECK(next("5/20 * * * *", t) == "2026-11-25 10:25");
    CHECK(next("0 0 29 2 *", t) == "2028-02-29 00:00");   // the next leap day
}

TEST_CASE("both day fields restricted: either one matches, as in crontab(5)") {
    const auto t = utc(2026, 11, 25, 10, 7);
    CHECK(next("0 0 1 * mon", t) == "2026-11-30 00:00");  // Monday the 30th comes before the 1st
    CHECK(next("0 0 1 * *", t) == "2026-12-01 00:00");
}

TEST_CASE("local time in a time zone, across daylight saving") {
    // 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
    CHECK(next("0 9 * * *", utc(2026, 11, 25, 10, 0), "Europe/Paris") == "2026-11-26 08:00");
    CHECK(next("0 9 * * *", utc(2026, 7, 1, 0, 0), "Europe/Paris") == "2026-07-01 07:00");
    // 2026-03-29: clocks in Paris go from 02:00 to 03:00; 02:30 does not exist that day.
    CHECK(next("30 2 * * *", utc(2026, 3, 28, 12, 0), "Europe/Paris") == "2026-03-30 00:30");
    // 2026-10-25: 02:30 happens twice in Paris; it fires once, at the first.
    CHECK(next("30 2 * * *", utc(2026, 10, 24, 12, 0), "Europe/Paris") == "2026-10-25 00:30");
    CHECK(next("30 2 * * *", utc(2026, 10, 25, 0, 30), "Europe/Paris") == "2026-10-26 01:30");
    CHECK(CronSchedule::known_zone("America/New_York"));
    CHECK_FALSE(CronSchedule::known_zone("Mars/Olympus_Mons"));
}

TEST_CASE("malformed expressions say which field and why") {
    auto error = [](const std::string& expr) {
        auto s = CronSchedule::parse(expr);
        REQUIRE_FALSE(s);
        return s.error();
    };
    CHECK(error("* * * *").find("has 4") != std::string::npos);
    CHECK(error("61 * * * *").find("the minute field has 61, outside 0-59") != std::string::npos);
    CHECK(error("* * * foo *").find("the month field has 'foo'") != std::string::npos);
    CHECK(error("* 5-1 * * *").find("backwards") != std::string::npos);
    CHECK(error("*/0 * * * *").find("step") != std::string::npos);
    // Found by the fuzzer (fuzz/cron_fuzz.cpp): a number too large for an int threw std::out_of_range, which
    // took down the host reading the pipeline file.
    CHECK(error("0 8888888888880 29 feb *").find("the hour field has 8888888888880, outside 0-23") != std::string::npos);
    CHECK(error("*/99999999999 * * * *").find("outside 1-60") != std::string::npos);
}

TEST_CASE("the day after a spring-forward is not skipped, and a day field starting with * is unrestricted") {
    // 2026-03-29 is a 23-hour Sunday in Paris: Monday midnight (Sunday 22:00 UTC) still comes.
    CHECK(next("0 0 * * mon", utc(2026, 3, 29, 0, 30), "Europe/Paris") == "2026-03-29 22:00");
    // In New York, 2026-03-08 is the short day; April 1 midnight is 04:00 UTC.
    CHECK(next("0 0 1 * *", utc(2026, 3, 8, 12, 0), "America/New_York") == "2026-04-01 04:00");
    // "*/2" in the day of month is unrestricted for the OR rule: both day fields must match.
    CHECK(next("0 0 */2 * mon", utc(2026, 11, 25, 10, 7)) == "2026-12-07 00:00");  // an odd day that is a Monday
}
