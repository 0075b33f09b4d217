// Faust's tutorial "count page views" in Mephisto: page views arrive as JSON on `page_views`, the host
// re-keys them by their `id` (group_by in the YAML), and the agent counts each page in the host-owned table
// `page_views`. The table survives crashes (changelog + RocksDB), so the agent keeps no state of its own.
#include <mephisto/mephisto.hpp>

struct CountPageViews {
    mephisto::Table views;
    explicit CountPageViews(mephisto::Context& ctx) : views(ctx.table("page_views")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& view) {
        const auto page = view.key().value_or("");  // the page id: the host re-keyed the stream by it
        ctx.log_info("page ", page, " viewed ", views.add(page), " time(s)");
    }
};

MEPHISTO_PLUGIN("page_views", "1.0.0", mephisto::description("Faust's tutorial: count page views by page id"),
                mephisto::agent<CountPageViews>("count", "counts views per page in the table page_views"));
