// The pipeline YAML loader (config/config.hpp): a valid file becomes the right model, and every mistake is
// reported once, as "file:line:column: what is wrong" pointing at the offending node (RELIABILITY.md 38).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>

#include "common/byte_size.hpp"
#include "config/config.hpp"

namespace fs = std::filesystem;
using namespace mephisto;
using namespace std::chrono_literals;

namespace {

using mephisto::test::TempDir;

// Creates <dir>/<name>.so (the config loader only checks that it exists).
void make_plugin_file(const fs::path& dir, const std::string& name) {
    fs::create_directories(dir);
    std::ofstream(dir / (name + ".so")) << "not really a shared object";
}

// One YAML line per element, so a test's line numbers are its element indices + 1.
std::string yaml(std::initializer_list<std::string> lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

// A base directory whose default plugin folder (plugins.d) holds p.so and shop.so.
struct Fixture {
    TempDir tmp;
    Fixture() {
        make_plugin_file(tmp.path() / "plugins.d", "p");
        make_plugin_file(tmp.path() / "plugins.d", "shop");
    }
    Result<PipelineConfig> load(const std::string& text) const {
        return load_config_text(text, "pipeline.yaml", tmp.path());
    }
    PipelineConfig ok(const std::string& text) const {
        auto c = load(text);
        REQUIRE_MESSAGE(c.ok(), c.error());
        return std::move(c).value();
    }
    // Checks the error is exactly one message, at line:column, containing every fragment.
    void error(const std::string& text, int line, int column, std::initializer_list<std::string> fragments) const {
        auto c = load(text);
        REQUIRE_MESSAGE(!c.ok(), "expected an error at " << line << ":" << column << " for:\n" << text);
        const std::string& e = c.error();
        CAPTURE(e);
        const std::string prefix = "pipeline.yaml:" + std::to_string(line) + ":" + std::to_string(column) + ": ";
        CHECK(e.rfind(prefix, 0) == 0);
        CHECK(e.find('\n') == std::string::npos);                      // one message, one line
        CHECK(e.find("pipeline.yaml:", 1) == std::string::npos);       // one position
        CHECK(e.size() > prefix.size() + 10);                          // and it says something
        for (const auto& f : fragments) CHECK_MESSAGE(e.find(f) != std::string::npos, "missing: " << f);
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("config: a full pipeline parses into the right model") {
    Fixture f;
    make_plugin_file(f.tmp.path() / "lib", "shop");
    auto c = f.ok(yaml({
        "app:",
        "  id: shop",
        "  version: 3",
        "broker: embedded",
        "processing_guarantee: at_least_once",
        "plugins:",
        "  dir: lib",
        "commit_interval: 250ms",
        "shutdown_timeout: 1m",
        "workers: 4",
        "consumer:",
        "  fetch.min.bytes: 1",
        "producer:",
        "  linger.ms: 5",
        "  compression.type: lz4",
        "topics:",
        "  orders:",
        "    partitions: 8",
        "    key: raw",
        "    value: json",
        "  valid: {}",
        "  invalid:",
        "    value: bytes",
        "agents:",
        "  validate:",
        "    plugin: shop",
        "    agent: validator",
        "    from: orders",
        "    sinks: [valid, invalid]",
        "    params:",
        "      max_amount: 1000",
        "      currency: EUR",
        "      strict: true",
        "    on_error:",
        "      retry: 5",
        "      then: dead_letter",
        "      topic: orders-rejected",
        "      backoff: 2s",
        "    supervisor:",
        "      strategy: one_for_all",
        "      max_restarts: 7",
        "      within: 30s",
        "      backoff: 50ms",
        "      max_backoff: 5s",
        "  audit:",
        "    plugin: shop",
        "    from: [valid, invalid]",
        "    on_error: {then: dead_letter}",
        "timers:",
        "  report:",
        "    plugin: shop",
        "    agent: reporter",
        "    every: 10s",
        "    params: {format: csv}",
        "    sinks: valid",
    }));

    CHECK(c.file == "pipeline.yaml");
    CHECK(c.app_id == "shop");
    CHECK(c.app_version == 3);
    CHECK(c.broker.embedded);
    CHECK(c.plugin_dir == (f.tmp.path() / "lib").lexically_normal());
    CHECK(c.commit_interval == 250ms);
    CHECK(c.shutdown_timeout == 60s);
    CHECK(c.workers == 4);
    CHECK(c.consumer_properties == std::map<std::string, std::string>{{"fetch.min.bytes", "1"}});
    CHECK(c.producer_properties ==
          std::map<std::string, std::string>{{"linger.ms", "5"}, {"compression.type", "lz4"}});

    REQUIRE(c.topics.size() == 3);  // declaration order
    CHECK(c.topics[0].name == "orders");
    CHECK(c.topics[0].partitions == 8);
    CHECK(c.topics[0].key == Codec::raw);
    CHECK(c.topics[0].value == Codec::json);
    CHECK(c.topics[1].name == "valid");
    CHECK(c.topics[1].partitions == 0);  // not declared: the broker decides
    CHECK(c.topics[2].name == "invalid");
    CHECK(c.topics[2].value == Codec::raw);
    REQUIRE(c.topic("invalid") != nullptr);
    CHECK(c.topic("invalid") == &c.topics[2]);
    CHECK(c.topic("nope") == nullptr);

    REQUIRE(c.agents.size() == 2);
    const AgentSpec& v = c.agents[0];
    CHECK(v.name == "validate");
    CHECK(v.plugin == "shop");
    CHECK(v.agent == "validator");
    CHECK(v.from == std::vector<std::string>{"orders"});
    CHECK(v.sinks == std::vector<std::string>{"valid", "invalid"});
    CHECK(v.params ==
          std::map<std::string, std::string>{{"max_amount", "1000"}, {"currency", "EUR"}, {"strict", "true"}});
    CHECK(v.on_error.retry == 5);
    CHECK(v.on_error.then == ThenPolicy::dead_letter);
    CHECK(v.on_error.dead_letter_topic == "orders-rejected");
    CHECK(v.on_error.retry_backoff == 2s);
    CHECK(v.supervisor.strategy == Strategy::one_for_all);
    CHECK(v.supervisor.max_restarts == 7);
    CHECK(v.supervisor.within == 30s);
    CHECK(v.supervisor.backoff_initial == 50ms);
    CHECK(v.supervisor.backoff_max == 5s);
    CHECK(v.plugin_mark.str() == "pipeline.yaml:26:13");
    CHECK(v.agent_mark.str() == "pipeline.yaml:27:12");

    const AgentSpec& a = c.agents[1];
    CHECK(a.name == "audit");
    CHECK(a.agent == "audit");  // defaults to the YAML name
    CHECK(a.agent_mark.str() == a.plugin_mark.str());
    CHECK(a.from == std::vector<std::string>{"valid", "invalid"});
    CHECK(a.sinks.empty());
    CHECK(a.params.empty());
    CHECK(a.on_error.retry == 3);
    CHECK(a.on_error.then == ThenPolicy::dead_letter);
    CHECK(a.on_error.dead_letter_topic == "shop-audit-dead-letter");  // <app>-<agent>-dead-letter
    CHECK(a.on_error.retry_backoff == 100ms);
    CHECK(a.supervisor.strategy == Strategy::one_for_one);
    CHECK(a.supervisor.max_restarts == 5);
    CHECK(a.supervisor.within == 60s);
    CHECK(a.supervisor.backoff_initial == 100ms);
    CHECK(a.supervisor.backoff_max == 10s);

    REQUIRE(c.timers.size() == 1);
    CHECK(c.timers[0].name == "report");
    CHECK(c.timers[0].plugin == "shop");
    CHECK(c.timers[0].agent == "reporter");
    CHECK(c.timers[0].every == 10s);
    CHECK(c.timers[0].params == std::map<std::string, std::string>{{"format", "csv"}});
    CHECK(c.timers[0].sinks == std::vector<std::string>{"valid"});

    // The consumer subscribes to what agents read, each topic once, in first-use order.
    CHECK(c.source_topics() == std::vector<std::string>{"orders", "valid", "invalid"});
}

TEST_CASE("config: a minimal pipeline gets the documented defaults") {
    Fixture f;
    auto c = f.ok(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders"}));
    CHECK(c.app_id == "shop");
    CHECK(c.app_version == 1);
    CHECK(c.broker.embedded);
    CHECK(c.broker.embedded_port == 9092);
    CHECK(c.broker.embedded_brokers == 1);
    CHECK(c.plugin_dir == (f.tmp.path() / "plugins.d").lexically_normal());
    CHECK(c.commit_interval == 1000ms);
    CHECK(c.shutdown_timeout == 30s);
    CHECK(c.workers == 2);
    REQUIRE(c.agents.size() == 1);
    CHECK(c.agents[0].agent == "a");
    CHECK(c.agents[0].on_error.then == ThenPolicy::skip);
    CHECK(c.agents[0].on_error.dead_letter_topic.empty());  // only set for dead_letter
    CHECK(c.timers.empty());
}

TEST_CASE("config: then: dead_letter without a topic defaults to <app>-<agent>-dead-letter") {
    Fixture f;
    auto c = f.ok(yaml({"app: {id: payments, version: 2}", "topics:", "  in:", "agents:", "  charge-card:",
                        "    plugin: p", "    from: in", "    on_error:", "      then: dead_letter"}));
    REQUIRE(c.agents.size() == 1);
    CHECK(c.agents[0].on_error.dead_letter_topic == "payments-charge-card-dead-letter");
    CHECK(c.app_version == 2);
}

TEST_CASE("config: broker forms") {
    Fixture f;
    auto with_broker = [&](const std::string& broker_lines) {
        return f.load("app: shop\n" + broker_lines + "topics:\n  t:\nagents:\n  a:\n    plugin: p\n    from: t\n");
    };

    SUBCASE("embedded") {
        auto c = with_broker("broker: embedded\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK(c->broker.embedded);
        CHECK(c->broker.embedded_port == 9092);
        CHECK(c->broker.bootstrap.empty());
    }
    SUBCASE("kafka:// with a comma list") {
        auto c = with_broker("broker: kafka://a:1,b:2\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK_FALSE(c->broker.embedded);
        CHECK(c->broker.bootstrap == "a:1,b:2");
    }
    SUBCASE("kafka:// with Faust's ';' separator") {
        auto c = with_broker("broker: kafka://a:1;b:2\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK_FALSE(c->broker.embedded);
        CHECK(c->broker.bootstrap == "a:1,b:2");
    }
    SUBCASE("a bare host:port list") {
        auto c = with_broker("broker: kafka1:9092\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK_FALSE(c->broker.embedded);
        CHECK(c->broker.bootstrap == "kafka1:9092");
    }
    SUBCASE("{embedded: {port: 0}}") {
        auto c = with_broker("broker: {embedded: {port: 0}}\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK(c->broker.embedded);
        CHECK(c->broker.embedded_port == 0);  // any free port
        CHECK(c->broker.embedded_brokers == 1);
    }
    SUBCASE("embedded with several brokers") {
        auto c = with_broker("broker:\n  embedded:\n    port: 19092\n    brokers: 3\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK(c->broker.embedded);
        CHECK(c->broker.embedded_port == 19092);
        CHECK(c->broker.embedded_brokers == 3);
    }
    SUBCASE("{bootstrap: ..., properties: {...}}") {
        auto c = with_broker(
            "broker:\n"
            "  bootstrap: k1:9093,k2:9093\n"
            "  properties:\n"
            "    security.protocol: SASL_SSL\n"
            "    sasl.mechanism: PLAIN\n");
        REQUIRE_MESSAGE(c.ok(), c.error());
        CHECK_FALSE(c->broker.embedded);
        CHECK(c->broker.bootstrap == "k1:9093,k2:9093");
        CHECK(c->broker.properties == std::map<std::string, std::string>{{"security.protocol", "SASL_SSL"},
                                                                         {"sasl.mechanism", "PLAIN"}});
    }
    SUBCASE("errors") {
        // Lines: 1 app, 2 broker.
        f.error("app: shop\nbroker: http://k:9092\n", 2, 9, {"broker must be 'embedded' or 'kafka://host:port"});
        f.error("app: shop\nbroker: {embedded: {}, bootstrap: k:1}\n", 2, 9,
                {"broker must have exactly one of 'embedded' or 'bootstrap'"});
        f.error("app: shop\nbroker: {properties: {a: b}}\n", 2, 9,
                {"broker must have exactly one of 'embedded' or 'bootstrap'"});
        f.error("app: shop\nbroker: {embedded: {port: 70000}}\n", 2, 27,
                {"broker.embedded.port must be between 0 and 65535, found 70000"});
    }
}

TEST_CASE("config: plugins.dir: relative to the file's folder, or absolute") {
    Fixture f;
    TempDir elsewhere;
    make_plugin_file(elsewhere.path(), "p");
    auto c = f.ok(yaml({"app: shop", "plugins: {dir: " + elsewhere.path().string() + "}", "topics:", "  t:",
                        "agents:", "  a:", "    plugin: p", "    from: t"}));
    CHECK(c.plugin_dir == elsewhere.path().lexically_normal());

    make_plugin_file(f.tmp.path() / "build" / "plugins", "p");
    auto d = f.ok(yaml({"app: shop", "plugins: {dir: ./build/../build/plugins}", "topics:", "  t:", "agents:",
                        "  a:", "    plugin: p", "    from: t"}));
    CHECK(d.plugin_dir == f.tmp.path() / "build" / "plugins");  // normalised
}

TEST_CASE("config: a timer-only pipeline is valid") {
    Fixture f;
    auto c = f.ok(yaml({"app: shop", "topics:", "  out:", "timers:", "  tick:", "    plugin: p", "    every: 500ms",
                        "    sinks: out"}));
    CHECK(c.agents.empty());
    REQUIRE(c.timers.size() == 1);
    CHECK(c.timers[0].agent == "tick");
    CHECK(c.timers[0].every == 500ms);
    CHECK(c.source_topics().empty());
}

TEST_CASE("config: a chain of agents is not a cycle") {
    Fixture f;
    auto c = f.ok(yaml({"app: shop", "topics:", "  t1:", "  t2:", "  t3:", "agents:", "  a:", "    plugin: p",
                        "    from: t1", "    sinks: [t2, t3]", "  b:", "    plugin: p", "    from: t2",
                        "    sinks: t3", "  c:", "    plugin: p", "    from: [t2, t3]"}));
    CHECK(c.agents.size() == 3);
}

TEST_CASE("config: load_config reads a file and resolves plugins next to it") {
    Fixture f;
    const fs::path file = f.tmp.path() / "shop.yaml";
    std::ofstream(file) << yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t"});
    auto c = load_config(file);
    REQUIRE_MESSAGE(c.ok(), c.error());
    CHECK(c->file == file);
    CHECK(c->plugin_dir == (f.tmp.path() / "plugins.d").lexically_normal());

    auto missing = load_config(f.tmp.path() / "nope.yaml");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == (f.tmp.path() / "nope.yaml").string() + ": cannot open: No such file or directory");
}

// ---------------------------------------------------------------------------------------------------------
// Errors: one message, file:line:column, pointing at the offending node
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("config: unknown top-level key") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  orders:", "agnets:", "  a:"}), 4, 1,
            {"unknown key 'agnets' in the pipeline", "expected one of: app, broker,", "agents"});
}

TEST_CASE("config: unknown key inside an agent") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
                  "    form: orders"}),
            8, 5,
            {"unknown key 'form' in agents.a",
             "(expected one of: plugin, agent, from, sinks, tables, params, on_error, supervisor, group_by, through, take, concurrency, echo, filter, ack, isolated_partitions, on_crash)"});
}

TEST_CASE("config: ack is auto or manual, and isolated_partitions: false is refused with the reason") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
                  "    ack: sometimes"}),
            8, 10, {"agents.a.ack must be `auto`", "`manual`", "found 'sometimes'"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
                  "    isolated_partitions: false"}),
            8, 26, {"agents.a.isolated_partitions: false is not supported", "one instance per assigned partition"});
    auto c = f.ok(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
                        "    ack: manual", "    isolated_partitions: true", "  b:", "    plugin: p", "    from: orders"}));
    REQUIRE(c.agents.size() == 2);
    CHECK(c.agents[0].manual_ack);
    CHECK_FALSE(c.agents[1].manual_ack);
}

