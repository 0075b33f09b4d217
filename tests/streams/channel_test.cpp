// Channels (Faust's app.channel): in-memory streams between agents of one host. An event an agent sends to a
// channel holds the event that caused it: the cause is committed only after every agent reading the channel
// finished it, so a crash loses the channel's contents but never their cause.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <csignal>
#include <set>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;

namespace {

// p.yaml of app `app`: the test plugins, quick group settings, then `body` (topics, channels, agents).
std::filesystem::path write_app(const TempDir& dir, const std::string& app, const std::string& body) {
    return dir.write("p.yaml", pipeline_yaml(app, body));
}

// in -> first -> channel middle -> second -> out, one partition.
std::filesystem::path write_pipeline(const TempDir& dir, const std::string& app, const std::string& second_params) {
    return write_app(dir, app,
                     "shutdown_timeout: 3s\n"
                     "topics: {in: {partitions: 1}, out: {partitions: 1}}\n"
                     "channels: {middle: {}}\n"
                     "agents:\n"
                     "  first: {plugin: test_agents, agent: forward, from: in, sinks: [middle]}\n"
                     "  second: {plugin: test_agents, agent: forward, from: middle, sinks: [out]" +
                         second_params + "}\n");
}

int64_t committed(const Broker& broker, const std::string& group) {
    return committed_offsets(broker.bootstrap(), group, "in", 1).at(0);
}

} // namespace

TEST_CASE("channel: events pass through memory to the next agent, and their causes commit after it finished") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto host = start_host(write_pipeline(dir, "piped", ""), broker.bootstrap(), dir.path() / "host.log");
    produce_sequence(broker.bootstrap(), "in", 0, 100, 4);
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 100; }, 30s));
    REQUIRE(await_caught_up(broker.bootstrap(), "piped", "in", 1, 30s));
    const auto counts = out.value_counts();
    CHECK(counts.size() == 100);
    for (int i = 0; i < 100; ++i)
        CHECK(counts.count("seq-" + std::to_string(i)) == 1);
    for (const auto& r : out.records())
        CHECK(r.key.has_value()); // keys travel through the channel
    // Nothing of the channel reached Kafka: no topic of its name.
    CHECK(end_offsets(broker.bootstrap(), "middle", 1).at(0) <= 0);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("channel: an event the channel's agent cannot finish holds back the commit of the event that sent it") {
    Broker broker;
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = write_pipeline(
        dir, "held", ", params: {retry_on: seq-5},\n           on_error: {retry: 1000, backoff: 50ms, then: skip}");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    produce_sequence(broker.bootstrap(), "in", 0, 10, 1);
    TopicReader out(broker.bootstrap(), "out", 1);
    // The channel's agent is one lane: seq-5 blocks it, so seq-0..4 come out and the rest wait behind it.
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 5; }, 30s));
    REQUIRE(await([&] { return committed(broker, "held") >= 5; }, 30s));
    REQUIRE(host->await_log("asked to retry middle[0]@5", 30s));
    // /pipelines shows the channel: all ten sent, seq-5..9 not finished by `second`.
    const std::string admin = admin_address(*host);
    auto channel = [&] {
        const auto body = nlohmann::json::parse(http_get(admin, "/pipelines").body);
        return body.at(0).at("channels").at(0);
    };
    REQUIRE(await([&] { return channel().at("sent") == 10; }, 30s));
    CHECK(channel().at("name") == "middle");
    CHECK(channel().at("unfinished") == 5);
    CHECK(committed(broker, "held") == 5); // `first` finished all ten; seq-5 is still in the channel
    CHECK(host->stop(SIGTERM, 30s) == 0);
    CHECK(committed(broker, "held") == 5); // the next run reads seq-5 again
}

