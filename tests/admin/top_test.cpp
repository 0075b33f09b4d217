// `mephisto top` in a real terminal: tmux runs it against a host under load, capture-pane reads the screen,
// send-keys presses the keys. It shows the pipeline and its agents with their events/s, re-sorts on a key, and
// quits on q, putting the terminal back.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <unistd.h>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

// A tmux server of the test's own (its socket in the test's directory), killed with everything in it at the end.
struct Tmux {
    const std::string socket;
    explicit Tmux(const std::filesystem::path& dir) : socket((dir / "tmux.sock").string()) {}
    ~Tmux() {
        std::string ignored;
        shell("tmux -S '" + socket + "' kill-server 2>/dev/null", ignored);
    }
    int run(const std::string& args, std::string& out) const {
        return shell("tmux -S '" + socket + "' " + args + " 2>&1", out);
    }
    std::string screen() const {
        std::string out;
        return run("capture-pane -p -t top", out) == 0 ? out : std::string();
    }
    bool alive() const {
        std::string out;
        return run("has-session -t top", out) == 0;
    }
};

// The line of `screen` that names `agent`, and where it is (npos when absent).
size_t line_of(const std::string& screen, const std::string& agent) { return screen.find(" " + agent + " "); }

// The events/s column of the agent's line: the first number after its name.
double rate_of(const std::string& screen, const std::string& agent) {
    const size_t at = line_of(screen, agent);
    if (at == std::string::npos) return -1;
    return std::strtod(screen.c_str() + at + agent.size() + 2, nullptr);
}

}  // namespace

TEST_CASE("mephisto top in tmux: live agents and events/s, sorted by the key pressed, q quits") {
    REQUIRE(::system("command -v tmux >/dev/null") == 0);
    Broker broker;
    broker.create_topic("words", 4);
    broker.create_topic("echoes", 4);
    TempDir dir;
    // b_fast keeps up with the load; a_slow sleeps 5 ms an event: by events/s b_fast comes first, by name a_slow.
    const auto yaml = dir.write("top.yaml", pipeline_yaml("topview",
        "state_dir: " + (dir.path() / "state").string() + "\n"
        "topics: {words: {partitions: 4}, echoes: {partitions: 4}}\n"
        "tables: {counts: {value: int64}}\n"
        "agents:\n"
        "  a_slow: {plugin: test_agents, agent: forward, from: words, sinks: [echoes], params: {delay_ms: 5}}\n"
        "  b_fast: {plugin: test_agents, agent: count, from: words, tables: [counts]}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    REQUIRE(await([&] { return http_get(admin, "/ready").status == 200; }, 60s));
    SteadyLoad load(broker.bootstrap(), "words", 100, 64);

    Tmux tmux(dir.path());
    std::string out;
    REQUIRE_MESSAGE(tmux.run("new-session -d -s top -x 200 -y 40 '" + mephisto_binary().string() + " top --admin " +
                                 admin + "'", out) == 0, out);
    // Sorted by events/s: b_fast above a_slow, both moving.
    std::string screen;
    const bool by_events = await([&] {
        screen = tmux.screen();
        return screen.find("sorted by events/s") != std::string::npos && rate_of(screen, "b_fast") > 0 &&
               rate_of(screen, "a_slow") > 0 && rate_of(screen, "b_fast") > rate_of(screen, "a_slow") &&
               line_of(screen, "b_fast") < line_of(screen, "a_slow");
    }, 30s);
    MESSAGE("the screen:\n" << screen);
    REQUIRE(by_events);
    CHECK(screen.find("topview") != std::string::npos);
    CHECK(screen.find("PIPELINE") != std::string::npos);
    CHECK(screen.find("EVENTS/S") != std::string::npos);

    // n: by name, a_slow first.
    REQUIRE(tmux.run("send-keys -t top n", out) == 0);
    REQUIRE(await([&] {
        screen = tmux.screen();
        return screen.find("sorted by name") != std::string::npos && line_of(screen, "a_slow") != std::string::npos &&
               line_of(screen, "a_slow") < line_of(screen, "b_fast");
    }, 10s));

    // q: top exits (its tmux session with it).
    REQUIRE(tmux.run("send-keys -t top q", out) == 0);
    REQUIRE(await([&] { return !tmux.alive(); }, 10s));

    // Without a terminal: one view, and the exit code.
    CHECK(run_cli({"top", "--admin", admin, "--once", "--sort", "name"}, dir, out) == 0);
    CHECK(out.find("sorted by name") != std::string::npos);
    CHECK(out.find("b_fast") != std::string::npos);
    load.stop();
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(run_cli({"top", "--admin", admin, "--once"}, dir, out) == 1);  // nobody there
    CHECK(out.find("cannot reach the host's admin API") != std::string::npos);
}
