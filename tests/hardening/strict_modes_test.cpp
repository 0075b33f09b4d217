// Issue 11, finding 3: a user without root must not get their code run by the host (sshd's StrictModes). The
// tests run as root; the attacker is `nobody`, through setpriv. Plugins, pipeline files and every directory
// above them must be owned by root or the host's user and closed to others, at startup and at every reload.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "harness.hpp"

using namespace mephisto::test;
namespace fs = std::filesystem;

namespace {

const fs::path kBuilds = MEPHISTO_RELOAD_PLUGIN_DIR;  // stamp_v1.so, stamp_v2.so
constexpr uid_t kNobody = 65534;

// Runs `command` with sh as the unprivileged user nobody; returns its exit status.
int as_nobody(const std::string& command) {
    const std::string line = "setpriv --reuid=" + std::to_string(kNobody) + " --regid=" + std::to_string(kNobody) +
                             " --clear-groups sh -c '" + command + "' 2>/dev/null";
    const int status = std::system(line.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void set_mode(const fs::path& p, unsigned mode) { REQUIRE(::chmod(p.c_str(), mode) == 0); }

std::string stamp_pipeline(const std::string& app, const fs::path& plugins) {
    return pipeline_yaml(app, "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
           "agents:\n  stamp: {plugin: stamp, from: in, sinks: [out]}\n",
                         plugins);
}

// The stamp_v1 plugin in <dir>/plugins (mode 0755), and the pipeline running it.
struct StampSetup {
    TempDir dir;
    fs::path plugins = dir.path() / "plugins";
    fs::path yaml;
    explicit StampSetup(const std::string& app) {
        fs::create_directories(plugins);
        set_mode(dir.path(), 0755);
        set_mode(plugins, 0755);
        fs::copy_file(kBuilds / "stamp_v1.so", plugins / "stamp.so");
        set_mode(plugins / "stamp.so", 0755);
        yaml = dir.write("p.yaml", stamp_pipeline(app, plugins));
    }
};

std::unique_ptr<HostProcess> run_expecting_refusal(const StampSetup& s, const std::string& bootstrap, int& code) {
    auto host = start_host(s.yaml, bootstrap, s.dir.path() / "host.log", {}, false);
    code = host->wait(30s).value_or(-1);
    return host;
}

}  // namespace

TEST_CASE("a plugin directory every user can write is refused at startup, and by validate, naming it and the fix") {
    Broker broker;
    StampSetup s("openplugins");
    set_mode(s.plugins, 0777);
    int code = 0;
    auto host = run_expecting_refusal(s, broker.bootstrap(), code);
    CHECK(code == 1);
    const std::string log = host->log();
    INFO(log);
    CHECK(log.find("refused: its directory " + s.plugins.string() + " is writable by every user (mode 0777)") !=
          std::string::npos);
    CHECK(log.find("fix: chmod go-w " + s.plugins.string()) != std::string::npos);
    std::string out;
    CHECK(run_cli({"validate", s.yaml.string()}, s.dir, out) == 1);
    CHECK(out.find("is writable by every user") != std::string::npos);
}

TEST_CASE("a plugin owned by another user is refused, and so is a pipeline file") {
    Broker broker;
    StampSetup s("foreign");
    REQUIRE(::chown((s.plugins / "stamp.so").c_str(), kNobody, kNobody) == 0);
    int code = 0;
    auto host = run_expecting_refusal(s, broker.bootstrap(), code);
    CHECK(code == 1);
    CHECK(host->log().find("refused: the plugin " + (s.plugins / "stamp.so").string() + " is owned by uid 65534") !=
          std::string::npos);

    REQUIRE(::chown((s.plugins / "stamp.so").c_str(), 0, 0) == 0);
    REQUIRE(::chown(s.yaml.c_str(), kNobody, kNobody) == 0);
    host = run_expecting_refusal(s, broker.bootstrap(), code);
    CHECK(code == 1);
    CHECK(host->log().find(s.yaml.string() + ": refused: the pipeline file " + s.yaml.string() + " is owned by uid 65534") !=
          std::string::npos);
}

TEST_CASE("nobody cannot swap a plugin through a directory left open to every user: the running one stays") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    StampSetup s("swapattack");
    auto host = start_host(s.yaml, broker.bootstrap(), s.dir.path() / "host.log");
    produce(broker.bootstrap(), "in", {{"k", std::string("before"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](auto& r) { return !r.empty(); }, 30s));

    set_mode(s.plugins, 0777);  // an operator's mistake
    // The attack of the report: copy a build beside the plugin, then move it over, as nobody.
    REQUIRE(as_nobody("cp " + (kBuilds / "stamp_v2.so").string() + " " + s.plugins.string() + "/.x.so && mv " +
                      s.plugins.string() + "/.x.so " + s.plugins.string() + "/stamp.so") == 0);
    REQUIRE(host->await_log("reload of " + (s.plugins / "stamp.so").string() + " refused", 30s));
    CHECK(host->log().find("is owned by uid 65534") != std::string::npos);
    CHECK(host->count_in_log("plugin stamp swapped") == 0);
    produce(broker.bootstrap(), "in", {{"k", std::string("after"), {}, -1}});
    REQUIRE(out.read_until([](auto& r) { return r.size() >= 2; }, 30s));
    for (const auto& r : out.records()) CHECK(r.value->rfind("v1:", 0) == 0);  // only the trusted build ran
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a sticky directory may be shared: a root-owned plugin in it loads, and nobody cannot replace it") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    StampSetup s("sticky");
    set_mode(s.plugins, 01777);  // like /tmp
    auto host = start_host(s.yaml, broker.bootstrap(), s.dir.path() / "host.log");
    // The sticky bit keeps nobody from renaming over root's file; nobody's own file beside it is not loaded.
    CHECK(as_nobody("cp " + (kBuilds / "stamp_v2.so").string() + " " + s.plugins.string() + "/.x.so && mv " +
                    s.plugins.string() + "/.x.so " + s.plugins.string() + "/stamp.so") != 0);
    produce(broker.bootstrap(), "in", {{"k", std::string("one"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK(out.records().front().value == "v1:one");
    CHECK(host->stop(SIGTERM, 30s) == 0);

    // In a shared directory, a plugin owned by someone else is refused.
    REQUIRE(::chown((s.plugins / "stamp.so").c_str(), kNobody, kNobody) == 0);
    int code = 0;
    host = run_expecting_refusal(s, broker.bootstrap(), code);
    CHECK(code == 1);
    CHECK(host->log().find("is owned by uid 65534") != std::string::npos);
}

TEST_CASE("a pipeline file added by another user to a watched directory is refused, the others run on") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    set_mode(dir.path(), 0755);
    const fs::path pipelines = dir.path() / "pipelines";
    fs::create_directories(pipelines);
    set_mode(pipelines, 0755);
    dir.write("pipelines/a.yaml", pipeline_yaml("trusted", "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                                                           "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in, sinks: [out]}\n"));
    auto host = start_host(pipelines, broker.bootstrap(), dir.path() / "host.log");
    const fs::path intruder = dir.write("b.yaml.partial", pipeline_yaml("intruder", "topics: {in: {partitions: 1}}\n"
                                                                    "agents:\n  fwd: {plugin: test_agents, agent: forward, from: in}\n"));
    REQUIRE(::chown(intruder.c_str(), kNobody, kNobody) == 0);
    fs::rename(intruder, pipelines / "b.yaml");
    REQUIRE(host->await_log((pipelines / "b.yaml").string() + ": refused: the pipeline file", 30s));
    CHECK(host->count_in_log("pipeline intruder") == 0);
    produce(broker.bootstrap(), "in", {{"k", std::string("still"), {}, -1}});
    TopicReader out(broker.bootstrap(), "out", 1);
    CHECK(out.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a private-copy folder someone else made in TMPDIR is refused, not used") {
    Broker broker;
    StampSetup s("hijack");
    const fs::path tmp = s.dir.path() / "tmp";
    fs::create_directories(tmp);
    set_mode(tmp, 01777);
    // nobody got there first with the folder the host would copy plugins into.
    const fs::path planted = tmp / ("mephisto-" + std::to_string(::geteuid()));
    REQUIRE(as_nobody("mkdir -m 777 " + planted.string()) == 0);
    REQUIRE(::setenv("TMPDIR", tmp.c_str(), 1) == 0);  // for the host started next
    int code = 0;
    auto host = run_expecting_refusal(s, broker.bootstrap(), code);
    ::unsetenv("TMPDIR");
    CHECK(code == 1);
    CHECK(host->log().find(planted.string() + " is owned by uid 65534") != std::string::npos);
}
