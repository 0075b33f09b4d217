// The plugin loader against real shared objects (fixtures/): every refusal gives "<path>: <reason>" with the
// exact reason, nothing stays mapped after a refusal, the host keeps loading good plugins afterwards, and
// unload really unmaps the image (RELIABILITY.md 14, DESIGN.md plugin ABI).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>

#include "engine/agent_context.hpp"
#include "plugin/plugin.hpp"

#ifndef MEPHISTO_ABI_FIXTURE_DIR
#error "MEPHISTO_ABI_FIXTURE_DIR must name the folder of the built fixtures"
#endif

namespace fs = std::filesystem;
using mephisto::load_plugin;
using mephisto::Plugin;

namespace {

const fs::path kFixtures = MEPHISTO_ABI_FIXTURE_DIR;

fs::path fixture(const std::string& name) { return kFixtures / (name + ".so"); }

std::string host_version() {
    return std::to_string(MPH_ABI_VERSION_MAJOR) + "." + std::to_string(MPH_ABI_VERSION_MINOR);
}

using mephisto::test::TempDir;

// How many images the dynamic loader has mapped whose file name ends in `suffix`. The loader maps private
// copies named "<n>-<file>", so "-good.so" counts the loaded instances of good.so, independently of what
// Plugin::unload itself checks.
int mapped_images(const std::string& suffix) {
    struct Count {
        std::string suffix;
        int n = 0;
    } count{suffix};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            auto* c = static_cast<Count*>(data);
            std::string_view name = info->dlpi_name ? info->dlpi_name : "";
            if (name.ends_with(c->suffix)) ++c->n;
            return 0;
        },
        &count);
    return count.n;
}

// The loader's folder of private copies (plugin_loader.cpp): must be empty once load_plugin returns.
// What the loader left of its private copies: each load copies into <TMPDIR>/mephisto-<uid>/<pid>-XXXXXX.
size_t private_copies_left() {
    const char* tmp = std::getenv("TMPDIR");
    const fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") / ("mephisto-" + std::to_string(::geteuid()));
    const std::string mine = std::to_string(::getpid()) + "-";
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().filename().string().rfind(mine, 0) == 0) ++n;
    return n;
}

// Loads `path`, expects a refusal with exactly "<path>: <reason>", and checks nothing of it stays behind.
void expect_refusal(const fs::path& path, const std::string& reason) {
    CAPTURE(path);
    auto p = load_plugin(path, mephisto::host_api());
    REQUIRE_FALSE(p.ok());
    CHECK(p.error() == path.string() + ": " + reason);
    CHECK(mapped_images("-" + path.filename().string()) == 0);  // a refused image is unmapped again
    CHECK(private_copies_left() == 0);                           // and its private copy is gone
}

// The host stays usable: a good plugin loads, works and unloads after whatever happened before.
void expect_good_still_loads() {
    auto p = load_plugin(fixture("good"), mephisto::host_api());
    REQUIRE_MESSAGE(p.ok(), p.error());
    CHECK((*p)->name() == "good");
    CHECK(mapped_images("-good.so") == 1);
    auto st = (*p)->unload();
    CHECK_MESSAGE(st.ok(), (st.ok() ? "" : st.error()));
    CHECK(mapped_images("-good.so") == 0);
}

void copy_with_mode(const fs::path& from, const fs::path& to, fs::perms mode) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, mode, fs::perm_options::replace);
}

constexpr fs::perms kMode755 = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec;

}  // namespace

TEST_CASE("loader: the fixtures were built") {
    for (const char* name : {"missing_entry", "wrong_major", "newer_minor", "null_descriptor", "short_struct",
                             "failing_init", "good", "throws", "not_elf"}) {
        CAPTURE(name);
        CHECK(fs::is_regular_file(fixture(name)));
    }
    REQUIRE(MPH_ABI_VERSION_MAJOR == 1);  // the fixtures are built for major 1 (wrong_major says 2)
}

// ---------------------------------------------------------------------------------------------------------
// Refusals: the exact reason, then a good plugin still loads
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("loader: an entry function that is not exported") {
    expect_refusal(fixture("missing_entry"),
                   "no entry symbol 'mephisto_plugin_entry' (export it with MPH_EXPORT, or build with "
                   "mephisto_add_plugin)");
    expect_good_still_loads();
}