TEST_CASE("config: channels are read by one agent each way, without tables, and are not subscribed to") {
    Fixture f;
    auto c = f.ok(yaml({"app: shop", "topics:", "  orders:", "channels:", "  scored: {}", "agents:", "  a:",
                        "    plugin: p", "    from: orders", "    sinks: [scored]", "  b:", "    plugin: p",
                        "    from: scored"}));
    REQUIRE(c.channels.size() == 1);
    CHECK(c.channel("scored") != nullptr);
    CHECK(c.source_topics() == std::vector<std::string>{"orders"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "channels:", "  scored:", "agents:", "  b:", "    plugin: p",
                  "    from: [scored, orders]"}),
            9, 11, {"agents.b.from: an agent reads one channel, or topics only, not both"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "channels:", "  scored:", "tables:", "  t: {}", "agents:", "  b:",
                  "    plugin: p", "    from: scored", "    tables: [t]"}),
            12, 13, {"agents.b: an agent reading a channel cannot use tables"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "channels:", "  orders:", "agents:", "  b:", "    plugin: p",
                  "    from: orders"}),
            5, 3, {"channels.orders: a topic of that name is declared too"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  b:", "    plugin: p", "    from: scored"}), 7, 11,
            {"agents.b.from names topic 'scored', which is not declared under topics or channels"});
    // maxsize (Faust's channel maxsize): 20 000 by default, at least 4, and no other setting.
    CHECK(c.channels[0].maxsize == 20000);
    auto sized = f.ok(yaml({"app: shop", "topics:", "  orders:", "channels:", "  scored: {maxsize: 500}", "agents:",
                            "  b:", "    plugin: p", "    from: scored"}));
    CHECK(sized.channels[0].maxsize == 500);
    f.error(yaml({"app: shop", "channels:", "  scored: {maxsize: 2}"}), 3, 21, {"channels.scored.maxsize"});
    f.error(yaml({"app: shop", "channels:", "  scored: {buffer: 2}"}), 3, 12, {"unknown key 'buffer' in channels.scored"});
}

