// Clicks per URL per minute. Each click is a JSON object {"url": ..., "ts": milliseconds}; the host takes each
// click's time from `ts` (relative_to in the YAML) and keeps one count per URL and minute in the windowed
// table `clicks`. When a minute is over (stream time past its end plus the
// 10 s grace period) the host hands each URL's final count to on_window_close, once.
#include <ctime>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <mephisto/mephisto.hpp>

namespace {

// "2026-11-25 10:42" (UTC) for a window start.
std::string minute_of(int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &utc);
    return text;
}

}  // namespace

struct CountClicks {
    mephisto::Table clicks;
    explicit CountClicks(mephisto::Context& ctx) : clicks(ctx.table("clicks")) {}

    void on_event(mephisto::Context&, const mephisto::Event& click) {
        const auto json = nlohmann::json::parse(click.value());  // the topic is `value: json`: it parses
        const auto url = json.find("url");
        if (url == json.end() || !url->is_string()) throw std::invalid_argument("a click needs a \"url\" string");
        clicks.add(url->get<std::string>());  // +1 in the click's minute (a click after its minute closed: dropped)
    }

    void on_window_close(mephisto::Context& ctx, std::string_view, std::string_view url, mephisto::Window minute,
                         std::string_view count) {
        const int64_t n = mephisto::decode_int64(count).value_or(0);
        ctx.log_info(url, ": ", n, " click(s) in the minute of ", minute_of(minute.start_ms), " UTC");
        const nlohmann::json record = {
            {"url", url}, {"minute", minute_of(minute.start_ms)}, {"start", minute.start_ms}, {"count", n}};
        ctx.emit(record.dump(), url);
    }
};

MEPHISTO_PLUGIN("windowed_clicks", "1.0.0", mephisto::description("clicks per URL per minute, in tumbling windows"),
                mephisto::agent<CountClicks>("count", "counts clicks per URL per minute; reports each final count"));