TEST_CASE("loader: a different ABI major") {
    expect_refusal(fixture("wrong_major"),
                   "built for ABI 2.0, this host implements ABI " + host_version() +
                       ": a different major version is incompatible; rebuild the plugin against this SDK");
    expect_good_still_loads();
}

TEST_CASE("loader: a newer ABI minor") {
    const std::string newer = "1." + std::to_string(MPH_ABI_VERSION_MINOR + 1);
    expect_refusal(fixture("newer_minor"), "built for ABI " + newer + ", newer than this host's ABI " + host_version() +
                                               ": upgrade the host or rebuild the plugin against ABI " + host_version());
    expect_good_still_loads();
}

TEST_CASE("loader: an entry function that returns NULL with its own reason") {
    expect_refusal(fixture("null_descriptor"), "the plugin refused to load: this plugin refuses to load");
    expect_good_still_loads();
}

TEST_CASE("loader: a descriptor shorter than ABI 1.0's") {
    // The fixture's struct_size ends right after abi_minor; 1.0 needs every member up to and including fini.
    const size_t declared = offsetof(mph_plugin_descriptor, name);
    // 1.0 defines every member up to fini; 1.2 appended the codecs and aggregators after it.
    CHECK(mephisto::kPluginDescriptorMinSize == offsetof(mph_plugin_descriptor, codecs));
    expect_refusal(fixture("short_struct"), "plugin descriptor too short: struct_size " + std::to_string(declared) +
                                                ", ABI 1.0 needs at least " +
                                                std::to_string(mephisto::kPluginDescriptorMinSize) + " bytes");
    expect_good_still_loads();
}

TEST_CASE("loader: an init that fails") {
    REQUIRE(MPH_FATAL == 2);
    expect_refusal(fixture("failing_init"), "init failed: database unreachable (status 2)");
    expect_good_still_loads();
}

TEST_CASE("loader: a file that is not an ELF shared object") {
    expect_refusal(fixture("not_elf"), "not an ELF shared object");
    expect_good_still_loads();
}

TEST_CASE("loader: a path that does not exist") {
    expect_refusal(kFixtures / "no_such_plugin.so", "cannot open: No such file or directory");
    expect_good_still_loads();
}

TEST_CASE("loader: a folder is not a plugin") {
    TempDir tmp;
    fs::create_directories(tmp.path() / "dir.so");
    expect_refusal(tmp.path() / "dir.so", "not a regular file");
    expect_good_still_loads();
}

TEST_CASE("loader: an empty file") {
    TempDir tmp;
    std::ofstream(tmp.path() / "empty.so").flush();
    expect_refusal(tmp.path() / "empty.so", "not an ELF shared object");
    expect_good_still_loads();
}

TEST_CASE("loader: a file other users may write is refused, the same file with safe permissions loads") {
    TempDir tmp;
    const fs::path copy = tmp.path() / "shared.so";

    copy_with_mode(fixture("good"), copy, kMode755 | fs::perms::group_write);
    expect_refusal(copy, "refused: the plugin " + copy.string() + " is writable by its group (mode 0775); fix: chmod go-w " +
                             copy.string());
    expect_good_still_loads();

    copy_with_mode(fixture("good"), copy, kMode755 | fs::perms::others_write);
    expect_refusal(copy, "refused: the plugin " + copy.string() + " is writable by every user (mode 0757); fix: chmod go-w " +
                             copy.string());

    fs::permissions(copy, kMode755, fs::perm_options::replace);
    auto p = load_plugin(copy, mephisto::host_api());
    REQUIRE_MESSAGE(p.ok(), p.error());
    CHECK((*p)->name() == "good");
    CHECK((*p)->unload().ok());
}