TEST_CASE("config: wrong type: partitions: many") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  orders:", "    partitions: many"}), 4, 17,
            {"topics.orders.partitions must be an integer, found 'many'"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "    partitions: [1, 2]"}), 4, 17,
            {"topics.orders.partitions must be an integer, found a list"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "    partitions: 4x"}), 4, 17,
            {"topics.orders.partitions must be an integer, found '4x'"});
}

TEST_CASE("config: other wrong types") {
    Fixture f;
    f.error(yaml({"app: shop", "agents: [a, b]"}), 2, 9, {"agents must be a mapping, found a list"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a: p"}), 5, 6, {"agents.a must be a mapping, found 'p'"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    params: {limit: [1, 2]}"}),
            8, 21, {"agents.a.params.limit must be a single value, found a list"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: {t: 1}"}), 7, 11,
            {"agents.a.from must be a name or a list of names, found a mapping"});
    f.error(yaml({"app: shop", "topics:", "  t:", "    key: protobuf"}), 4, 10,
            {"topics.t.key must be one of: raw, bytes, json; found 'protobuf'"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    on_error: {then: retry_forever}"}),
            8, 22, {"agents.a.on_error.then must be one of: skip, dead_letter, crash; found 'retry_forever'"});
    f.error(yaml({"app: my shop"}), 1, 6, {"app 'my shop' may only contain letters, digits, '_', '-' and '.'"});
}

TEST_CASE("config: out-of-range integers") {
    Fixture f;
    f.error(yaml({"app: shop", "workers: 0"}), 2, 10, {"workers must be between 1 and 256, found 0"});
    f.error(yaml({"app: shop", "workers: 1000"}), 2, 10, {"workers must be between 1 and 256, found 1000"});
    f.error(yaml({"app: shop", "topics:", "  t:", "    partitions: 0"}), 4, 17,
            {"topics.t.partitions must be between 1 and 100000, found 0"});
    f.error(yaml({"app: shop", "topics:", "  t:", "    partitions: 99999999999999999999999"}), 4, 17,
            {"topics.t.partitions must be an integer"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    on_error:", "      retry: -1"}),
            9, 14, {"agents.a.on_error.retry must be between 0 and 1000, found -1"});
}

TEST_CASE("config: bad durations") {
    Fixture f;
    f.error(yaml({"app: shop", "commit_interval: 10x"}), 2, 18,
            {"commit_interval: '10x' has an unknown unit 'x' (use ms, s, m, h or d)"});
    f.error(yaml({"app: shop", "shutdown_timeout: soon"}), 2, 19,
            {"shutdown_timeout: 'soon' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)"});
    f.error(yaml({"app: shop", "commit_interval: 5ms"}), 2, 18, {"commit_interval must be at least 10ms"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    supervisor:", "      within: {seconds: 3}"}),
            9, 15, {"agents.a.supervisor.within must be a duration such as 10s, found a mapping"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    supervisor:", "      backoff: 2s", "      max_backoff: 1s"}),
            9, 7, {"agents.a.supervisor: max_backoff must not be shorter than backoff"});
    f.error(yaml({"app: shop", "topics:", "  t:", "timers:", "  tick:", "    plugin: p", "    every: 0s"}), 7, 12,
            {"timers.tick.every must be at least 1ms"});
}

TEST_CASE("config: duplicate agent name (a duplicate YAML key)") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders", "  a:",
                  "    plugin: p", "    from: orders"}),
            8, 3, {"duplicate key 'a' in agents"});
}

