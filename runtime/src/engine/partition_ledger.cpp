#include "engine/partition_ledger.hpp"

#include <algorithm>

namespace mephisto {
namespace {

int64_t message_bytes(const rd_kafka_message_t* message) {
    return message ? static_cast<int64_t>(message->len + message->key_len) : 0;
}

}  // namespace

bool PartitionLedger::fetched(int64_t offset) {
    std::lock_guard lock(mu_);
    return tracker_.fetched(offset);
}

InFlight* PartitionLedger::admit(rd_kafka_message_t* message, int64_t offset, int receivers) {
    auto* f = new InFlight;
    f->message = message;
    f->position = offset;
    f->ledger = this;
    f->commits = true;
    f->pending.store(std::max(receivers, 1), std::memory_order_relaxed);
    unfinished_.fetch_add(1, std::memory_order_relaxed);
    const int64_t bytes = message_bytes(message);
    unfinished_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    if (budget_) budget_->taken(bytes);
    if (receivers > 0) return f;
    finish(f);  // nobody reads it here (its agents were removed): done, so the commit may pass it
    return nullptr;
}

InFlight* PartitionLedger::admit_sent(ChannelEvent&& event, InFlight* cause, int receivers) {
    auto* f = new ChannelInFlight;
    f->event = std::move(event);
    f->channel_event = &f->event;
    if ((f->event.cause = cause)) {
        add_share(cause);
        f->event.origin = cause->channel_event ? cause->channel_event->origin : cause->ledger;
    }
    f->position = f->event.sequence;
    f->ledger = this;
    f->pending.store(receivers, std::memory_order_relaxed);
    unfinished_.fetch_add(1, std::memory_order_relaxed);
    return f;
}

InFlight* PartitionLedger::hold_batch(const std::vector<InFlight*>& events) {
    auto* token = new ChannelInFlight;
    token->channel_event = &token->event;
    token->event.batch_token = true;
    token->position = token->event.sequence = events.front()->offset();
    if (events.front()->channel_event) token->event.origin = events.front()->channel_event->origin;
    token->ledger = this;
    token->pending.store(1, std::memory_order_relaxed);  // the caller's
    for (InFlight* f : events) {
        add_share(f);
        token->channel_event->batch.push_back(f);
    }
    return token;  // not counted in unfinished: it is no event
}

std::optional<int64_t> PartitionLedger::committable() const {
    std::lock_guard lock(mu_);
    return tracker_.committable();
}

bool PartitionLedger::should_commit(int64_t target, bool sync) {
    if (!needs_commit(target, sync)) return false;
    commit_sent_ = target;
    return true;
}

void PartitionLedger::confirmed(int64_t offset) {
    int64_t current = committed_.load(std::memory_order_relaxed);
    while (offset > current && !committed_.compare_exchange_weak(current, offset)) {
    }
}

void PartitionLedger::commit_failed(int64_t offset) {
    if (commit_sent_ == offset) commit_sent_ = -1;  // sent again at the next tick
}

void PartitionLedger::finished(const InFlight& event) {
    if (!event.commits) return;  // a channel has no offsets to commit
    std::lock_guard lock(mu_);
    tracker_.done(event.position);
}

void finish(InFlight* f, int completed) {
    // A loop along the chain of causes, not a recursion: an agent writing back to the channel it reads makes
    // chains as long as it likes.
    while (f) {
        if (completed == 0) f->abandoned.store(true, std::memory_order_relaxed);
        if (f->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        PartitionLedger* ledger = f->ledger;
        const bool abandoned = f->abandoned.load(std::memory_order_relaxed);
        if (!abandoned) {
            if (f->on_finished)
                for (auto& hook : *f->on_finished) hook();
            ledger->finished(*f);
        }
        InFlight* cause = nullptr;
        std::vector<InFlight*> batch;
        if (f->channel_event) {
            cause = f->channel_event->cause;
            batch.swap(f->channel_event->batch);
        }
        if (f->commits) {  // a consumed message; before the count below, as the ledger may be gone after it
            const int64_t bytes = message_bytes(f->message);
            ledger->unfinished_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
            if (ledger->budget_) ledger->budget_->released(bytes);
        }
        // (release: a revoked partition may be freed once this reaches 0, see TaskManager::revoke_all and PartitionRegistry::retire)
        if ((!f->channel_event || !f->channel_event->batch_token) &&
            ledger->unfinished_.fetch_sub(1, std::memory_order_release) - 1 == ledger->drain_mark_ && ledger->drained_)
            ledger->drained_();
        if (f->message) rd_kafka_message_destroy(f->message);
        if (f->channel_event) delete static_cast<ChannelInFlight*>(f);
        else delete f;
        completed = abandoned ? 0 : 1;
        for (InFlight* held : batch) finish(held, completed);  // a batch token: one level per token in the chain
        f = cause;  // the event that sent it is done with it too
    }
}

}  // namespace mephisto
