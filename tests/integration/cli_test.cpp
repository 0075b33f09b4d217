// The command line as a user meets it: validate, plugin inspect, broker.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.hpp"
#include "mephisto/mephisto.h"

using namespace mephisto::test;

namespace {


// A loopback port nobody listens on right now.
int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    socklen_t len = sizeof sin;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    close(fd);
    return ntohs(sin.sin_port);
}

const std::filesystem::path kSource = MEPHISTO_SOURCE_DIR;

}  // namespace

TEST_CASE("validate accepts every example and every file in conf/") {
    TempDir dir;
    std::vector<std::string> files;
    for (auto name : {"hello_world", "transfer_branch", "word_split", "page_views", "word_count", "click_counter", "windowed_clicks",
                      "batch_sink", "leader_election"})
        files.push_back((kSource / "examples" / name / (std::string(name) + ".yaml")).string());
    for (const auto& entry : std::filesystem::directory_iterator(kSource / "conf"))
        if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
    REQUIRE(files.size() >= 7);
    std::vector<std::string> args = {"validate", "--plugin-dir", example_plugin_dir().string()};
    args.insert(args.end(), files.begin(), files.end());
    std::string out;
    CHECK(run_cli(args, dir, out) == 0);
    for (const auto& f : files) CHECK(out.find(f + ": ok") != std::string::npos);
}

TEST_CASE("validate names file, line and column of the first problem and exits 1") {
    TempDir dir;
    auto plugins = example_plugin_dir().string();
    struct Case {
        std::string yaml, expected;
    };
    std::vector<Case> cases = {
        {"app: {id: a}\ntopics: {t: {}}\nagents:\n  x: {plugin: hello_world, from: t, colour: red}\n",
         ":4:37: unknown key 'colour' in agents.x"},
        {"app: {id: a}\ntopics: {t: {}}\nagents:\n  x: {plugin: hello_world, agent: nope, from: t}\n",
         ":4:35: agents.x: plugin 'hello_world' has no agent 'nope' (it has: greet)"},
        {"app: {id: a}\ntopics: {t: {}}\nagents:\n  x: {plugin: missing_plugin, from: t}\n",
         ":4:15: agents.x.plugin: plugin 'missing_plugin' not found"},
        {"app: {id: a}\ntopics: {t: {partitions: lots}}\n", ":2:26: topics.t.partitions must be an integer"},
        {"app: {id: a\n", ":2:1: invalid YAML"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        auto file = dir.write("bad" + std::to_string(i) + ".yaml", cases[i].yaml);
        std::string out;
        CHECK(run_cli({"validate", "--plugin-dir", plugins, file.string()}, dir, out) == 1);
        INFO(out);
        CHECK(out.find(file.string() + cases[i].expected) != std::string::npos);
    }
}

TEST_CASE("plugin inspect shows agents and params, and refuses a bad file with the reason") {
    TempDir dir;
    std::string out;
    CHECK(run_cli({"plugin", "inspect", (test_plugin_dir() / "test_agents.so").string()}, dir, out) == 0);
    CHECK(out.find("plugin  test_agents 1.0.0") != std::string::npos);
    const std::string abi = std::to_string(MPH_ABI_VERSION_MAJOR) + "." + std::to_string(MPH_ABI_VERSION_MINOR);
    CHECK(out.find("abi     " + abi + " (host " + abi + ")") != std::string::npos);
    CHECK(out.find("param delay_ms [default: 0]: sleep before each event") != std::string::npos);
    CHECK(out.find("param topic (required)") != std::string::npos);
    auto bogus = dir.write("bogus.so", "this is text, not a shared object\n");
    CHECK(run_cli({"plugin", "inspect", bogus.string()}, dir, out) == 1);
    CHECK(out.find(bogus.string() + ": not an ELF shared object") != std::string::npos);
}

TEST_CASE("mephisto broker listens on the port it is given, creates topics, and refuses a taken port") {
    TempDir dir;
    const int port = free_port();
    HostProcess broker({mephisto_binary().string(), "broker", "--port", std::to_string(port), "--topic", "events:3"},
                       dir.path() / "broker.log");
    const std::string address = "127.0.0.1:" + std::to_string(port);
    REQUIRE(broker.await_log("embedded broker listening on " + address, 20s));
    auto ends = end_offsets(address, "events", 3);
    CHECK(ends.size() == 3);

    std::string out;
    CHECK(run_cli({"broker", "--port", std::to_string(port)}, dir, out) == 1);
    CHECK(out.find("cannot listen on " + address + ": Address already in use") != std::string::npos);
    CHECK(broker.running());
    CHECK(broker.stop(SIGTERM, 10s) == 0);
}

TEST_CASE("the embedded broker of `mephisto run` takes the configured port, and send reaches it") {
    TempDir dir;
    const int port = free_port();
    auto yaml = dir.write("embedded.yaml", "app: {id: embedded}\nbroker: {embedded: {port: " + std::to_string(port) +
                                               "}}\nplugins: {dir: " + example_plugin_dir().string() +
                                               "}\ntopics: {greetings: {partitions: 2}}\nagents:\n"
                                               "  greet: {plugin: hello_world, from: greetings}\n");
    HostProcess host({mephisto_binary().string(), "run", yaml.string()}, dir.path() / "host.log");
    const std::string address = "127.0.0.1:" + std::to_string(port);
    REQUIRE(host.await_log("embedded broker listening on " + address, 20s));
    REQUIRE(host.await_log("assigned 2 partition(s)", 30s));
    std::string out;
    CHECK(run_cli({"send", "greetings", "--broker", address, "hi there"}, dir, out) == 0);
    CHECK(host.await_log("[greet] hi there", 20s));
    // The broker as `run --broker` and pipeline files write it (Faust's URL) works too; another scheme is refused.
    CHECK(run_cli({"send", "greetings", "--broker", "kafka://" + address, "hi again"}, dir, out) == 0);
    CHECK(host.await_log("[greet] hi again", 20s));
    CHECK(run_cli({"send", "greetings", "--broker", "http://" + address, "never"}, dir, out) == 2);
    CHECK(out.find("--broker must be host:port[,host:port] or kafka://host:port, found 'http://") != std::string::npos);
    CHECK(host.stop(SIGTERM, 30s) == 0);
}
