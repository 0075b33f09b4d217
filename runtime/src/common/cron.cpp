#include "common/cron.hpp"

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <sstream>
#include <vector>

namespace mephisto {

namespace {

struct Field {
    const char* name;
    int min, max;
    std::vector<std::string> names;  // names[i] means min + i
};

const Field kFields[5] = {
    {"minute", 0, 59, {}},
    {"hour", 0, 23, {}},
    {"day of month", 1, 31, {}},
    {"month", 1, 12, {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
    {"day of week", 0, 7, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
};

Result<int> value_of(const Field& f, std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    for (size_t i = 0; i < f.names.size(); ++i)
        if (text == f.names[i]) return f.min + static_cast<int>(i);
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
        return make_error(std::string("the ") + f.name + " field has '" + text + "', not a number" +
                          (f.names.empty() ? "" : " or a name"));
    // A field's values have two digits at most: a longer number is out of range (and would overflow an int).
    const int v = text.size() > 4 ? f.max + 1 : std::stoi(text);
    if (v < f.min || v > f.max)
        return make_error(std::string("the ") + f.name + " field has " + text + ", outside " + std::to_string(f.min) +
                          "-" + std::to_string(f.max));
    return v;
}

// Sets the bits `text` selects (a comma-separated list of `*`, `a`, `a-b`, each optionally `/step`).
Status parse_field(const Field& f, const std::string& text, std::vector<bool>& bits, bool& restricted) {
    bits.assign(static_cast<size_t>(f.max + 1), false);
    restricted = text.empty() || text[0] != '*';  // crontab(5): a day field starting with '*' ("*/2") is unrestricted
    std::stringstream items(text);
    for (std::string item; std::getline(items, item, ',');) {
        int step = 1;
        if (auto slash = item.find('/'); slash != std::string::npos) {
            auto s = value_of(Field{f.name, 1, f.max + 1, {}}, item.substr(slash + 1));
            if (!s) return make_error(s.error() + " (a step)");
            step = *s;
            item = item.substr(0, slash);
        }
        int lo, hi;
        if (item == "*") {
            lo = f.min;
            hi = f.max == 7 ? 6 : f.max;  // day of week: 7 is Sunday again
        } else if (auto dash = item.find('-'); dash != std::string::npos) {
            auto a = value_of(f, item.substr(0, dash));
            auto b = value_of(f, item.substr(dash + 1));
            if (!a) return make_error(a.error());
            if (!b) return make_error(b.error());
            lo = *a;
            hi = *b;
            if (lo > hi) return make_error(std::string("the ") + f.name + " field has the range " + item + ", which is backwards");
        } else {
            auto a = value_of(f, item);
            if (!a) return make_error(a.error());
            lo = *a;
            hi = step > 1 ? (f.max == 7 ? 6 : f.max) : *a;  // "a/n": from a to the end, every n
        }
        for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v)] = true;
    }
    return {};
}

struct CalendarCloser {
    void operator()(UCalendar* c) const { ucal_close(c); }
};
using Calendar = std::unique_ptr<UCalendar, CalendarCloser>;

Calendar open_calendar(const std::string& zone) {
    std::vector<UChar> id(zone.size() + 1);
    u_uastrncpy(id.data(), zone.c_str(), static_cast<int32_t>(id.size()));
    UErrorCode status = U_ZERO_ERROR;
    UCalendar* c = ucal_open(id.data(), -1, "en_US", UCAL_GREGORIAN, &status);
    if (U_FAILURE(status)) return nullptr;
    return Calendar(c);
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(const std::string& expression) {
    std::stringstream in(expression);
    std::vector<std::string> parts;
    for (std::string p; in >> p;) parts.push_back(p);
    if (parts.size() != 5)
        return make_error("a cron expression has 5 fields (minute hour day-of-month month day-of-week), '" +
                          expression + "' has " + std::to_string(parts.size()));
    CronSchedule s;
    s.expression_ = expression;
    std::vector<bool> bits;
    bool restricted = false;
    for (int i = 0; i < 5; ++i) {
        if (auto st = parse_field(kFields[i], parts[static_cast<size_t>(i)], bits, restricted); !st)
            return make_error("cron '" + expression + "': " + st.error());
        for (size_t v = 0; v < bits.size(); ++v) {
            if (!bits[v]) continue;
            switch (i) {
                case 0: s.minutes_.set(v); break;
                case 1: s.hours_.set(v); break;
                case 2: s.days_.set(v); break;
                case 3: s.months_.set(v); break;
                case 4: s.weekdays_.set(v % 7); break;
            }
        }
        if (i == 2) s.days_restricted_ = restricted;
        if (i == 4) s.weekdays_restricted_ = restricted;
    }
    return s;
}

bool CronSchedule::known_zone(const std::string& zone) {
    std::vector<UChar> id(zone.size() + 1), canonical(128);
    u_uastrncpy(id.data(), zone.c_str(), static_cast<int32_t>(id.size()));
    UErrorCode status = U_ZERO_ERROR;
    UBool system = false;
    ucal_getCanonicalTimeZoneID(id.data(), -1, canonical.data(), static_cast<int32_t>(canonical.size()), &system, &status);
    return U_SUCCESS(status) && system;
}

std::optional<std::chrono::system_clock::time_point> CronSchedule::next_after(std::chrono::system_clock::time_point after,
                                                                              const std::string& zone) const {
    Calendar cal = open_calendar(zone);
    if (!cal) return std::nullopt;
    using namespace std::chrono;
    int64_t t = (duration_cast<minutes>(after.time_since_epoch()).count() + 1) * 60'000;  // the next whole minute
    const int64_t limit = t + int64_t{5} * 366 * 24 * 3600 * 1000;
    struct Local {
        int minute, hour, day, month, weekday;
        int64_t offset;  // from UTC, ms, daylight saving included
        bool operator==(const Local& o) const {
            return minute == o.minute && hour == o.hour && day == o.day && month == o.month;
        }
    };
    auto local = [&](int64_t at) -> std::optional<Local> {
        UErrorCode status = U_ZERO_ERROR;
        ucal_setMillis(cal.get(), static_cast<UDate>(at), &status);
        Local l{ucal_get(cal.get(), UCAL_MINUTE, &status), ucal_get(cal.get(), UCAL_HOUR_OF_DAY, &status),
                ucal_get(cal.get(), UCAL_DATE, &status),
                ucal_get(cal.get(), UCAL_MONTH, &status) + 1,        // ICU months start at 0
                ucal_get(cal.get(), UCAL_DAY_OF_WEEK, &status) - 1,  // ICU: Sunday = 1
                int64_t{ucal_get(cal.get(), UCAL_ZONE_OFFSET, &status)} + ucal_get(cal.get(), UCAL_DST_OFFSET, &status)};
        if (U_FAILURE(status)) return std::nullopt;
        return l;
    };
    while (t < limit) {
        const auto here = local(t);
        if (!here) return std::nullopt;
        const auto [minute, hour, day, month, weekday, offset] = *here;
        // A day matches on day-of-month or day-of-week: on both when both are restricted (crontab(5)).
        const bool by_day = days_.test(static_cast<size_t>(day)), by_weekday = weekdays_.test(static_cast<size_t>(weekday));
        const bool day_ok = days_restricted_ && weekdays_restricted_ ? (by_day || by_weekday) : (by_day && by_weekday);
        if (!months_.test(static_cast<size_t>(month)) || !day_ok) {
            // Towards the next local midnight, never past it: a day may have 23 or 25 hours. Far from midnight,
            // jump to an hour before it; near it, hour by hour.
            const int64_t to_midnight = 1440 - hour * 60 - minute;
            t += (to_midnight > 120 ? to_midnight - 60 : 60 - minute) * int64_t{60'000};
        } else if (!hours_.test(static_cast<size_t>(hour))) {
            t += int64_t{60 - minute} * 60'000;
        } else if (!minutes_.test(static_cast<size_t>(minute))) {
            t += 60'000;
        } else {
            // Clocks set back (the end of daylight saving) repeat an hour: fire at its first occurrence only.
            if (auto before = local(t - 3 * 3600 * 1000); before && before->offset > offset)
                if (auto first = local(t - (before->offset - offset)); first && *first == *here) {
                    t += 60'000;
                    continue;
                }
            return system_clock::time_point(milliseconds(t));
        }
    }
    return std::nullopt;
}

}  // namespace mephisto
