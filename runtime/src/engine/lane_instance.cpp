// The lane runner's instances (engine/lane_runner.hpp): an instance is created on its lane before its first event
// (create, on_assigned) and says goodbye at the end (on_revoked, destroy); the answers to its asks reach on_reply,
// and under `ack: manual` the events it finished wait for its acknowledgement. A lane leaving for good finishes
// what it still holds.
#include <algorithm>

#include "engine/clocked_call.hpp"
#include "engine/lane_runner.hpp"
#include "engine/message_views.hpp"

namespace mephisto {

bool LaneRunner::ensure_instance(Lane& lane, std::string& error) {
    if (lane.created) return true;
    const auto& cb = lane.agent->info->callbacks;
    lane.ctx.error.clear();
    void* instance = nullptr;
    mph_status st = MPH_OK;
    if (cb.create) {
        ClockedCall call(lane.call, call_record(lane, "create"));
        st = cb.create(&lane.ctx, &instance);
    }
    if (st != MPH_OK) {
        error = lane.ctx.error.empty() ? "create returned status " + std::to_string(st) : lane.ctx.error;
        if (instance && cb.destroy) {
            ClockedCall call(lane.call, call_record(lane, "destroy"));
            cb.destroy(instance);
        }
        return false;
    }
    lane.instance = instance;
    lane.created = true;
    lane.generation = lane.agent->generation.load();
    // Events its predecessor processed but never acknowledged (ack: manual) come to it first, in order.
    lane.local.insert(lane.local.begin(), lane.orphans.begin(), lane.orphans.end());
    lane.orphans.clear();
    if (cb.on_assigned) {
        lane.ctx.error.clear();
        ClockedCall call(lane.call, call_record(lane, "on_assigned"));
        st = cb.on_assigned(instance, &lane.ctx, lane.partition->partition);
        if (st != MPH_OK) lane.agent->log->warn("on_assigned returned {}: {}", st, lane.ctx.error);
    }
    return true;
}

void LaneRunner::destroy_instance(Lane& lane) {
    if (!lane.created) return;
    // ack: manual: what it held unacknowledged goes to its successor (or, at a revoke, back to the broker).
    for (auto& [offset, f] : lane.held) lane.orphans.push_back(f);
    lane.agent->stats.unacked.fetch_sub(lane.held.size(), std::memory_order_relaxed);
    lane.held.clear();
    std::sort(lane.orphans.begin(), lane.orphans.end(),
              [](const InFlight* a, const InFlight* b) { return a->offset() < b->offset(); });
    if (lane.agent->info->callbacks.destroy) {
        ClockedCall call(lane.call, call_record(lane, "destroy"));
        lane.agent->info->callbacks.destroy(lane.instance);
    }
    lane.instance = nullptr;
    lane.created = false;
}

void LaneRunner::revoke_instance(Lane& lane) {
    if (lane.created && lane.agent->info->callbacks.on_revoked) {
        lane.ctx.error.clear();
        ClockedCall call(lane.call, call_record(lane, "on_revoked"));
        const mph_status st = lane.agent->info->callbacks.on_revoked(lane.instance, &lane.ctx, lane.partition->partition);
        if (st != MPH_OK) lane.agent->log->warn("on_revoked returned {}: {}", st, lane.ctx.error);
    }
    destroy_instance(lane);
}

void LaneRunner::release_lane(Lane& lane, int completed) {
    s_.channels->forget(lane);  // a lane held back by a full channel waits no more
    if (lane.mailbox) {
        std::lock_guard lock(lane.mailbox->mu);
        lane.mailbox->lane = nullptr;
        lane.mailbox->released_as = completed;
    }
    std::deque<InFlight*> events;
    std::deque<Answer> answers;
    {
        std::lock_guard lock(lane.mu);
        events.swap(lane.local);
        for (InFlight* f : lane.queue) events.push_back(f);
        lane.queue.clear();
        answers.swap(lane.replies);
        lane.has_replies.store(false, std::memory_order_relaxed);
    }
    for (auto& [offset, f] : lane.held) events.push_back(f);
    lane.agent->stats.unacked.fetch_sub(lane.held.size(), std::memory_order_relaxed);
    lane.held.clear();
    for (InFlight* f : lane.orphans) events.push_back(f);
    lane.orphans.clear();
    for (InFlight* f : events) finish(f, completed);
    for (Answer& a : answers) {
        if (a.message) rd_kafka_message_destroy(a.message);
        finish(static_cast<InFlight*>(a.token), completed);
    }
}

bool LaneRunner::deliver_replies(Lane& lane, std::string& error) {
    std::deque<Answer> answers;
    {
        std::lock_guard lock(lane.mu);
        answers.swap(lane.replies);
        lane.has_replies.store(false, std::memory_order_relaxed);
    }
    if (!ensure_instance(lane, error)) {
        std::lock_guard lock(lane.mu);
        for (auto it = answers.rbegin(); it != answers.rend(); ++it) lane.replies.push_front(std::move(*it));
        lane.has_replies.store(true, std::memory_order_relaxed);
        return false;
    }
    const auto on_reply = lane.agent->info->callbacks.on_reply;
    for (Answer& a : answers) {
        auto* f = static_cast<InFlight*>(a.token);
        (a.status == MPH_OK ? lane.agent->stats.replies : lane.agent->stats.ask_timeouts)
            .fetch_add(1, std::memory_order_relaxed);
        if (on_reply) {  // a swap to code without on_reply drops the answer
            std::vector<mph_header> headers;
            mph_event ev{};
            if (a.message) ev = make_event(rd_kafka_topic_name(a.message->rkt), a.message, headers);
            lane.ctx.inflight = f;
            lane.ctx.error.clear();
            lane.ctx.views.clear();
            ClockedCall call(lane.call, call_record(lane, "on_reply", f ? f->offset() : -1));
            const mph_status st = on_reply(lane.instance, &lane.ctx, a.id, a.status, a.message ? &ev : nullptr);
            lane.ctx.inflight = nullptr;
            if (st != MPH_OK) {
                lane.agent->stats.failures.fetch_add(1, std::memory_order_relaxed);
                lane.agent->log->warn("on_reply for request {} returned {}: {}", a.id, st, lane.ctx.error);
            }
        }
        if (a.message) rd_kafka_message_destroy(a.message);
        finish(f);
    }
    return true;
}

void LaneRunner::finished_by_agent(Lane& lane, InFlight* f) {
    if (!lane.agent->spec->manual_ack) {
        finish(f);
        return;
    }
    const int64_t offset = f->offset();
    if (auto it = std::find(lane.early_acks.begin(), lane.early_acks.end(), offset); it != lane.early_acks.end()) {
        lane.early_acks.erase(it);  // acknowledged inside its own callback
        finish(f);
        return;
    }
    lane.held.emplace(offset, f);
    lane.agent->stats.unacked.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace mephisto