TEST_CASE("config: duplicate keys anywhere are refused, not silently merged") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    plugin: q"}),
            8, 5, {"duplicate key 'plugin' in agents.a"});
    f.error(yaml({"app: shop", "topics:", "  t:", "  t:"}), 4, 3, {"duplicate key 't' in topics"});
    f.error(yaml({"app: shop", "workers: 2", "workers: 3"}), 3, 1, {"duplicate key 'workers' in the pipeline"});
}

TEST_CASE("config: from naming an undeclared topic (a dangling reference)") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: [orders, payments]"}),
            7, 20, {"agents.a.from names topic 'payments', which is not declared under topics"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: order"}), 7, 11,
            {"agents.a.from names topic 'order', which is not declared under topics"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
                  "    sinks:", "      - orders", "      - outbox"}),
            10, 9, {"agents.a.sinks names topic 'outbox', which is not declared under topics"});
    f.error(yaml({"app: shop", "agents:", "  a:", "    plugin: p", "    from: orders"}), 5, 11,
            {"agents.a.from names topic 'orders', which is not declared under topics"});
}

TEST_CASE("config: missing plugin file") {
    Fixture f;
    TempDir empty;
    const std::string dir = empty.path().string();
    f.error(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
                  "plugins: {dir: " + dir + "}"}),
            6, 13, {"agents.a.plugin: plugin 'p' not found: no file " + (empty.path() / "p.so").string()});
    // The same pipeline with the file present loads.
    make_plugin_file(empty.path(), "p");
    f.ok(yaml({"app: shop", "topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders",
               "plugins: {dir: " + dir + "}"}));
    // A timer's plugin is checked too.
    f.error(yaml({"app: shop", "topics:", "  t:", "timers:", "  tick:", "    plugin: ghost", "    every: 1s"}), 6, 13,
            {"timers.tick.plugin: plugin 'ghost' not found: no file "});
}

