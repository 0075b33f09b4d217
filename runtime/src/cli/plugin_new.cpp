// `mephisto plugin new NAME [--lang c|cpp]`: a plugin project outside this repository, built against the installed
// SDK (find_package(Mephisto): mephisto::sdk and mephisto_add_plugin), with a pipeline file and a test through the
// SDK's test driver (testing.hpp). It builds and passes its test as generated: the agent `upper` emits every value
// upper-cased to its sinks.
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "cli/commands.hpp"

namespace mephisto::cli {
namespace {

constexpr const char* kCMakeLists = R"(# @NAME@: a Mephisto plugin (made by `mephisto plugin new`).
#   cmake -B build && cmake --build build && ctest --test-dir build
# Finds the installed SDK (CMAKE_PREFIX_PATH=<prefix> when it is not under /usr or /usr/local).
cmake_minimum_required(VERSION 3.25)
project(@NAME@ LANGUAGES C CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)

find_package(Mephisto 1.4 REQUIRED)  # the plugin ABI 1.4 or a later 1.x

# build/plugins/@NAME@.so, with the flags hot reload needs (hidden symbols, -fno-gnu-unique).
mephisto_add_plugin(@NAME@ SOURCES src/@NAME@.@EXT@ OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/plugins")

# The test: the plugin's code compiled into it, driven by the SDK's AgentDriver (no broker, no host).
enable_testing()
add_executable(@NAME@_test test/@NAME@_test.cpp src/@NAME@.@EXT@)
target_link_libraries(@NAME@_test PRIVATE mephisto::sdk)
add_test(NAME @NAME@_test COMMAND @NAME@_test)
)";

constexpr const char* kSourceC = R"(/* @NAME@: a Mephisto plugin in C (made by `mephisto plugin new`). Its agent `upper` emits every value it
 * reads upper-cased, under the same key, to the agent's sinks. */
#include <mephisto/mephisto.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mph_host_api* api;  /* the host's functions, given at entry */

static mph_status upper_create(mph_agent_ctx* ctx, void** instance) {
    (void)ctx;
    *instance = NULL;  /* no state of its own */
    return MPH_OK;
}

static mph_status upper_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* event) {
    mph_message out;
    char* text;
    size_t i;
    mph_status status;
    (void)instance;
    if (!event->value) return MPH_OK; /* a tombstone: nothing to upper-case */
    text = malloc(event->value_len ? event->value_len : 1);
    if (!text) return MPH_RETRY;
    for (i = 0; i < event->value_len; ++i) text[i] = (char)toupper(((const unsigned char*)event->value)[i]);
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    out.key = event->key;
    out.key_len = event->key_len;
    out.value = text;
    out.value_len = event->value_len;
    out.partition = MPH_PARTITION_ANY;
    status = api->emit(ctx, &out); /* the host copies the message before it returns */
    free(text);
    return status == MPH_OK ? MPH_OK : MPH_RETRY;
}

static const mph_agent_descriptor upper_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "upper",
    .description = "emits every value upper-cased",
    .create = upper_create,
    .on_event = upper_on_event,
};
static const mph_agent_descriptor* const agents[] = {&upper_agent};

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = "@NAME@",
    .version = "0.1.0",
    .agents = agents,
    .agent_count = 1,
};

MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t major, uint32_t minor, const mph_host_api* host,
                                                              char* errbuf, size_t errbuf_size) {
    (void)minor;
    if (major != MPH_ABI_VERSION_MAJOR) {
        snprintf(errbuf, errbuf_size, "@NAME@ was built for ABI %d", MPH_ABI_VERSION_MAJOR);
        return NULL;
    }
    api = host;
    return &plugin;
}
)";

constexpr const char* kSourceCpp = R"(// @NAME@: a Mephisto plugin in C++ (made by `mephisto plugin new`). Its agent `upper` emits every value it
// reads upper-cased, under the same key, to the agent's sinks.
#include <mephisto/mephisto.hpp>

#include <cctype>
#include <string>

struct Upper {
    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        if (event.is_tombstone()) return;  // nothing to upper-case
        std::string text(event.value());
        for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        ctx.emit(text, event.key());
    }
};

MEPHISTO_PLUGIN("@NAME@", "0.1.0", mephisto::agent<Upper>("upper", "emits every value upper-cased"));
)";

