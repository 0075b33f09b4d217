// What an edit of a pipeline file changes (config/topology_diff.hpp): agents, timers and declared topics are
// listed for an in-place reload; anything the running pipeline cannot change while it runs is a reason to
// restart it. Positions in the file are never changes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <fstream>

#include "config/topology_diff.hpp"

namespace fs = std::filesystem;
using namespace mephisto;

namespace {

struct Fixture {
    test::TempDir tmp;
    Fixture() {
        fs::create_directories(tmp.path() / "plugins.d");
        std::ofstream(tmp.path() / "plugins.d" / "p.so") << "the loader only checks that it exists";
    }
    PipelineConfig load(const std::string& body) const {
        auto c = load_config_text("app: {id: shop}\n" + body, "pipeline.yaml", tmp.path());
        REQUIRE_MESSAGE(c, (c ? "" : c.error()));
        return *c;
    }
};

const std::string kTopics = "topics: {in: {}, out: {}, more: {}}\n";
const std::string kTwoAgents =
    "agents:\n"
    "  a: {plugin: p, from: in, sinks: [out]}\n"
    "  b: {plugin: p, from: in, params: {x: '1'}}\n";

}  // namespace

TEST_CASE("an unchanged file, reformatted and moved down, is no change") {
    Fixture f;
    auto running = f.load(kTopics + kTwoAgents);
    auto edited = f.load("# a comment\n\n" + kTopics + "agents:\n  b:  {plugin: p, params: {x: '1'}, from: in}\n"
                         "  a: {from: in, plugin: p, sinks: [out]}\n");
    auto d = diff_topology(running, edited);
    CHECK(d.empty());
    CHECK(d.in_place());
    CHECK(d.summary() == "no change");
}

TEST_CASE("agents added, removed and changed are applied in place when the topics read stay the same") {
    Fixture f;
    auto running = f.load(kTopics + kTwoAgents);
    auto edited = f.load("topics: {in: {}, out: {}, more: {}, extra: {}}\n"
                         "agents:\n"
                         "  b: {plugin: p, from: in, params: {x: '2'}}\n"
                         "  c: {plugin: p, from: in, sinks: [extra]}\n");
    auto d = diff_topology(running, edited);
    CHECK(d.in_place());
    CHECK(d.agents_added == std::vector<std::string>{"c"});
    CHECK(d.agents_removed == std::vector<std::string>{"a"});
    CHECK(d.agents_changed == std::vector<std::string>{"b"});
    CHECK(d.topics_added == std::vector<std::string>{"extra"});
    CHECK(d.summary() == "agents +c -a ~b; topics +extra");
}

TEST_CASE("every agent field counts as a change") {
    Fixture f;
    auto running = f.load(kTopics + kTwoAgents);
    for (const std::string b : {"{plugin: p, from: in, params: {x: '1'}, sinks: [more]}",
                                 "{plugin: p, agent: other, from: in, params: {x: '1'}}",
                                 "{plugin: p, from: in, params: {x: '1'}, on_error: {retry: 7}}",
                                 "{plugin: p, from: in, params: {x: '1'}, supervisor: {max_restarts: 1}}"}) {
        CAPTURE(b);
        auto d = diff_topology(running, f.load(kTopics + "agents:\n  a: {plugin: p, from: in, sinks: [out]}\n  b: " + b + "\n"));
        CHECK(d.agents_changed == std::vector<std::string>{"b"});
        CHECK(d.in_place());
    }
}

TEST_CASE("timers are added, removed and changed in place") {
    Fixture f;
    auto running = f.load(kTopics + kTwoAgents + "timers:\n  t1: {plugin: p, every: 1s}\n  t2: {plugin: p, every: 1s}\n");
    auto edited = f.load(kTopics + kTwoAgents + "timers:\n  t2: {plugin: p, every: 2s}\n  t3: {plugin: p, every: 1s}\n");
    auto d = diff_topology(running, edited);
    CHECK(d.in_place());
    CHECK(d.timers_added == std::vector<std::string>{"t3"});
    CHECK(d.timers_removed == std::vector<std::string>{"t1"});
    CHECK(d.timers_changed == std::vector<std::string>{"t2"});
    CHECK(d.agents_changed.empty());
}

