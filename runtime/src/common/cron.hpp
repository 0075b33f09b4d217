#pragma once
// Cron schedules for timers (`cron: "*/5 9-17 * * mon-fri"`, with a `timezone:`), the five fields of crontab(5):
// minute hour day-of-month month day-of-week, each `*`, a number, a range `a-b`, a list `a,b`, and a step
// `*/n` or `a-b/n`; months and days may be named (jan, mon). As in cron, when both day fields are restricted a
// day matches either. Local times come from ICU's time zone database, so daylight saving is handled: a time
// skipped by a spring-forward never fires, and one repeated by a fall-back fires once.
#include <bitset>
#include <optional>
#include <chrono>
#include <string>

#include "common/result.hpp"

namespace mephisto {

class CronSchedule {
public:
    // Errors say which field is wrong and why.
    static Result<CronSchedule> parse(const std::string& expression);
    // Whether `zone` is a time zone ICU knows ("UTC", "Europe/Paris", ...).
    static bool known_zone(const std::string& zone);

    // The first minute strictly after `after` that matches, in `zone`; nullopt when none within 5 years.
    std::optional<std::chrono::system_clock::time_point> next_after(std::chrono::system_clock::time_point after,
                                                                    const std::string& zone) const;
    const std::string& expression() const { return expression_; }

private:
    std::string expression_;
    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;    // 1..31
    std::bitset<13> months_;  // 1..12
    std::bitset<7> weekdays_; // 0 = Sunday
    bool days_restricted_ = false, weekdays_restricted_ = false;
};

}  // namespace mephisto