TEST_CASE("loader: a truncated shared object: the dynamic loader's reason names the user's file, not the private copy") {
    TempDir tmp;
    const fs::path broken = tmp.path() / "truncated.so";
    {
        std::ifstream in(fixture("good"), std::ios::binary);
        std::string head(64, '\0');  // the ELF header alone: right magic, nothing to map
        REQUIRE(in.read(head.data(), static_cast<std::streamsize>(head.size())));
        std::ofstream(broken, std::ios::binary) << head;
    }
    fs::permissions(broken, kMode755, fs::perm_options::replace);
    auto p = load_plugin(broken, mephisto::host_api());
    REQUIRE_FALSE(p.ok());
    const std::string prefix = broken.string() + ": cannot load: " + broken.string() + ": ";
    CHECK_MESSAGE(p.error().rfind(prefix, 0) == 0, p.error());
    CHECK(p.error().size() > prefix.size());  // dlerror's own reason follows
    CHECK(p.error().find("/mephisto-" + std::to_string(::geteuid()) + "/") == std::string::npos);  // no private copy named
    CHECK(private_copies_left() == 0);
    expect_good_still_loads();
}

TEST_CASE("loader: every refusal in a row, then a good plugin") {
    for (const char* name : {"missing_entry", "wrong_major", "newer_minor", "null_descriptor", "short_struct",
                             "failing_init", "not_elf"}) {
        CAPTURE(name);
        auto p = load_plugin(fixture(name), mephisto::host_api());
        CHECK_FALSE(p.ok());
    }
    for (const char* name : {"missing_entry", "wrong_major", "newer_minor", "null_descriptor", "short_struct",
                             "failing_init"})
        CHECK(mapped_images(std::string("-") + name + ".so") == 0);
    expect_good_still_loads();
}

// ---------------------------------------------------------------------------------------------------------
// Good plugins
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("loader: good.so loads with its name, agents, params and callbacks as declared") {
    const fs::path path = fixture("good");
    auto loaded = load_plugin(path, mephisto::host_api());
    REQUIRE_MESSAGE(loaded.ok(), loaded.error());
    std::shared_ptr<Plugin> p = *loaded;
    CHECK(p->name() == "good");
    CHECK(p->version() == "1.0.0");
    CHECK(p->description() == "a valid C plugin for the loader tests");
    CHECK(p->path() == path);
    CHECK(p->abi_major() == 1);
    CHECK(p->abi_minor() == MPH_ABI_VERSION_MINOR);  // built against this SDK

    REQUIRE(p->agents().size() == 1);
    const mephisto::AgentInfo& echo = p->agents()[0];
    CHECK(echo.name == "echo");
    CHECK(echo.description == "forwards every event to its sinks");
    REQUIRE(echo.params.size() == 1);
    CHECK(echo.params[0].name == "log_events");
    CHECK(echo.params[0].description == "\"true\": log the topic, partition and offset of every event");
    CHECK(echo.params[0].default_value == std::optional<std::string>("false"));
    CHECK_FALSE(echo.params[0].required);

    CHECK((echo.callbacks.create != nullptr));
    CHECK((echo.callbacks.destroy != nullptr));
    CHECK((echo.callbacks.on_event != nullptr));
    CHECK((echo.callbacks.on_batch == nullptr));
    CHECK((echo.callbacks.on_timer == nullptr));
    CHECK((echo.callbacks.on_assigned == nullptr));
    CHECK((echo.callbacks.on_revoked == nullptr));
    // The image's strings are not kept (they die with the image); the host owns copies.
    CHECK((echo.callbacks.name == nullptr));
    CHECK((echo.callbacks.description == nullptr));
    CHECK((echo.callbacks.params == nullptr));
    CHECK(echo.callbacks.param_count == 1);

    CHECK(p->find_agent("echo") == &echo);
    CHECK(p->find_agent("ech") == nullptr);
    CHECK(p->find_agent("") == nullptr);

    // The callbacks are live code in the image, talking to the host table: create an instance and give it an
    // event. Without a pipeline, forward() answers MPH_ERR_INVALID, which echo reports as a fatal verdict.
    mph_agent_ctx ctx;
    ctx.agent_name = "echo";
    void* instance = nullptr;
    REQUIRE(echo.callbacks.create(&ctx, &instance) == MPH_OK);
    CHECK(instance != nullptr);
    mph_event event{};
    event.struct_size = sizeof event;
    event.topic = "orders";
    event.offset = 7;
    event.timestamp_ms = -1;
    CHECK(echo.callbacks.on_event(instance, &ctx, &event) == MPH_FATAL);
    CHECK(ctx.error == "echo: forward failed (does the agent have sinks?)");
    echo.callbacks.destroy(instance);

    CHECK(mapped_images("-good.so") == 1);
}