TEST_CASE("channel: an agent reading a channel can be asked, and its reply finds the asker") {
    Broker broker;
    broker.create_topic("questions", 2);
    broker.create_topic("answers", 1);
    TempDir dir;
    auto yaml = write_app(dir, "inmemory",
                          "topics: {questions: {partitions: 2}, answers: {partitions: 1}}\n"
                          "channels: {adds: {}}\n"
                          "agents:\n"
                          "  asking: {plugin: test_agents, agent: asker, from: questions, sinks: [answers],\n"
                          "           params: {target: adding}}\n"
                          "  adding: {plugin: test_agents, agent: adder, from: adds, concurrency: 2}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    std::vector<Message> questions;
    for (int i = 0; i < 30; ++i)
        questions.push_back({"k" + std::to_string(i), std::to_string(i) + " 2", {}, -1});
    produce(broker.bootstrap(), "questions", questions);
    TopicReader answers(broker.bootstrap(), "answers", 1);
    REQUIRE(answers.read_until([](const std::vector<Record>& r) { return r.size() >= 30; }, 30s));
    const auto counts = answers.value_counts();
    for (int i = 0; i < 30; ++i)
        CHECK(counts.count(std::to_string(i) + " 2=" + std::to_string(i + 2)) == 1);
    REQUIRE(await_caught_up(broker.bootstrap(), "inmemory", "questions", 2, 30s));
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("channel: after a revoke, channel events caused by the revoked partitions are dropped, and their causes "
          "processed again") {
    Broker broker;
    broker.create_topic("in", 2);
    broker.create_topic("out", 1);
    TempDir dir;
    // `second` is slow, so the channel holds a backlog when the second host joins and the partitions move.
    auto yaml = write_app(dir, "handover",
                          "shutdown_timeout: 5s\n"
                          "topics: {in: {partitions: 2}, out: {partitions: 1}}\n"
                          "channels: {middle: {}}\n"
                          "agents:\n"
                          "  first: {plugin: test_agents, agent: forward, from: in, sinks: [middle]}\n"
                          "  second: {plugin: test_agents, agent: forward, from: middle, sinks: [out],\n"
                          "           params: {delay_ms: 50}}\n");
    auto a = start_host(yaml, broker.bootstrap(), dir.path() / "a.log");
    const int total = 300;
    produce_sequence(broker.bootstrap(), "in", 0, total, 8);
    TopicReader out(broker.bootstrap(), "out", 1);
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 10; }, 30s));
    auto b = start_host(yaml, broker.bootstrap(), dir.path() / "b.log");
    REQUIRE(a->await_log("channel middle: dropped", 30s));
    // What was dropped was not committed: the partitions' owners read it again, so every event comes out.
    REQUIRE(out.read_until(
        [&](const std::vector<Record>& r) {
            std::set<std::string> seen;
            for (const auto& rec : r)
                seen.insert(rec.value.value_or(""));
            return static_cast<int>(seen.size()) >= total;
        },
        60s));
    REQUIRE(await_caught_up(broker.bootstrap(), "handover", "in", 2, 60s));
    const auto counts = out.value_counts();
    for (int i = 0; i < total; ++i)
        CHECK(counts.count("seq-" + std::to_string(i)) == 1);
    CHECK(a->stop(SIGTERM, 30s) == 0);
    CHECK(b->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("channel: what a batch sent is tracked against every event of the batch, whatever partition caused it") {
    // A channel's batch mixes causes from both partitions (on a topic, the batch's first offset holds back the
    // rest; a channel has no such order). `third` never finishes the event of a-4 or b-4, so neither partition
    // may commit past offset 4, although `second`'s batch callback returned long ago.
    Broker broker;
    broker.create_topic("in", 2);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = write_app(dir, "batched",
                          "shutdown_timeout: 3s\n"
                          "topics: {in: {partitions: 2}, out: {partitions: 1}}\n"
                          "channels: {middle: {}, last: {}}\n"
                          "agents:\n"
                          "  first: {plugin: test_agents, agent: forward, from: in, sinks: [middle]}\n"
                          "  second: {plugin: test_agents, agent: batch_forward, from: middle, sinks: [last],\n"
                          "           take: {max: 50, within: 500ms}}\n"
                          "  third: {plugin: test_agents, agent: forward, from: last, sinks: [out],\n"
                          "          params: {retry_on: '-4'}, on_error: {retry: 1000, backoff: 20ms, then: skip}}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    std::vector<Message> events;
    for (int i = 0; i < 5; ++i) {
        events.push_back({"k", "a-" + std::to_string(i), {}, 0});
        events.push_back({"k", "b-" + std::to_string(i), {}, 1});
    }
    produce(broker.bootstrap(), "in", events);
    REQUIRE(host->await_log("asked to retry last[0]@", 30s));
    // Several commit intervals (200 ms) pass while `third` retries: six attempts, backing off 20, 40 ... 640 ms.
    REQUIRE(await([&] { return host->count_in_log("asked to retry last[0]@") >= 6; }, 30s));
    const auto offsets = committed_offsets(broker.bootstrap(), "batched", "in", 2);
    CHECK(offsets.at(0) <= 4);
    CHECK(offsets.at(1) <= 4);
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("channel: past its maxsize the agents writing to it wait until it drained, so its depth stays bounded") {
    // Four partitions feed the channel under a steady load; `second` takes 2 ms an event. The partitions' own
    // marks (20 000 unfinished each) would let 80 000 events pile up in the channel: its maxsize is 300.
    Broker broker;
    broker.create_topic("in", 4);
    broker.create_topic("out", 1);
    TempDir dir;
    auto yaml = write_app(dir, "bounded",
                          "shutdown_timeout: 2s\n"
                          "topics: {in: {partitions: 4}, out: {partitions: 1}}\n"
                          "channels: {middle: {maxsize: 300}}\n"
                          "agents:\n"
                          "  first: {plugin: test_agents, agent: forward, from: in, sinks: [middle]}\n"
                          "  second: {plugin: test_agents, agent: forward, from: middle, sinks: [out],\n"
                          "           params: {delay_ms: 2}}\n");
    auto host = start_host(yaml, broker.bootstrap(), dir.path() / "host.log");
    const std::string admin = admin_address(*host);
    SteadyLoad load(broker.bootstrap(), "in", 100, 16);
    int64_t deepest = 0;
    // Until 3 000 events went through the channel: it filled and drained (`first` waited and went on) at least
    // twice.
    const bool cycled = await(
        [&] {
            const auto channel = nlohmann::json::parse(http_get(admin, "/pipelines").body).at(0).at("channels").at(0);
            deepest = std::max<int64_t>(deepest, channel.at("unfinished").get<int64_t>());
            return channel.at("sent").get<int64_t>() >= 3000 && host->count_in_log("channel middle drained") >= 2;
        },
        60s);
    const int produced = load.stop();
    REQUIRE(cycled);
    CHECK(host->count_in_log("channel middle is full") >= 2);
    MESSAGE("produced ", produced, ", deepest channel ", deepest);
    // Past maxsize only the callbacks in progress (one event each, on four lanes) still send.
    CHECK(deepest <= 300 + 4);
    CHECK(produced > 3000 + 304); // the load outran the channel: without the waits it would have piled up
    CHECK(host->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("take: an agent that exports on_event and on_batch gets batches with take, single events without") {
    HostFixture f;
    for (const char* t : {"in", "batched_out", "single_out"}) f.broker.create_topic(t, 1);
    auto host = f.start("p.yaml", PipelineBuilder("both_callbacks")
                                      .topic("in", 1)
                                      .topic("batched_out", 1)
                                      .topic("single_out", 1)
                                      .agent("batched", "{plugin: test_agents, agent: batch_forward, from: in, "
                                                        "sinks: [batched_out], take: {max: 20, within: 200ms}}")
                                      .agent("single", "{plugin: test_agents, agent: batch_forward, from: in, "
                                                       "sinks: [single_out]}"));
    std::vector<Message> events;
    for (int i = 0; i < 30; ++i) events.push_back({"k", "e-" + std::to_string(i), {}, 0});
    produce(f.broker.bootstrap(), "in", events);
    TopicReader batched(f.broker.bootstrap(), "batched_out", 1), single(f.broker.bootstrap(), "single_out", 1);
    REQUIRE(batched.read_until([](auto& r) { return r.size() >= 30; }, 30s));
    REQUIRE(single.read_until([](auto& r) { return r.size() >= 30; }, 30s));
    for (const auto& r : batched.records()) CHECK(r.header("via") == "on_batch");
    for (const auto& r : single.records()) CHECK(r.header("via") == "on_event");
    CHECK(host->stop(SIGTERM, 30s) == 0);
}
