// The task manager in-process (engine/task_manager): what a revoke does to the partitions and their lanes, and
// which partitions resume once their tables are recovered. A librdkafka consumer that never connects (and has
// no group, so its commits are refused at once), the real registry, lanes and scheduler; the lane runner's parts
// (the instance's goodbye, the lane's release) are recorded instead of run. No broker, no plugin.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "common/logging.hpp"
#include "engine/pipeline.hpp"
#include "engine/task_manager.hpp"

using namespace mephisto;
using namespace std::chrono_literals;

namespace {

int64_t budget_held(const DispatchBudget& budget) { return budget.held().events; }

struct Fixture {
    rd_kafka_t* consumer = nullptr;
    PipelineConfig config;
    AgentSpec spec = [] {
        AgentSpec s;
        s.name = "counter";
        return s;
    }();
    AgentRuntime agent{spec};
    LaneScheduler<Lane> scheduler;
    PartitionRegistry partitions;
    DispatchBudget budget{{1000, 1 << 20}};
    std::unique_ptr<StateManager> state;
    std::unique_ptr<OffsetCommitter> committer;
    std::atomic<bool> joined{false}, leader{false};
    std::vector<std::string> calls;  // what the task manager asked of the lane runner, in order
    std::unique_ptr<TaskManager> tasks;

    Fixture() {
        agent.log = logger("task_manager_test");
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        char err[256];
        REQUIRE(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err) == RD_KAFKA_CONF_OK);
        consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        REQUIRE(consumer);
        state = std::make_unique<StateManager>(
            StateManager::Services{&config, "", logger("task_manager_test"), [](const std::string&) {}, {}, {}},
            std::map<std::string, TableTypes>{});
        committer = std::make_unique<OffsetCommitter>(consumer, partitions, *state, logger("task_manager_test"));
        TaskManagerServices s;
        s.consumer = consumer;
        s.partitions = &partitions;
        s.budget = &budget;
        s.committer = committer.get();
        s.state = state.get();
        s.config = &config;
        s.log = logger("task_manager_test");
        s.joined = &joined;
        s.leader = &leader;
        s.lanes_for = [this](PartitionState& ps) {
            std::vector<std::unique_ptr<Lane>> lanes;
            lanes.push_back(lane(ps));
            return lanes;
        };
        s.value_codec = [](const std::string&) { return nullptr; };
        s.revoke_instance = [this](Lane& l) { calls.push_back("goodbye " + where(l)); };
        s.release_lane = [this](Lane& l, int completed) {
            calls.push_back("release " + where(l) + " completed " + std::to_string(completed));
            // What the lane runner's release does with the events the lane still holds.
            for (InFlight* f : l.local) finish(f, completed);
            for (InFlight* f : l.queue) finish(f, completed);
            l.local.clear();
            l.queue.clear();
        };
        tasks = std::make_unique<TaskManager>(std::move(s));
    }
    ~Fixture() {
        scheduler.stop();
        rd_kafka_destroy(consumer);
    }
    static std::string where(const Lane& l) {
        return l.partition->topic + "[" + std::to_string(l.partition->partition) + "]";
    }
    std::unique_ptr<Lane> lane(PartitionState& ps) {
        auto l = std::make_unique<Lane>();
        l->agent = &agent;
        l->partition = &ps;
        l->scheduler = &scheduler;
        return l;
    }
    // An assigned partition with one lane, as the task manager's assignment builds it.
    PartitionState* assigned(const std::string& topic, int32_t p) {
        auto ps = std::make_unique<PartitionState>();
        ps->topic = topic;
        ps->partition = p;
        ps->count_against(&budget);
        ps->lanes.push_back(lane(*ps));
        PartitionState* raw = ps.get();
        partitions.add(std::move(ps));
        return raw;
    }
    // A message of `ps` at `offset` handed to its lane, as the consumer loop does.
    InFlight* consumed(PartitionState& ps, int64_t offset) {
        REQUIRE(ps.fetched(offset));
        InFlight* f = ps.admit(nullptr, offset, 1);
        ps.lanes.front()->offer(f);
        return f;
    }
};

}  // namespace

TEST_CASE("task manager: a revoke says goodbye to every instance, then releases its lanes with their events abandoned") {
    Fixture fx;
    PartitionState* p0 = fx.assigned("in", 0);
    PartitionState* p1 = fx.assigned("in", 1);
    fx.leader = true;  // it owned the leader topic's partition 0
    InFlight* done = fx.consumed(*p0, 0);
    fx.consumed(*p0, 1);
    fx.consumed(*p0, 2);  // 1 and 2 are still queued when the revoke comes
    // The worker took the lane and finished offset 0 (as the lane runner would, leaving 1 and 2 queued).
    REQUIRE(fx.scheduler.remove(p0->lanes.front().get()));
    p0->lanes.front()->queue.pop_front();
    finish(done);
    {
        std::lock_guard lock(p0->lanes.front()->mu);
        p0->lanes.front()->scheduled = false;
    }
    CHECK(p0->committable() == 1);
    CHECK(budget_held(fx.budget) == 2);

    fx.tasks->revoke_all(150ms);  // the refused commit waits for its answer until then

    CHECK(fx.partitions.empty());
    CHECK_FALSE(fx.leader.load());
    // Every instance says goodbye before any lane is released: what on_revoked sends or acknowledges counts.
    REQUIRE(fx.calls.size() == 4);
    CHECK(fx.calls[0] == "goodbye in[0]");
    CHECK(fx.calls[1] == "goodbye in[1]");
    CHECK(fx.calls[2] == "release in[0] completed 0");
    CHECK(fx.calls[3] == "release in[1] completed 0");
    // Offsets 1 and 2 were abandoned: never committed here, read again by the partition's next owner.
    CHECK(p0->unfinished() == 0);
    CHECK(p0->committable() == 1);
    CHECK(p0->revoked());
    CHECK(p1->revoked());
    CHECK(budget_held(fx.budget) == 0);
    CHECK(p0->lanes.front()->stopping.load());  // takes no more turns
}

TEST_CASE("task manager: a partition whose tables were recovered resumes its lanes, and one whose recovery failed stays held") {
    Fixture fx;
    PartitionState* ready = fx.assigned("in", 0);
    PartitionState* refused = fx.assigned("in", 1);
    PartitionState* still = fx.assigned("in", 2);
    for (PartitionState* ps : {ready, refused, still}) ps->recovering = true;
    fx.consumed(*ready, 0);
    fx.consumed(*refused, 0);
    fx.consumed(*still, 0);
    // While recovering, no lane takes a turn: their events wait.
    for (PartitionState* ps : {ready, refused, still}) CHECK_FALSE(fx.scheduler.remove(ps->lanes.front().get()));

    ready->recovered = true;
    refused->recovered = true;
    refused->table_failed = true;
    fx.tasks->finish_recoveries();

    CHECK_FALSE(ready->recovering);
    CHECK(fx.scheduler.remove(ready->lanes.front().get()));  // woken: its event goes to a worker
    CHECK(refused->recovering);                               // refuses to serve: never resumes
    CHECK_FALSE(fx.scheduler.remove(refused->lanes.front().get()));
    CHECK(still->recovering);  // not yet
    CHECK_FALSE(fx.scheduler.remove(still->lanes.front().get()));

    for (PartitionState* ps : {ready, refused, still}) {  // let go of the events for the fixture's end
        for (InFlight* f : ps->lanes.front()->queue) finish(f, 0);
        ps->lanes.front()->queue.clear();
    }
}
