// The lanes of a partition (or channel): one per agent reading it and concurrency slot, each bound to its
// agent's table shards for that partition. Used by the task manager at an assignment, by the channels at start
// and by a topology reload for the agents it adds.
#include <algorithm>

#include "engine/pipeline.hpp"

namespace mephisto {

std::vector<std::unique_ptr<Lane>> Pipeline::lanes_for(PartitionState& ps) {
    std::vector<std::unique_ptr<Lane>> lanes;
    for (auto& agent : agents_) {  // its shape changes only in a reload, which no rebalance interleaves with
        const auto& from = agent->spec->from;
        if (std::find(from.begin(), from.end(), ps.topic) == from.end()) continue;
        for (auto& lane : make_lanes(*agent, ps)) lanes.push_back(std::move(lane));
    }
    return lanes;
}

std::vector<std::unique_ptr<Lane>> Pipeline::make_lanes(AgentRuntime& agent, PartitionState& ps) {
    std::vector<std::unique_ptr<Lane>> lanes;
    for (int slot = 0; slot < agent.spec->concurrency; ++slot) {
        lanes.push_back(make_lane(agent, ps));
        lanes.back()->slot = slot;
        lanes.back()->slots = agent.spec->concurrency;
    }
    return lanes;
}

std::unique_ptr<Lane> Pipeline::make_lane(AgentRuntime& agent, PartitionState& ps) {
    auto lane = std::make_unique<Lane>();
    lane->agent = &agent;
    lane->partition = &ps;
    lane->ctx.pipeline = this;
    lane->ctx.agent_name = agent.spec->name;
    lane->ctx.params = agent.params;
    lane->ctx.sinks = &agent.spec->sinks;
    lane->ctx.log = agent.log;
    lane->ctx.partition = ps.partition;
    lane->ctx.stats = &agent.stats;
    lane->ctx.lane = lane.get();
    lane->scheduler = &scheduler_;
    lane->mailbox = std::make_shared<LaneMailbox>();
    lane->mailbox->lane = lane.get();
    for (const auto& name : agent.spec->tables) {
        TableStore* store = state_->store(name);
        auto shard = store->shard(ps.partition);
        if (!shard) {
            fail(shard.error());
            continue;
        }
        lane->ctx.tables.push_back(TableBinding{name, store, *shard});
        if (store->spec().window) lane->windowed = true;
        if (std::find(ps.shards.begin(), ps.shards.end(), *shard) == ps.shards.end()) ps.shards.push_back(*shard);
    }
    return lane;
}

}  // namespace mephisto