TEST_CASE("config: a folder named like the plugin is not a plugin") {
    Fixture f;
    fs::create_directories(f.tmp.path() / "plugins.d" / "dir.so");
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: dir", "    from: t"}), 6, 13,
            {"plugin 'dir' not found"});
}

TEST_CASE("config: missing required keys") {
    Fixture f;
    f.error(yaml({"topics:", "  orders:", "agents:", "  a:", "    plugin: p", "    from: orders"}), 1, 1,
            {"missing 'app': every pipeline needs an app id"});
    f.error(yaml({"# the shop pipeline", "topics:", "  orders:"}), 2, 1, {"missing 'app'"});
    f.error(yaml({"app:", "  version: 2"}), 2, 3, {"app needs an id (the consumer group id)"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    from: t"}), 6, 5,
            {"agents.a needs 'plugin' (the plugin file name without .so)"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p"}), 6, 5,
            {"agents.a needs 'from' (the topic it reads)"});
    f.error(yaml({"app: shop", "topics:", "  t:", "timers:", "  tick:", "    plugin: p"}), 6, 5,
            {"timers.tick needs either 'every'"});
    f.error(yaml({"app: shop", "topics:", "  t:"}), 1, 1, {"the pipeline declares no agents and no timers"});
}

TEST_CASE("config: invalid YAML syntax") {
    Fixture f;
    // yaml-cpp's own messages; the position is where the parser gave up.
    f.error(yaml({"app: shop", "topics:", "  orders: {partitions: 4", "agents:"}), 4, 7,
            {"invalid YAML: end of map flow not found"});
    f.error(yaml({"app: shop", "topics:", "  orders:", "    partitions: 4", "   key: raw"}), 5, 4,
            {"invalid YAML: end of map not found"});
    f.error(yaml({"app: shop", "  workers: 2"}), 2, 10, {"invalid YAML: illegal map value"});
    f.error(yaml({"app: shop", "topics: [a, b"}), 3, 1, {"invalid YAML: end of sequence flow not found"});
}

TEST_CASE("config: an empty file") {
    Fixture f;
    f.error("", 1, 1, {"the file is empty: expected a pipeline with app, topics and agents"});
    f.error(yaml({"# nothing here yet", ""}), 1, 1, {"the file is empty"});
    f.error(yaml({"just words"}), 1, 1, {"the pipeline must be a mapping, found 'just words'"});
}

TEST_CASE("config: a cycle of two agents through their sinks") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  t1:", "  t2:", "agents:", "  a:", "    plugin: p", "    from: t1",
                  "    sinks: t2", "  b:", "    plugin: p", "    from: t2", "    sinks: t1"}),
            7, 13, {"agents form a cycle through their sinks: a -> b -> a (topic 't1')"});
}

TEST_CASE("config: an agent writing to the topic it reads is a cycle") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  t:", "  u:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "  loop:", "    plugin: p", "    from: [t, u]", "    sinks: u"}),
            10, 13, {"agents form a cycle through their sinks: loop -> loop (topic 'u')"});
}

TEST_CASE("config: a longer cycle names every agent on it") {
    Fixture f;
    f.error(yaml({"app: shop", "topics:", "  t1:", "  t2:", "  t3:", "agents:", "  a:", "    plugin: p",
                  "    from: t1", "    sinks: t2", "  b:", "    plugin: p", "    from: t2", "    sinks: t3", "  c:",
                  "    plugin: p", "    from: t3", "    sinks: t1"}),
            8, 13, {"a -> b -> c -> a (topic 't1')"});
}

TEST_CASE("config: processing_guarantee: exactly_once is refused") {
    Fixture f;
    f.error(yaml({"app: shop", "processing_guarantee: exactly_once"}), 2, 23,
            {"processing_guarantee: exactly_once is not supported by this version yet; use at_least_once"});
    f.error(yaml({"app: shop", "processing_guarantee: maybe"}), 2, 23,
            {"processing_guarantee must be one of: at_least_once, exactly_once; found 'maybe'"});
}

TEST_CASE("config: a dead-letter topic without then: dead_letter") {
    Fixture f;
    // The policy mapping is what is inconsistent: the error points at it (its first key).
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t", "    on_error:",
                  "      retry: 2", "      topic: t-dlq"}),
            9, 7, {"agents.a.on_error: topic is only meaningful with then: dead_letter"});
    f.error(yaml({"app: shop", "topics:", "  t:", "agents:", "  a:", "    plugin: p", "    from: t",
                  "    on_error: {then: skip, topic: t-dlq}"}),
            8, 15, {"agents.a.on_error: topic is only meaningful with then: dead_letter"});
}

// ---------------------------------------------------------------------------------------------------------
// Tables and repartitioning
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("config: tables, an agent's tables and group_by become a repartition agent and topic") {
    Fixture f;
    auto c = f.ok("app: {id: shop}\n"
                  "topics: {views: {partitions: 6, value: json}}\n"
                  "tables:\n  counts: {value: int64}\n  names: {store: memory, value: json, default: '{}', global: true}\n"
                  "agents:\n  count: {plugin: p, from: views, tables: [counts, names], group_by: {field: id},\n"
                  "          on_error: {retry: 2, then: dead_letter}}\n");
    REQUIRE(c.tables.size() == 2);
    CHECK(c.tables[0].changelog_topic == "shop-counts-changelog");
    CHECK(c.tables[0].default_value == std::string(8, '\0'));  // int64 counters start at 0
    CHECK(c.tables[1].store == StoreKind::memory);
    CHECK(c.tables[1].default_value == "{}");
    CHECK(!c.tables[0].global);
    CHECK(c.tables[1].global);
    CHECK(c.state_dir == (f.tmp.path() / "shop-data").lexically_normal());
    REQUIRE(c.agents.size() == 2);
    const AgentSpec& re = c.agents[0];
    const AgentSpec& count = c.agents[1];
    CHECK(re.name == "count-repartition");
    CHECK(re.builtin == "repartition");
    CHECK(re.from == std::vector<std::string>{"views"});
    CHECK(re.params.at("field") == "id");
    CHECK(re.params.at("topic") == "shop-count-id-repartition");
    CHECK(re.on_error.retry == 0);  // a value without the field is bad input: the policy applies at once
    CHECK(re.on_error.then == ThenPolicy::dead_letter);
    CHECK(count.from == std::vector<std::string>{"shop-count-id-repartition"});
    CHECK(count.tables == std::vector<std::string>{"counts", "names"});
    const TopicSpec* topic = c.topic("shop-count-id-repartition");
    REQUIRE(topic);
    CHECK(topic->partitions == 6);
    CHECK(topic->value == Codec::json);
}

