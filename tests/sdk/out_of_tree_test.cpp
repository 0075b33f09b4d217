// A plugin written outside this repository, against the SDK as installed: `cmake --install` into a temporary
// prefix, `mephisto plugin new` scaffolds a C and a C++ plugin there, each builds with CMake against the installed
// SDK only (find_package(Mephisto), CMAKE_PREFIX_PATH the prefix) and passes its generated test; the C one also
// builds with pkg-config and a bare compiler. Then a host runs the plugins on the test broker.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

void sh(const std::string& command) {
    std::string out;
    const int status = shell(command + " 2>&1", out);
    INFO(command << "\n" << out);
    REQUIRE(status == 0);
}

}  // namespace

TEST_CASE("a plugin made outside the tree with `mephisto plugin new` builds against the installed SDK and runs") {
    TempDir dir;
    const auto prefix = dir.path() / "prefix";
    // The SDK and the executable (the `service` component writes under /etc: the Debian package's alone).
    for (const char* component : {"sdk", "runtime"})
        sh("cmake --install " + quoted(MEPHISTO_BUILD_DIR) + " --prefix " + quoted(prefix) + " --component " + component);
    for (const char* file : {"include/mephisto/mephisto.h", "include/mephisto/mephisto.hpp", "include/mephisto/testing.hpp",
                             "lib/cmake/Mephisto/MephistoConfig.cmake", "lib/cmake/Mephisto/MephistoConfigVersion.cmake",
                             "lib/cmake/Mephisto/MephistoPlugin.cmake", "share/pkgconfig/mephisto.pc", "bin/mephisto"})
        CHECK_MESSAGE(std::filesystem::exists(prefix / file), file);
    const auto mephisto = prefix / "bin" / "mephisto";

    // Scaffold: a name that is no C identifier is refused, an existing directory is left alone.
    std::string out;
    CHECK(shell(quoted(mephisto) + " plugin new Bad-Name --dir " + quoted(dir.path() / "bad") + " 2>&1", out) == 2);
    CHECK(out.find("is not a plugin name") != std::string::npos);
    for (const auto& [name, lang] : {std::pair{"shout_c", "c"}, std::pair{"shout_cpp", "cpp"}}) {
        const auto project = dir.path() / name;
        sh(quoted(mephisto) + " plugin new " + name + " --lang " + lang + " --dir " + quoted(project));
        CHECK(shell(quoted(mephisto) + " plugin new " + name + " --dir " + quoted(project) + " 2>&1", out) == 1);
        // Built against the installed SDK only: the prefix is the one place CMake looks for it.
        sh("cd " + quoted(project) + " && cmake -B build -G Ninja -DCMAKE_PREFIX_PATH=" + quoted(prefix) +
           " -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF && cmake --build build && ctest --test-dir build --output-on-failure");
        REQUIRE(std::filesystem::exists(project / "build" / "plugins" / (std::string(name) + ".so")));
    }
    // The C plugin with pkg-config and the compiler alone.
    const auto c_project = dir.path() / "shout_c";
    sh("cd " + quoted(c_project) + " && mkdir -p pc && export PKG_CONFIG_PATH=" + quoted(prefix / "share" / "pkgconfig") +
       " && cc $(pkg-config --cflags mephisto) $(pkg-config --variable=plugin_cflags mephisto) src/shout_c.c "
       "$(pkg-config --variable=plugin_ldflags mephisto) -o pc/shout_c.so && " + quoted(mephisto) +
       " plugin inspect pc/shout_c.so | grep -q 'abi     1.'");

    // Both in a host: the generated pipeline files, each agent upper-casing what it reads.
    Broker broker;
    for (const auto& [name, lang] : {std::pair{"shout_c", "c"}, std::pair{"shout_cpp", "cpp"}}) {
        const std::string in = std::string(name) + "_in", outputs = std::string(name) + "_out";
        broker.create_topic(in, 4);
        broker.create_topic(outputs, 4);
        // The generated file, with this test's topic names (the broker is shared by both runs).
        std::ifstream generated(dir.path() / name / (std::string(name) + ".yaml"));
        std::stringstream text;
        text << generated.rdbuf();
        std::string yaml = text.str();
        for (const auto& [from, to] : {std::pair<std::string, std::string>{"  in:", "  " + in + ":"}, {"  out:", "  " + outputs + ":"},
                                       {"from: in", "from: " + in}, {"sinks: [out]", "sinks: [" + outputs + "]"}})
            yaml.replace(yaml.find(from), from.size(), to);
        const auto file = dir.path() / name / "run.yaml";
        std::ofstream(file) << yaml;
        auto host = start_host(file, broker.bootstrap(), dir.path() / (std::string(name) + ".log"));
        produce(broker.bootstrap(), in, {{"k", "hello from " + std::string(lang), {}, -1}});
        TopicReader reader(broker.bootstrap(), outputs, 4);
        const std::string expected = std::string("HELLO FROM ") + (std::string(lang) == "c" ? "C" : "CPP");
        CHECK(reader.read_until([&](const std::vector<Record>& records) {
            return !records.empty() && records.front().value == expected;
        }, 60s));
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
}
