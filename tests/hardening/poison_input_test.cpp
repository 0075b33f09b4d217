// Hostile input that once stopped a host for good (issue 11, findings 1 and 2, and 8's pointless retry): a
// value nested 100,000 deep, and events too large to dead-letter whole. Each now follows the agent's error
// policy, the events around it pass, and the host keeps running.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

constexpr int16_t kProduceRequest = 0;  // the Kafka protocol's ApiKey of Produce

// {"id": [[[ ... ]]]}: an array nested `depth` deep under the field group_by reads.
std::string deeply_nested(int depth) {
    return "{\"id\": " + std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']') + "}";
}

bool has_value(const std::vector<Record>& records, const std::string& value) {
    for (const auto& r : records)
        if (r.value == value) return true;
    return false;
}

// App `app`: agent fwd (test_agents' forward) from `in` to `out`, one partition each, with `in` declared as
// `in_decl` and `agent_extra` added to the agent (its error policy, params...). The dead-letter topic
// <app>-fwd-dead-letter has one partition; `brokers` mock brokers serve them all.
struct ForwardHost {
    Broker broker;
    TempDir dir;
    std::string app;
    std::unique_ptr<HostProcess> host;
    std::unique_ptr<TopicReader> out, dead;

    ForwardHost(const std::string& app_id, const std::string& in_decl, const std::string& agent_extra, int brokers = 1,
                const std::function<void(Broker&)>& before_start = {})
        : broker(brokers), app(app_id) {
        for (const std::string& topic : std::vector<std::string>{"in", "out", app + "-fwd-dead-letter"})
            broker.create_topic(topic, 1);
        if (before_start) before_start(broker);
        auto yaml = dir.write("p.yaml", pipeline_yaml(app, "topics:\n  in: " + in_decl + "\n  out: {partitions: 1}\n"
                                                           "agents:\n  fwd:\n    plugin: test_agents\n    agent: forward\n"
                                                           "    from: in\n    sinks: [out]\n" + agent_extra));
        host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
        out = std::make_unique<TopicReader>(broker.bootstrap(), "out", 1);
        dead = std::make_unique<TopicReader>(broker.bootstrap(), app + "-fwd-dead-letter", 1);
    }
    void send(const std::vector<Message>& messages) { produce(broker.bootstrap(), "in", messages); }
    const Record& first_dead_letter() {
        REQUIRE(dead->read_until([](auto& r) { return !r.empty(); }, 30s));
        return dead->records().front();
    }
    // Everything was read and committed, and the host stops cleanly.
    void finish() {
        CHECK(await_caught_up(broker.bootstrap(), app, "in", 1, 30s));
        CHECK(host->running());
        CHECK(host->stop(SIGTERM, 30s) == 0);
    }
};

}  // namespace