TEST_CASE("config: table and group_by mistakes name their place") {
    Fixture f;
    f.error("app: a\ntopics: {t: {}}\nagents:\n  x: {plugin: p, from: t, tables: [nope]}\n", 4, 36,
            {"agents.x.tables names table 'nope', which is not declared under tables"});
    f.error("app: a\ntopics: {t: {}}\ntables: {c: {value: int64, default: many}}\nagents: {x: {plugin: p, from: t}}\n",
            3, 37, {"tables.c.default must be an integer"});
    f.error("app: a\ntopics: {t: {}}\ntables: {c: {value: text}}\nagents: {x: {plugin: p, from: t}}\n", 3, 21,
            {"tables.c.value must be one of: raw, bytes, int64, double, json"});
    f.error("app: a\ntopics: {t: {}}\ntables: {c: {global: perhaps}}\nagents: {x: {plugin: p, from: t}}\n", 3, 22,
            {"tables.c.global must be"});
    f.error("app: a\ntopics: {t: {}}\nagents:\n  x: {plugin: p, from: t, group_by: [id]}\n", 4, 37,
            {"agents.x.group_by must be `key`, {field: NAME} or {plugin: P, function: NAME}"});
    f.error("app: a\ntopics: {t: {}}\nagents:\n  x: {plugin: p, from: t, group_by: {plugin: p}}\n", 4, 37,
            {"agents.x.group_by needs both plugin and function"});
    f.error("app: a\ntopics: {t: {}}\ntables: {c: {aggregate: {plugin: p, function: f}}}\nagents: {x: {plugin: p, from: t}}\n",
            3, 37, {"unknown key 'function' in tables.c.aggregate (expected one of: plugin, name)"});
    f.error("app: a\ntopics: {t: {value: {codec: msgpack}}}\nagents: {x: {plugin: p, from: t}}\n", 2, 21,
            {"topics.t.value needs both plugin and codec"});
    f.error("app: a\ntopics: {t: {}, u: {}}\nagents:\n  x: {plugin: p, from: t, group_by: key, through: u}\n", 4, 51,
            {"use either group_by or through, not both"});
}

TEST_CASE("config: windowed tables parse, with the documented defaults, and bad windows are named") {
    Fixture f;
    const std::string head = "app: shop\ntopics: {in: {}}\n";
    const std::string agents = "agents: {a: {plugin: p, from: in, tables: [t]}}\n";
    auto c = f.ok(head + "tables: {t: {value: int64, window: {tumbling: 60s, grace: 10s, relative_to: {field: ts}}}}\n" + agents);
    REQUIRE(c.tables[0].window);
    const WindowSpec& w = *c.tables[0].window;
    CHECK(w.kind == WindowKind::tumbling);
    CHECK(w.size == 60s);
    CHECK(w.grace == 10s);
    CHECK(w.expires == 10s);  // default: removed when it closes
    CHECK(w.relative_to == TimeSource::field);
    CHECK(w.time_field == "ts");
    auto h = f.ok(head + "tables: {t: {window: {hopping: {size: 1m, step: 20s}, expires: 1h, relative_to: now}}}\n" + agents);
    CHECK(h.tables[0].window->kind == WindowKind::hopping);
    CHECK(h.tables[0].window->step == 20s);
    CHECK(h.tables[0].window->relative_to == TimeSource::now);
    auto s = f.ok(head + "tables: {t: {window: {session: 30s, grace: 5s}}}\n" + agents);
    CHECK(s.tables[0].window->kind == WindowKind::session);
    CHECK(s.tables[0].window->expires == 35s);  // gap + grace

    f.error(head + "tables: {t: {window: {tumbling: 60s, sliding: {before: 1s}}}}\n" + agents, 3, 22,
            {"exactly one of tumbling, hopping, sliding or session"});
    f.error(head + "tables: {t: {window: {tumbling: 60s, grace: 1m, expires: 10s}}}\n" + agents, 3, 22,
            {"expires must be at least the grace period"});
    f.error(head + "tables: {t: {window: {session: 10s, expires: 5s}}}\n" + agents, 3, 22,
            {"at least the gap plus the grace period"});
    f.error(head + "tables: {t: {window: {hopping: {size: 10s, step: 20s}}}}\n" + agents, 3, 32,
            {"step must not exceed size"});
    f.error(head + "tables: {t: {window: {tumbling: 60s, relative_to: event}}}\n" + agents, 3, 51,
            {"relative_to must be one of: stream, now"});
    f.error(head + "tables: {t: {global: true, window: {tumbling: 60s}}}\n" + agents, 3, 13,
            {"a global table cannot be windowed"});
}

TEST_CASE("config: standby_replicas, per pipeline and per table, default 0, none on a global table") {
    Fixture f;
    const std::string head = "app: shop\ntopics: {in: {}}\n";
    const std::string agents = "agents: {a: {plugin: p, from: in, tables: [t, u, g]}}\n";
    auto none = f.ok(head + "tables: {t: {}, u: {}, g: {global: true}}\n" + agents);
    CHECK(none.standby_replicas == 0);
    CHECK(none.tables[0].standby_replicas == 0);
    auto c = f.ok(head + "standby_replicas: 1\ntables: {t: {}, u: {standby_replicas: 2}, g: {global: true}}\n" + agents);
    CHECK(c.standby_replicas == 1);
    CHECK(c.tables[0].standby_replicas == 1);  // the pipeline's
    CHECK(c.tables[1].standby_replicas == 2);  // its own
    CHECK(c.tables[2].standby_replicas == 0);  // every host holds a global table whole
    auto off = f.ok(head + "standby_replicas: 2\ntables: {t: {standby_replicas: 0}, u: {}, g: {global: true}}\n" + agents);
    CHECK(off.tables[0].standby_replicas == 0);
    f.error(head + "standby_replicas: 17\ntables: {t: {}}\n" + agents, 3, 19, {"standby_replicas must be"});
    f.error(head + "tables: {t: {standby_replicas: -1}}\n" + agents, 3, 32, {"tables.t.standby_replicas must be"});
    f.error(head + "tables: {t: {global: true, standby_replicas: 1}}\n" + agents, 3, 46,
            {"a global table is on every host already; standby_replicas does not apply"});
}

