// Faust's front-page example in Mephisto:
//
//     @app.agent(clicks_topic)
//     async def count_click(clicks):
//         async for click in clicks.group_by(Click.url):
//             click_counts[click.url] += click.count
//
// Clicks arrive as JSON on `clicks`; the host re-keys them by their `url` (`group_by: {field: url}` in the
// YAML), so the event key here is the url, and the agent adds the click's "count" (1 when absent) to the
// url's entry in the host-owned int64 table `click_counts`. It logs a url each time its total reaches or
// passes a multiple of 10, not every click.
#include <mephisto/mephisto.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace {

struct CountClick {
    static constexpr int64_t kLogEvery = 10;

    mephisto::Table click_counts;
    explicit CountClick(mephisto::Context& ctx) : click_counts(ctx.table("click_counts")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& click) {
        const std::string_view url = click.key().value_or("");  // the host re-keyed the stream by url
        // `clicks` is `value: json` and the group_by already parsed it, so this parse only fails on a bug.
        const auto json = nlohmann::json::parse(click.value(), nullptr, /*allow_exceptions=*/false);
        int64_t count = 1;
        if (json.is_object()) {
            const auto field = json.find("count");
            if (field != json.end() && !field->is_null()) {
                if (!field->is_number_integer())
                    throw mephisto::Error("click has a non-integer \"count\": " + std::string(click.value()));
                count = field->get<int64_t>();
            }
        }
        const int64_t total = click_counts.add(url, count);
        // Log when the total reaches or passes a multiple of 10 (a click may carry a count larger than one).
        if (total / kLogEvery != (total - count) / kLogEvery) ctx.log_info(url, " ", total, " clicks");
    }
};

}  // namespace

MEPHISTO_PLUGIN("click_counter", "1.0.0", mephisto::description("Faust's front-page example: count clicks per url"),
                mephisto::agent<CountClick>("count", "adds each click's count (default 1) to click_counts[url]"));