TEST_CASE("a value nested 100000 deep in a group_by field is dead-lettered, and the events around it pass") {
    ForwardHost h("deep", "{partitions: 1}", "    group_by: {field: id}\n    on_error: {retry: 2, then: dead_letter}\n");
    // A raw topic: only the group_by field extraction stands between this value and the stack.
    h.send({{"a", std::string("{\"id\": \"a\"}"), {}, -1},
            {"deep", deeply_nested(100'000), {}, -1},
            {"b", std::string("{\"id\": \"b\"}"), {}, -1}});
    CHECK(h.out->read_until([](auto& r) { return r.size() >= 2; }, 30s));
    const Record& letter = h.first_dead_letter();
    CHECK(letter.value == deeply_nested(100'000));  // the value itself, intact
    CHECK(letter.header("mephisto.error").find("nested deeper than") != std::string::npos);
    CHECK(letter.header("mephisto.source") == "in[0]@1");
    h.finish();
}

TEST_CASE("a json topic refuses a value nested deeper than the bound as undecodable, at once, without retries") {
    ForwardHost h("deepjson", "{partitions: 1, value: json}", "    on_error: {retry: 3, backoff: 2s, then: dead_letter}\n");
    h.send({{"deep", "[" + deeply_nested(2000) + "]", {}, -1},
            {"broken", std::string("{\"id\": "), {}, -1},
            {"fine", std::string("{\"id\": 1}"), {}, -1}});
    REQUIRE(h.dead->read_until([](auto& r) { return r.size() >= 2; }, 30s));
    CHECK(h.dead->records()[0].header("mephisto.error").find("nested deeper than") != std::string::npos);
    CHECK(h.dead->records()[1].header("mephisto.error").find("not valid JSON") != std::string::npos);
    CHECK(h.out->read_until([](auto& r) { return !r.empty(); }, 30s));
    // Undecodable input goes to its policy at once: a retry (2 s of backoff each) could not change it.
    CHECK(h.host->count_in_log("asked to retry") == 0);
    h.finish();
}

TEST_CASE("an undecodable event of 2 MB is dead-lettered without its value, with a note, and the host runs on") {
    ForwardHost h("big", "{partitions: 1, value: json}", "    on_error: {retry: 0, then: dead_letter}\n");
    const std::string huge(2 * 1024 * 1024, 'x');  // not JSON
    h.send({{"k", std::string("{\"n\": 1}"), {}, -1}, {"k", huge, {{"trace", "t-1"}}, -1}, {"k", std::string("{\"n\": 2}"), {}, -1}});
    const Record& letter = h.first_dead_letter();
    CHECK_FALSE(letter.value.has_value());
    CHECK(letter.key == "k");
    CHECK(letter.header("trace") == "t-1");  // the event's own headers, kept
    CHECK(letter.header("mephisto.source") == "in[0]@1");
    CHECK(letter.header("mephisto.value-dropped").find("2097152 bytes") != std::string::npos);
    CHECK(h.out->read_until([](auto& r) { return has_value(r, "{\"n\": 2}"); }, 30s));
    h.finish();
}

TEST_CASE("a raw event of 1.5 MB an agent fails on is dead-lettered without its value, and the host runs on") {
    ForwardHost h("bigraw", "{partitions: 1}",
                  "    params: {retry_on: poison}\n    on_error: {retry: 1, backoff: 10ms, then: dead_letter}\n");
    const std::string huge = "poison" + std::string(1536 * 1024, 'p');
    h.send({{"k", huge, {}, -1}, {"k", std::string("after"), {}, -1}});
    const Record& letter = h.first_dead_letter();
    CHECK_FALSE(letter.value.has_value());
    CHECK(letter.header("mephisto.value-dropped").find(std::to_string(huge.size()) + " bytes") != std::string::npos);
    CHECK(letter.header("mephisto.error") == "not yet");
    CHECK(h.out->read_until([](auto& r) { return has_value(r, "after"); }, 30s));
    h.finish();
}

TEST_CASE("a dead letter the broker refuses as too large is sent again without its value") {
    // Two brokers: the dead-letter topic's leader is broker 2, which alone refuses one produce request.
    ForwardHost h("refused", "{partitions: 1, value: json}", "    on_error: {retry: 0, then: dead_letter}\n", 2,
                  [](Broker& b) {
                      b.set_leader("in", 0, 1);
                      b.set_leader("out", 0, 1);
                      b.set_leader("refused-fwd-dead-letter", 0, 2);
                  });
    h.send({{"k", std::string("{\"n\": 1}"), {}, -1}});
    REQUIRE(h.out->read_until([](auto& r) { return !r.empty(); }, 30s));
    // The broker refuses the dead letter as too large: a topic whose max.message.bytes is below the client's.
    h.broker.fail_requests(2, kProduceRequest, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    h.send({{"k", std::string("not json"), {}, -1}, {"k", std::string("{\"n\": 2}"), {}, -1}});
    const Record& letter = h.first_dead_letter();
    CHECK_FALSE(letter.value.has_value());
    CHECK(letter.header("mephisto.value-dropped").find("8 bytes") != std::string::npos);
    CHECK(letter.header("mephisto.source") == "in[0]@1");
    CHECK(h.host->count_in_log("the broker refused the dead letter of in[0]@1") == 1);
    CHECK(h.out->read_until([](auto& r) { return r.size() >= 2; }, 30s));
    h.finish();
}

TEST_CASE("a table value too large for its changelog is refused where it is written, not at the flush") {
    // Before, the write was taken and the changelog flush failed with "Message size too large", stopping the
    // host at every restart; now the agent's error policy handles the event.
    Broker broker;
    for (const std::string topic : {"in", "bigtable-keep-dead-letter", "bigtable-blobs-changelog"}) broker.create_topic(topic, 1);
    TempDir dir;
    auto yaml = dir.write("p.yaml", pipeline_yaml("bigtable", "state_dir: " + (dir.path() / "state").string() + "\n"
                                                              "topics: {in: {partitions: 1}}\n"
                                                              "tables: {blobs: {value: raw}}\n"
                                                              "agents:\n  keep: {plugin: test_agents, agent: fold, from: in,"
                                                              " tables: [blobs], params: {table: blobs},"
                                                              " on_error: {retry: 0, then: dead_letter}}\n"));
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    produce(broker.bootstrap(), "in", {{"big", std::string(1'200'000, 'b'), {}, -1}, {"small", std::string("s"), {}, -1}});
    TopicReader dead(broker.bootstrap(), "bigtable-keep-dead-letter", 1);
    REQUIRE(dead.read_until([](auto& r) { return !r.empty(); }, 30s));
    CHECK(dead.records().front().header("mephisto.error").find("is more than its changelog can take") != std::string::npos);
    CHECK(await_caught_up(broker.bootstrap(), "bigtable", "in", 1, 30s));
    CHECK(host->running());
    CHECK(host->stop(SIGTERM, 30s) == 0);
    std::string out;
    CHECK(run_cli({"table", "get", yaml.string(), "blobs", "small"}, dir, out) == 0);  // the next write went in
}