TEST_CASE("config: static_membership, and no group.instance.id shared by every host through the file") {
    Fixture f;
    const std::string body = "topics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n";
    CHECK(!f.ok("app: shop\n" + body).static_membership);
    CHECK(f.ok("app: shop\nstatic_membership: true\n" + body).static_membership);
    f.error("app: shop\nconsumer: {group.instance.id: one}\n" + body, 2, 31,
            {"consumer.group.instance.id would be the same on every host", "use static_membership: true"});
}

TEST_CASE("config: warm_up is off by default, true takes the defaults, a mapping sets them") {
    Fixture f;
    const std::string body = "topics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n";
    CHECK(!f.ok("app: shop\n" + body).warm_up.enabled);
    const auto on = f.ok("app: shop\nwarm_up: true\n" + body).warm_up;
    CHECK(on.enabled);
    CHECK(on.acceptable_lag == 10'000);  // Kafka Streams' acceptable.recovery.lag
    CHECK(on.timeout == 600'000ms);
    const auto set = f.ok("app: shop\nwarm_up: {acceptable_lag: 500, timeout: 2m}\n" + body).warm_up;
    CHECK(set.enabled);
    CHECK(set.acceptable_lag == 500);
    CHECK(set.timeout == 120'000ms);
    CHECK(!f.ok("app: shop\nwarm_up: false\n" + body).warm_up.enabled);
    f.error("app: shop\nwarm_up: soon\n" + body, 2, 10, {"warm_up (true, false, or a mapping of acceptable_lag and timeout) must be true or false"});
    f.error("app: shop\nwarm_up: {acceptable_lag: -1}\n" + body, 2, 27, {"warm_up.acceptable_lag must be"});
    f.error("app: shop\nwarm_up: {timeout: 0s}\n" + body, 2, 20, {"warm_up.timeout must be positive"});
    f.error("app: shop\nwarm_up: {lag: 5}\n" + body, 2, 11, {"unknown key 'lag' in warm_up"});
}

TEST_CASE("config: take gathers batches for on_batch") {
    Fixture f;
    auto c = f.ok("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, take: {max: 50, within: 250ms}}}\n");
    REQUIRE(c.agents[0].take);
    CHECK(c.agents[0].take->max == 50);
    CHECK(c.agents[0].take->within == 250ms);
    f.error("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, take: {max: 0}}}\n", 3, 47,
            {"take.max must be between 1 and 100000"});
    f.error("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, take: {within: 0s}}}\n", 3, 41,
            {"take.within must be positive"});
}

TEST_CASE("config: timers run every interval or on a cron schedule in a time zone, optionally on the leader only") {
    Fixture f;
    auto c = f.ok("app: shop\ntimers:\n  nightly: {plugin: p, cron: '30 2 * * *', timezone: Europe/Paris, on_leader: true}\n"
                  "  often: {plugin: p, every: 5s}\n");
    CHECK(c.timers[0].cron == "30 2 * * *");
    CHECK(c.timers[0].timezone == "Europe/Paris");
    CHECK(c.timers[0].on_leader);
    CHECK(c.timers[1].timezone == "UTC");
    CHECK_FALSE(c.timers[1].on_leader);
    CHECK(c.has_leader_timers());
    CHECK(c.leader_topic() == "shop-__leader");
    f.error("app: shop\ntimers: {t: {plugin: p, every: 5s, cron: '* * * * *'}}\n", 2, 13, {"either 'every'", "or 'cron'"});
    f.error("app: shop\ntimers: {t: {plugin: p, cron: '61 * * * *'}}\n", 2, 31, {"the minute field has 61, outside 0-59"});
    // Found by the fuzzer: a number past int's range threw out of the loader and crashed the host.
    f.error("app: shop\ntimers: {t: {plugin: p, cron: '0 8888888888880 29 feb *'}}\n", 2, 31,
            {"the hour field has 8888888888880, outside 0-23"});
    f.error("app: shop\ntimers: {t: {plugin: p, cron: '* * * * *', timezone: Mars/Base}}\n", 2, 54,
            {"unknown time zone 'Mars/Base'"});
    f.error("app: shop\ntimers: {t: {plugin: p, every: 1s, timezone: UTC}}\n", 2, 46, {"applies to a cron schedule only"});
}

TEST_CASE("config: concurrency is 1 by default, 1 to 256") {
    Fixture f;
    auto c = f.ok("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}, b: {plugin: p, from: in, concurrency: 8}}\n");
    CHECK(c.agents[0].concurrency == 1);
    CHECK(c.agents[1].concurrency == 8);
    f.error("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, concurrency: 0}}\n", 3, 48,
            {"concurrency must be between 1 and 256"});
}

TEST_CASE("config: echo names declared topics") {
    Fixture f;
    auto c = f.ok("app: shop\ntopics: {in: {}, audit: {}}\nagents: {a: {plugin: p, from: in, echo: audit}}\n");
    CHECK(c.agents[0].echo == std::vector<std::string>{"audit"});
    f.error("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, echo: [nowhere]}}\n", 3, 42,
            {"agents.a.echo names topic 'nowhere', which is not declared under topics"});
}

TEST_CASE("config: session windows take no aggregator, and cooperative rebalancing is refused") {
    Fixture f;
    f.error("app: shop\ntopics: {in: {}}\ntables: {t: {window: {session: 5s}, aggregate: {plugin: p, name: max}}}\n"
            "agents: {a: {plugin: p, from: in, tables: [t]}}\n",
            3, 13, {"an aggregator cannot combine two aggregates"});
    f.error("app: shop\nconsumer: {partition.assignment.strategy: cooperative-sticky}\ntopics: {in: {}}\n"
            "agents: {a: {plugin: p, from: in}}\n",
            2, 43, {"cooperative rebalancing is not supported"});
}

TEST_CASE("config: filter names a plugin's predicate") {
    Fixture f;
    auto c = f.ok("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, filter: {plugin: p, predicate: no_spam}}}\n");
    CHECK(c.agents[0].filter.plugin == "p");
    CHECK(c.agents[0].filter.name == "no_spam");
    f.error("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, filter: {plugin: p}}}\n", 3, 43,
            {"agents.a.filter needs both plugin and predicate"});
}

TEST_CASE("config: hung_callback_after, broker_unreachable_timeout and plugins.load_timeout, with their defaults") {
    Fixture f;
    auto defaults = f.ok("app: shop\ntimers: {t: {plugin: p, every: 1s}}\n");
    CHECK(defaults.hung_callback_after == Millis(30'000));
    CHECK(defaults.broker_unreachable_timeout == Millis(0));  // off
    CHECK(defaults.plugin_load_timeout == Millis(10'000));
    auto c = f.ok("app: shop\nhung_callback_after: 5s\nbroker_unreachable_timeout: 2m\nplugins: {load_timeout: 1m}\n"
                  "timers: {t: {plugin: p, every: 1s}}\n");
    CHECK(c.hung_callback_after == Millis(5'000));
    CHECK(c.broker_unreachable_timeout == Millis(120'000));
    CHECK(c.plugin_load_timeout == Millis(60'000));
    CHECK(f.ok("app: shop\nbroker_unreachable_timeout: off\ntimers: {t: {plugin: p, every: 1s}}\n")
              .broker_unreachable_timeout == Millis(0));
    f.error("app: shop\nhung_callback_after: 0s\ntimers: {t: {plugin: p, every: 1s}}\n", 2, 22, {"must be positive"});
    f.error("app: shop\nbroker_unreachable_timeout: soon\ntimers: {t: {plugin: p, every: 1s}}\n", 2, 29,
            {"broker_unreachable_timeout (or off)"});
    f.error("app: shop\nplugins: {load_timeout: 0ms}\ntimers: {t: {plugin: p, every: 1s}}\n", 2, 25,
            {"plugins.load_timeout must be positive"});
}

TEST_CASE("config: isolation, the worker's supervisor and an agent's on_crash, with their defaults") {
    Fixture f;
    auto defaults = f.ok("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n");
    CHECK_FALSE(defaults.isolation.has_value());  // chosen by how many pipelines run
    CHECK(defaults.worker_restart.max_restarts == 5);
    CHECK(defaults.agents[0].quarantine_after == 3);
    auto c = f.ok("app: shop\nisolation: none\nsupervisor: {max_restarts: 2, within: 10s, backoff: 1s}\n"
                  "topics: {in: {}}\nagents: {a: {plugin: p, from: in, on_crash: {quarantine_after: 0}}}\n");
    CHECK(c.isolation == Isolation::none);
    CHECK(c.worker_restart.max_restarts == 2);
    CHECK(c.worker_restart.within == Millis(10'000));
    CHECK(c.worker_restart.backoff_initial == Millis(1'000));
    CHECK(c.agents[0].quarantine_after == 0);
    f.error("app: shop\nisolation: thread\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2, 12, {"isolation"});
    f.error("app: shop\nsupervisor: {strategy: one_for_all}\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2,
            24, {"supervisor.strategy is for agents"});
    f.error("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in, on_crash: {after: 2}}}\n", 3, 46,
            {"quarantine_after"});
}

TEST_CASE("config: callback_timeout and limits of a pipeline's worker, and sizes as written") {
    Fixture f;
    auto defaults = f.ok("app: shop\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n");
    CHECK(defaults.callback_timeout == Millis(0));  // off
    CHECK(defaults.memory_limit == 0);
    CHECK(defaults.cpu_limit == 0);
    auto c = f.ok("app: shop\ncallback_timeout: 30s\nlimits: {memory: 512MiB, cpu: 0.5}\n"
                  "topics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n");
    CHECK(c.callback_timeout == Millis(30'000));
    CHECK(c.memory_limit == 512ull << 20);
    CHECK(c.cpu_limit == 0.5);
    CHECK(f.ok("app: shop\ncallback_timeout: off\nlimits: {memory: 2GB}\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n")
              .memory_limit == 2'000'000'000ull);
    f.error("app: shop\nlimits: {memory: 512 potatoes}\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2, 18,
            {"limits.memory", "unknown unit"});
    f.error("app: shop\nlimits: {memory: 1MiB}\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2, 18,
            {"at least 64MiB"});
    f.error("app: shop\nlimits: {cpu: lots}\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2, 15,
            {"limits.cpu"});
    f.error("app: shop\nlimits: {disk: 1GiB}\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2, 10, {"disk"});
    f.error("app: shop\ncallback_timeout: soon\ntopics: {in: {}}\nagents: {a: {plugin: p, from: in}}\n", 2, 19,
            {"callback_timeout"});

    CHECK(mephisto::parse_byte_size("64KiB").value() == 65536);
    CHECK(mephisto::parse_byte_size("1000").value() == 1000);
    CHECK(mephisto::parse_byte_size("3 TiB").value() == 3ull << 40);
    CHECK_FALSE(mephisto::parse_byte_size("").ok());
    CHECK_FALSE(mephisto::parse_byte_size("-5MiB").ok());
    CHECK_FALSE(mephisto::parse_byte_size("99999999999999999TiB").ok());
    CHECK(mephisto::format_byte_size(256ull << 20) == "256 MiB");
    CHECK(mephisto::format_byte_size(1000) == "1000 bytes");
}
