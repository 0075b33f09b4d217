// The consumer thread's registry of assigned partitions (engine/partition_registry) and the commit over it
// (engine/offset_committer), in-process: librdkafka handles that never connect, no broker. What is checked: a
// message finds its partition (and no longer does once revoked, though the lookup remembers the last one), a
// revoked partition lives while its events are unfinished, and the commit sends each finished prefix once, sends
// it again after a failed report and counts a confirmed one as committed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "common/logging.hpp"
#include "config/config.hpp"
#include "engine/offset_committer.hpp"
#include "engine/partition_registry.hpp"
#include "engine/state_manager.hpp"

using mephisto::finish;
using mephisto::InFlight;
using mephisto::OffsetCommitter;
using mephisto::PartitionRegistry;
using mephisto::PartitionState;

namespace {

// A librdkafka client that never connects: it gives topic handles, and takes commits it cannot send.
struct OfflineClient {
    rd_kafka_t* rk = nullptr;
    explicit OfflineClient(rd_kafka_type_t type) {
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        char err[256];
        REQUIRE(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err) == RD_KAFKA_CONF_OK);
        // A consumer without a group: its commits are refused at once (with a group, librdkafka's destroy would
        // wait for them to time out against a coordinator that never answers).
        rk = rd_kafka_new(type, conf, err, sizeof err);
        REQUIRE(rk);
    }
    ~OfflineClient() { rd_kafka_destroy(rk); }
};

std::unique_ptr<PartitionState> partition(const std::string& topic, int32_t p) {
    auto ps = std::make_unique<PartitionState>();
    ps->topic = topic;
    ps->partition = p;
    return ps;
}

rd_kafka_message_t message_of(rd_kafka_topic_t* rkt, int32_t p) {
    rd_kafka_message_t msg{};
    msg.rkt = rkt;
    msg.partition = p;
    return msg;
}

}  // namespace

TEST_CASE("partition registry: a message finds its partition, and none once the partitions were revoked") {
    OfflineClient client(RD_KAFKA_PRODUCER);
    rd_kafka_topic_t* in = rd_kafka_topic_new(client.rk, "in", nullptr);
    rd_kafka_topic_t* other = rd_kafka_topic_new(client.rk, "other", nullptr);
    PartitionRegistry registry;
    registry.add(partition("in", 0));
    registry.add(partition("in", 1));
    CHECK(registry.size() == 2);

    auto m0 = message_of(in, 0), m1 = message_of(in, 1), m2 = message_of(in, 2), mo = message_of(other, 0);
    PartitionState* p1 = registry.find(&m1);
    REQUIRE(p1);
    CHECK(p1->partition == 1);
    CHECK(registry.find(&m1) == p1);  // remembered
    CHECK(registry.find(&m0)->partition == 0);
    CHECK(registry.find(&m2) == nullptr);  // not assigned here
    CHECK(registry.find(&mo) == nullptr);
    {
        auto view = registry.lock();
        CHECK(view.find("in", 1) == p1);
        CHECK(view.find("in", 2) == nullptr);
    }

    CHECK(registry.find(&m1) == p1);  // the lookup remembers in[1] now
    auto revoked = registry.take_all();
    CHECK(revoked.size() == 2);
    CHECK(registry.empty());
    CHECK(registry.find(&m1) == nullptr);  // a stale fetch after the revoke is nobody's, remembered or not

    // Assigned again: a new state, found anew.
    registry.add(partition("in", 1));
    PartitionState* again = registry.find(&m1);
    REQUIRE(again);
    CHECK(again != p1);
    rd_kafka_topic_destroy(in);
    rd_kafka_topic_destroy(other);
}

TEST_CASE("partition registry: a revoked partition lives until its events are finished") {
    PartitionRegistry registry;
    registry.add(partition("in", 0));
    registry.add(partition("in", 1));
    PartitionState* busy = registry.lock().find("in", 0);
    REQUIRE(busy->fetched(7));
    InFlight* unfinished = busy->admit(nullptr, 7, 1);  // an output of it still waits for its delivery report
    REQUIRE(unfinished);

    registry.retire(registry.take_all());
    // in[1] had nothing unfinished and in[0] one event: the next sweep frees in[1] only, so the report that
    // finishes the event below still finds in[0]'s ledger alive.
    registry.retire({});
    CHECK(busy->unfinished() == 1);
    finish(unfinished, 0);  // the partition was revoked: abandoned, its next owner reads it again
    CHECK(busy->unfinished() == 0);
    registry.retire({});  // freed now (under ASan a use after this would be reported)
}

TEST_CASE("offset committer: each finished prefix is sent once, again after a failed report, and counts once confirmed") {
    OfflineClient consumer(RD_KAFKA_CONSUMER);
    mephisto::PipelineConfig config;
    mephisto::StateManager state({&config, "", mephisto::logger("committer-test"), [](const std::string&) {}, {}, {}}, {});
    PartitionRegistry registry;
    registry.add(partition("in", 0));
    registry.add(partition("in", 1));
    OffsetCommitter committer(consumer.rk, registry, state, mephisto::logger("committer-test"));

    PartitionState* p0 = registry.lock().find("in", 0);
    PartitionState* p1 = registry.lock().find("in", 1);
    std::vector<InFlight*> events;
    for (int64_t o = 0; o < 3; ++o) {
        REQUIRE(p0->fetched(o));
        events.push_back(p0->admit(nullptr, o, 1));
    }
    finish(events[0]);
    finish(events[2]);  // offset 1 is unfinished: the prefix is [0, 1)
    CHECK(p0->committable() == 1);
    CHECK(p1->committable() == std::nullopt);  // nothing fetched there: nothing to send

    committer.commit(false, std::chrono::milliseconds(0));
    CHECK_FALSE(p0->needs_commit(1, false));  // sent, its report not in yet: not sent again at the next tick
    CHECK(p0->needs_commit(1, true));         // a final (sync) commit would send it all the same

    // The report says it failed: the next tick sends it again.
    rd_kafka_topic_partition_list_t* report = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(report, "in", 0)->offset = 1;
    committer.on_report(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, report);
    CHECK(p0->committed() == -1);
    CHECK(p0->needs_commit(1, false));

    finish(events[1]);
    CHECK(p0->committable() == 3);
    committer.commit(false, std::chrono::milliseconds(0));
    rd_kafka_topic_partition_list_destroy(report);
    report = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(report, "in", 0)->offset = 3;
    rd_kafka_topic_partition_list_add(report, "gone", 4)->offset = 9;  // revoked meanwhile: ignored
    committer.on_report(RD_KAFKA_RESP_ERR_NO_ERROR, report);
    rd_kafka_topic_partition_list_destroy(report);
    CHECK(p0->committed() == 3);
    CHECK_FALSE(p0->needs_commit(3, false));
    CHECK_FALSE(p0->needs_commit(3, true));  // confirmed: nothing left to send even at the end
}
