// Issue 11, finding 4: a crashing plugin no longer dies silently. A fatal signal writes one line to stderr and
// to the --log-file naming the signal, the plugin and its SHA-1, the agent, the callback and the event; the
// process still dies of the signal (exit 128+signal). A plugin that calls exit, from a callback or from a
// constructor while it loads, never looks like a clean stop: the host says so and exits 70.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "plugin/plugin.hpp"

using namespace mephisto::test;
namespace fs = std::filesystem;

namespace {

const fs::path kHostile = test_plugin_dir() / "hostile";  // exit_on_load.so, slow_init.so

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct CrashOutcome {
    int exit_code = -1;
    std::string log;       // stderr
    std::string log_file;  // --log-file
};

// Runs the crasher agent on "first", then on `misdeed`; returns how the host ended.
CrashOutcome run_into(const std::string& misdeed) {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("crashy", "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                                                            "agents:\n  boom: {plugin: crasher, agent: crash, from: in, sinks: [out]}\n"));
    const fs::path log_file = dir.path() / "mephisto.log";
    std::vector<std::string> args = {mephisto_binary().string(), "--log-file", log_file.string(), "run", yaml.string(),
                                     "--broker", "kafka://" + broker.bootstrap(), "--admin", "127.0.0.1:0"};
    HostProcess host(args, dir.path() / "host.log");
    REQUIRE(host.await_log("assigned ", 30s));
    produce(broker.bootstrap(), "in", {{"k", std::string("first"), {}, -1}, {"k", misdeed, {}, -1}});
    CrashOutcome out;
    out.exit_code = host.wait(30s).value_or(-1);
    out.log = host.log();
    out.log_file = read_file(log_file);
    return out;
}

// The line both logs carry for a fatal signal in the crasher's on_event of in[0]@1.
void check_reported(const CrashOutcome& out, const std::string& signal) {
    const std::string sha1 = mephisto::file_sha1(test_plugin_dir() / "crasher.so");
    const std::string expected = "fatal signal " + signal;
    const std::string call = "in plugin crasher (sha1 " + sha1 + "), agent boom, in on_event of in[0]@1, pipeline crashy";
    INFO(out.log);
    for (const std::string* log : {&out.log, &out.log_file}) {
        const auto at = log->find(expected);
        REQUIRE(at != std::string::npos);
        const std::string line = log->substr(at, log->find('\n', at) - at);
        CHECK(line.find(call) != std::string::npos);
        CHECK(line.find("the host dies now") != std::string::npos);
    }
}

}  // namespace

TEST_CASE("a segfault in a plugin is reported with the plugin, its SHA-1, the agent and the event, then kills as before") {
    const auto out = run_into("segv");
    CHECK(out.exit_code == 128 + SIGSEGV);
    check_reported(out, "SIGSEGV (segmentation fault) at address 0x0");
}

TEST_CASE("an abort in a plugin is reported, then kills as before") {
    const auto out = run_into("abort");
    CHECK(out.exit_code == 128 + SIGABRT);
    check_reported(out, "SIGABRT (abort)");
}

TEST_CASE("a stack overflow in a plugin is reported from the alternate signal stack") {
    const auto out = run_into("stack");
    CHECK(out.exit_code == 128 + SIGSEGV);
    check_reported(out, "SIGSEGV (segmentation fault)");
}

TEST_CASE("SIGFPE, SIGILL and SIGBUS in a plugin are reported too") {
    auto out = run_into("fpe");
    CHECK(out.exit_code == 128 + SIGFPE);
    check_reported(out, "SIGFPE (arithmetic exception)");
    out = run_into("ill");
    CHECK(out.exit_code == 128 + SIGILL);
    check_reported(out, "SIGILL (illegal instruction)");
    out = run_into("bus");
    CHECK(out.exit_code == 128 + SIGBUS);
    check_reported(out, "SIGBUS (bus error)");
}

TEST_CASE("a plugin that calls exit(0) or quick_exit(0) in a callback makes the host exit 70, saying who did") {
    for (const std::string how : {"exit", "quick_exit"}) {
        const auto out = run_into(how);
        INFO(how << "\n" << out.log);
        CHECK(out.exit_code == 70);
        const std::string said = "the process was asked to exit by plugin crasher (sha1 " +
                                 mephisto::file_sha1(test_plugin_dir() / "crasher.so") +
                                 "), agent boom, in on_event of in[0]@1, pipeline crashy; a plugin may not end the host";
        CHECK(out.log.find(said) != std::string::npos);
        CHECK(out.log_file.find(said) != std::string::npos);
        CHECK(out.log.find("] stopped") == std::string::npos);  // no clean stop happened
    }
}

TEST_CASE("a plugin whose constructor calls exit(0), dropped into the watched directory, makes the host exit 70") {
    Broker broker;
    broker.create_topic("in", 1);
    TempDir dir;
    const fs::path plugins = dir.path() / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(test_plugin_dir() / "crasher.so", plugins / "probe.so");
    auto yaml = dir.write("p.yaml", "app: {id: probe}\nplugins: {dir: " + plugins.string() + "}\n" + kFastGroupYaml +
                                        "topics: {in: {partitions: 1}}\nagents:\n  a: {plugin: probe, agent: crash, from: in}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    fs::copy_file(kHostile / "exit_on_load.so", plugins / ".probe.partial");
    fs::rename(plugins / ".probe.partial", plugins / "probe.so");
    CHECK(host->wait(30s) == 70);
    const std::string log = host->log();
    INFO(log);
    CHECK(log.find("the process was asked to exit by plugin " + (plugins / "probe.so").string() + " (sha1 " +
                   mephisto::file_sha1(kHostile / "exit_on_load.so") + "), in its constructors, while loading") !=
          std::string::npos);

    // validate loads the plugin as well: an exit there must not read as "valid".
    auto bad = dir.write("bad.yaml", "app: {id: bad}\nplugins: {dir: " + kHostile.string() + "}\n"
                                     "topics: {in: {partitions: 1}}\nagents:\n  a: {plugin: exit_on_load, agent: crash, from: in}\n");
    std::string out;
    CHECK(run_cli({"validate", bad.string()}, dir, out) == 70);
    CHECK(out.find("asked to exit by plugin " + (kHostile / "exit_on_load.so").string()) != std::string::npos);
}
