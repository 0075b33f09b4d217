// One lane's scheduling state machine (Lane in engine/lane.hpp): when it takes a turn on a worker, when it
// stops and resumes. Every wake-up goes through claim_turn, under the lane's lock.
#include "engine/lane.hpp"

#include "engine/pipeline.hpp"

namespace mephisto {

bool Lane::claim_turn() {
    // A partition whose tables are recovering holds its events until they are (finish_recoveries). A stopped
    // lane (a plugin swap in progress) keeps its events until it resumes. `local` is the worker's, but no
    // worker runs a lane that is not scheduled.
    if (scheduled || stopping.load(std::memory_order_relaxed) || partition->recovering) return false;
    if (!has_work()) return false;
    scheduled = true;
    return true;
}

void Lane::offer(InFlight* event) {
    bool schedule, batch_full = false;
    {
        std::lock_guard lock(mu);
        queue.push_back(event);
        schedule = claim_turn();
        // A lane gathering a batch (take) waits for `within` at most; a full batch goes at once.
        if (!schedule && batch_waiting > 0 && agent->spec->take)
            batch_full = batch_waiting + queue.size() >= static_cast<size_t>(agent->spec->take->max);
    }
    if (schedule) scheduler->push(this);
    else if (batch_full && scheduler->remove(this)) scheduler->push(this);
}

void Lane::end_turn(TurnEnd how, std::chrono::milliseconds delay) {
    if (how == TurnEnd::later && !stopping) {
        scheduler->push_after(this, delay);
        return;
    }
    {
        std::lock_guard lock(mu);
        if (how == TurnEnd::park || stopping || !has_work()) {
            scheduled = false;
            idle.notify_all();
            return;
        }
    }
    scheduler->push(this);  // more work: to the back, so other lanes get a turn
}

bool Lane::stop(std::optional<std::chrono::steady_clock::time_point> deadline) {
    stopping = true;
    if (scheduler->remove(this)) {  // waiting for a worker (or for its delay): no turn in progress
        std::lock_guard lock(mu);
        scheduled = false;
    }
    std::unique_lock lock(mu);
    auto is_idle = [&] { return !scheduled; };
    if (deadline) return idle.wait_until(lock, *deadline, is_idle);
    while (!idle.wait_for(lock, std::chrono::seconds(5), is_idle))
        agent->log->warn("still waiting for agent {} on {}[{}] to return from its callback", agent->spec->name,
                         partition->topic, partition->partition);
    return true;
}

void Lane::resume() {
    give([this] { stopping = false; });
}

}  // namespace mephisto