TEST_CASE("changes the running pipeline cannot take in place name their reason") {
    Fixture f;
    auto running = f.load(kTopics + "tables: {counts: {value: int64}}\n"
                          "agents:\n  a: {plugin: p, from: in, tables: [counts]}\n  b: {plugin: p, from: in}\n");
    auto restart_reason = [&](const std::string& body) {
        auto d = diff_topology(running, f.load(body));
        CHECK_FALSE(d.in_place());
        std::string all;
        for (const auto& r : d.restart_reasons) all += r + "\n";
        return all;
    };
    const std::string agents = "agents:\n  a: {plugin: p, from: in, tables: [counts]}\n  b: {plugin: p, from: in}\n";
    const std::string table = "tables: {counts: {value: int64}}\n";
    CHECK(restart_reason(kTopics + table + "agents:\n  a: {plugin: p, from: in, tables: [counts]}\n"
                         "  b: {plugin: p, from: [in, more]}\n")
              .find("the topics the pipeline reads changed (+more)") != std::string::npos);
    CHECK(restart_reason(kTopics + "tables: {counts: {value: int64, partitions: 8}}\n" + agents)
              .find("tables changed: counts") != std::string::npos);
    CHECK(restart_reason(kTopics + table + "workers: 3\n" + agents).find("the worker count changed") != std::string::npos);
    CHECK(restart_reason(kTopics + table + "hung_callback_after: 5s\n" + agents).find("hung_callback_after changed") !=
          std::string::npos);
    CHECK(restart_reason(kTopics + table + "broker_unreachable_timeout: 1m\n" + agents)
              .find("broker_unreachable_timeout changed") != std::string::npos);
    CHECK(restart_reason("topics: {in: {value: json}, out: {}, more: {}}\n" + table + agents)
              .find("topic in's declaration changed") != std::string::npos);
    // A new agent may use counts on `in`, where a already does; a table nobody uses on that topic would need
    // recovery first. An agent that now uses other tables restarts (its lanes keep their bindings).
    auto d = diff_topology(running, f.load(kTopics + table + agents + "  c: {plugin: p, from: in, tables: [counts]}\n"));
    CHECK(d.in_place());
    CHECK(d.agents_added == std::vector<std::string>{"c"});
    CHECK(restart_reason(kTopics + table + "agents:\n  a: {plugin: p, from: in, tables: [counts]}\n"
                         "  b: {plugin: p, from: in, tables: [counts]}\n")
              .find("agent b now uses other tables") != std::string::npos);
    const std::string two_tables = "tables: {counts: {value: int64}, seen: {value: int64}}\n";
    auto unbound = diff_topology(f.load(kTopics + two_tables + agents),
                                 f.load(kTopics + two_tables + agents + "  c: {plugin: p, from: in, tables: [seen]}\n"));
    REQUIRE(unbound.restart_reasons.size() == 1);
    CHECK(unbound.restart_reasons[0] ==
          "agent c would use table seen on topic in, which no running agent does (its partitions must be recovered first)");
}

TEST_CASE("order in lists is no change, while an agent reading other topics, or a source topic's declaration, restarts") {
    Fixture f;
    const std::string four = "topics: {in: {}, out: {}, more: {}, extra: {}}\n";
    auto running = f.load(four + "agents:\n  a: {plugin: p, from: [in, more], sinks: [out, extra]}\n"
                                 "  b: {plugin: p, from: in}\n");
    auto reordered = f.load(four + "agents:\n  a: {plugin: p, from: [more, in], sinks: [extra, out]}\n"
                                   "  b: {plugin: p, from: in}\n");
    CHECK(diff_topology(running, reordered).empty());
    auto moved = diff_topology(running, f.load(four + "agents:\n  a: {plugin: p, from: [in], sinks: [out]}\n"
                                                      "  b: {plugin: p, from: [in, more]}\n"));
    CHECK(moved.agents_changed == std::vector<std::string>{"a", "b"});
    REQUIRE(moved.restart_reasons.size() == 2);
    CHECK(moved.restart_reasons[0] == "agent a now reads other topics");
    auto redeclared = diff_topology(running, f.load("topics: {in: {}, out: {}, more: {value: json}, extra: {}}\n"
                                                    "agents:\n  a: {plugin: p, from: [in, more], sinks: [out, extra]}\n"
                                                    "  b: {plugin: p, from: in}\n"));
    REQUIRE(redeclared.restart_reasons.size() == 1);
    CHECK(redeclared.restart_reasons[0] == "topic more's declaration changed");
}