TEST_CASE("loader: unload of good.so succeeds and really unmaps the image, unload is idempotent") {
    auto p = load_plugin(fixture("good"), mephisto::host_api());
    REQUIRE_MESSAGE(p.ok(), p.error());
    CHECK(mapped_images("-good.so") == 1);
    auto st = (*p)->unload();
    CHECK_MESSAGE(st.ok(), (st.ok() ? "" : st.error()));
    CHECK(mapped_images("-good.so") == 0);
    CHECK((*p)->unload().ok());  // a second unload does nothing
    CHECK(mapped_images("-good.so") == 0);
    CHECK((*p)->name() == "good");  // the host's copies outlive the image
    CHECK((*p)->agents().at(0).name == "echo");
}

TEST_CASE("loader: dropping the last reference unloads the image") {
    {
        auto p = load_plugin(fixture("good"), mephisto::host_api());
        REQUIRE_MESSAGE(p.ok(), p.error());
        CHECK(mapped_images("-good.so") == 1);
    }
    CHECK(mapped_images("-good.so") == 0);
}

TEST_CASE("loader: loading the same file twice gives two independent images") {
    auto a = load_plugin(fixture("good"), mephisto::host_api());
    auto b = load_plugin(fixture("good"), mephisto::host_api());
    REQUIRE_MESSAGE(a.ok(), a.error());
    REQUIRE_MESSAGE(b.ok(), b.error());
    CHECK(mapped_images("-good.so") == 2);
    const auto& ea = (*a)->agents().at(0).callbacks;
    const auto& eb = (*b)->agents().at(0).callbacks;
    CHECK((ea.on_event != eb.on_event));  // different code addresses: two mappings, not one shared
    CHECK((ea.create != eb.create));

    REQUIRE((*a)->unload().ok());
    CHECK(mapped_images("-good.so") == 1);

    // The second image is untouched by the first one's unload: its code still runs.
    mph_agent_ctx ctx;
    void* instance = nullptr;
    REQUIRE(eb.create(&ctx, &instance) == MPH_OK);
    mph_event event{};
    event.struct_size = sizeof event;
    event.topic = "t";
    CHECK(eb.on_event(instance, &ctx, &event) == MPH_FATAL);
    CHECK(ctx.error == "echo: forward failed (does the agent have sinks?)");
    eb.destroy(instance);

    REQUIRE((*b)->unload().ok());
    CHECK(mapped_images("-good.so") == 0);
}

TEST_CASE("loader: a file replaced under the same name loads as the new image (private copies defeat dlopen's cache)") {
    TempDir tmp;
    const fs::path path = tmp.path() / "plugin.so";
    copy_with_mode(fixture("good"), path, kMode755);
    auto first = load_plugin(path, mephisto::host_api());
    REQUIRE_MESSAGE(first.ok(), first.error());
    CHECK((*first)->name() == "good");

    copy_with_mode(fixture("throws"), path, kMode755);  // a rebuild, while the old version is still loaded
    auto second = load_plugin(path, mephisto::host_api());
    REQUIRE_MESSAGE(second.ok(), second.error());
    CHECK((*second)->name() == "throws");
    CHECK((*first)->name() == "good");
    CHECK(mapped_images("-plugin.so") == 2);

    CHECK((*first)->unload().ok());
    CHECK((*second)->unload().ok());
    CHECK(mapped_images("-plugin.so") == 0);
}

TEST_CASE("loader: the C++ throws.so loads and unloads cleanly (built with -fno-gnu-unique)") {
    auto p = load_plugin(fixture("throws"), mephisto::host_api());
    REQUIRE_MESSAGE(p.ok(), p.error());
    CHECK((*p)->name() == "throws");
    CHECK((*p)->version() == "1.0.0");
    CHECK((*p)->description() == "throws from on_event on offsets ending in 9");
    REQUIRE((*p)->agents().size() == 1);
    CHECK((*p)->agents()[0].name == "thrower");
    CHECK(((*p)->agents()[0].callbacks.on_event != nullptr));
    CHECK(mapped_images("-throws.so") == 1);

    auto st = (*p)->unload();
    CHECK_MESSAGE(st.ok(), (st.ok() ? "" : st.error()));  // a gnu-unique symbol would keep the image mapped
    CHECK(mapped_images("-throws.so") == 0);
    expect_good_still_loads();
}