constexpr const char* kTest = R"(// The agent `upper` of @NAME@, driven by the SDK's test driver: no broker, no host.
#include <mephisto/testing.hpp>

#include <cstdio>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}
}  // namespace

int main() {
    mephisto::testing::AgentDriver driver(mephisto_plugin_entry, "upper", {}, {.sinks = {"out"}});
    check(driver.send("hello, world", "k1") == MPH_OK, "send");
    check(driver.send(std::nullopt, "k2") == MPH_OK, "a tombstone is accepted");
    check(driver.values("out") == std::vector<std::string>{"HELLO, WORLD"}, "the value is upper-cased");
    if (failures == 0) std::printf("@NAME@: upper: ok\n");
    return failures == 0 ? 0 : 1;
}
)";

constexpr const char* kPipeline = R"(# A pipeline for @NAME@: `mephisto run @NAME@.yaml` (after building: the plugin is in build/plugins).
app: @NAME@
broker: embedded
plugins: {dir: build/plugins}
topics:
  in: {partitions: 4}
  out: {partitions: 4}
agents:
  upper: {plugin: @NAME@, from: in, sinks: [out]}
)";

constexpr const char* kReadme = R"(# @NAME@

A Mephisto plugin (made by `mephisto plugin new`): the agent `upper` emits every value upper-cased.

    cmake -B build && cmake --build build     # build/plugins/@NAME@.so, against the installed Mephisto SDK
    ctest --test-dir build                    # the agent through the SDK's test driver
    mephisto run @NAME@.yaml                  # on the embedded broker; then: mephisto send in "hello"

The SDK is found with `find_package(Mephisto)` (`CMAKE_PREFIX_PATH` names its prefix when it is not a standard
one). Without CMake, for a C plugin:

    cc $(pkg-config --cflags mephisto) $(pkg-config --variable=plugin_cflags mephisto) src/@NAME@.c \
       $(pkg-config --variable=plugin_ldflags mephisto) -o @NAME@.so
)";

std::string fill(std::string text, const std::string& name, const std::string& ext) {
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"@NAME@", name}, {"@EXT@", ext}})
        for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
            text.replace(at, from.size(), to);
    return text;
}

}  // namespace

int plugin_new(const PluginNewOptions& o) {
    // The name becomes a C identifier (the test's), a file name and the YAML `plugin:`.
    if (!std::regex_match(o.name, std::regex("[a-z][a-z0-9_]{0,63}"))) {
        std::cerr << "plugin new: '" << o.name << "' is not a plugin name: a lower-case letter, then lower-case "
                                                   "letters, digits or '_' (64 at most)\n";
        return 2;
    }
    if (o.lang != "c" && o.lang != "cpp") {
        std::cerr << "plugin new: --lang must be c or cpp\n";
        return 2;
    }
    const std::filesystem::path dir = o.dir.empty() ? std::filesystem::path(o.name) : o.dir;
    std::error_code ec;
    if (std::filesystem::exists(dir, ec)) {
        std::cerr << "plugin new: " << dir.string() << " exists already; nothing written\n";
        return 1;
    }
    const std::string ext = o.lang == "c" ? "c" : "cpp";
    const std::vector<std::pair<std::filesystem::path, std::string>> files = {
        {"CMakeLists.txt", fill(kCMakeLists, o.name, ext)},
        {std::filesystem::path("src") / (o.name + "." + ext), fill(o.lang == "c" ? kSourceC : kSourceCpp, o.name, ext)},
        {std::filesystem::path("test") / (o.name + "_test.cpp"), fill(kTest, o.name, ext)},
        {o.name + ".yaml", fill(kPipeline, o.name, ext)},
        {"README.md", fill(kReadme, o.name, ext)},
    };
    for (const auto& [file, text] : files) {
        const auto path = dir / file;
        std::filesystem::create_directories(path.parent_path(), ec);
        std::ofstream out(path);
        out << text;
        if (!out.flush()) {
            std::cerr << "plugin new: cannot write " << path.string() << "\n";
            return 1;
        }
    }
    std::cout << "a " << (o.lang == "c" ? "C" : "C++") << " plugin in " << dir.string() << "/: cd " << dir.string()
              << " && cmake -B build && cmake --build build && ctest --test-dir build\n";
    return 0;
}

}  // namespace mephisto::cli
