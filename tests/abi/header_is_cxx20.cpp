// Compiled with -std=c++20 -Wall -Wextra -pedantic -Werror -fsyntax-only (ctest abi.header_is_cxx20).
// The C header must compile as C++ too, and the C++ SDK headers must stay pedantic-clean, including the
// templates, which is why this instantiates a complete agent and a driver for it.
#include <mephisto/mephisto.h>
#include <mephisto/mephisto.hpp>
#include <mephisto/testing.hpp>

#include <string_view>

static_assert(std::is_standard_layout_v<mph_event> && std::is_trivially_copyable_v<mph_event>);
static_assert(std::is_standard_layout_v<mph_host_api> && std::is_trivially_copyable_v<mph_host_api>);
static_assert(std::is_standard_layout_v<mph_plugin_descriptor>);
static_assert(mephisto::status_name(MPH_ERR_FULL) == "MPH_ERR_FULL");

namespace {

struct EveryCallback {
    explicit EveryCallback(mephisto::Context& ctx) : prefix(ctx.param_or("prefix", "")) {}
    mph_status on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        ctx.emit({.value = event.value(), .key = event.key()});
        return MPH_OK;
    }
    void on_batch(mephisto::Context& ctx, mephisto::Batch batch) { ctx.log_debug(batch.size(), prefix); }
    void on_timer(mephisto::Context& ctx, std::string_view timer, int64_t now_ms) {
        ctx.send("topic", timer, std::nullopt, static_cast<int32_t>(now_ms % 4));
    }
    void on_assigned(mephisto::Context& ctx, int32_t partition) { ctx.log_info("assigned ", partition); }
    mph_status on_revoked(mephisto::Context&, int32_t) { return MPH_OK; }
    std::string_view prefix;
};

} // namespace

MEPHISTO_PLUGIN("cxx20", "1.0.0", mephisto::agent<EveryCallback>("every", "all callbacks", {{.name = "prefix"}}));

int main() {
    mephisto::testing::AgentDriver driver(mephisto_plugin_entry, "every", {}, {.sinks = {"out"}});
    return driver.send("value") == MPH_OK ? 0 : 1;
}
