// The at-least-once core in-process (engine/partition_ledger): which offset a partition may commit while its
// events finish in any order, through fan-out, outputs, channels and batches, and what the commit sends. No
// broker: the messages are absent (null), the offsets are what counts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "engine/partition_ledger.hpp"

using mephisto::add_share;
using mephisto::ChannelEvent;
using mephisto::finish;
using mephisto::InFlight;
using mephisto::PartitionLedger;

namespace {

// A consumed message at `offset` for `receivers` agents.
InFlight* consume(PartitionLedger& ledger, int64_t offset, int receivers = 1) {
    REQUIRE(ledger.fetched(offset));
    return ledger.admit(nullptr, offset, receivers);
}

// What `cause`'s callback sent to `channel`, for `receivers` agents reading it.
InFlight* send(PartitionLedger& channel, InFlight* cause, int receivers = 1) {
    static std::atomic<int64_t> sequence{0};
    ChannelEvent event;
    event.sequence = sequence++;
    return channel.admit_sent(std::move(event), cause, receivers);
}

}  // namespace

TEST_CASE("ledger: the commit covers only the contiguous finished prefix") {
    PartitionLedger ledger;
    CHECK_FALSE(ledger.committable());  // nothing fetched: nothing to commit
    std::vector<InFlight*> events;
    for (int64_t o = 0; o < 5; ++o) events.push_back(consume(ledger, o));
    CHECK(ledger.committable() == 0);
    finish(events[1]);
    finish(events[2]);
    CHECK(ledger.committable() == 0);  // 0 is not finished: 1 and 2 wait behind it
    CHECK(ledger.unfinished() == 3);
    finish(events[0]);
    CHECK(ledger.committable() == 3);
    finish(events[4]);
    CHECK(ledger.committable() == 3);
    finish(events[3]);
    CHECK(ledger.committable() == 5);  // everything: the next offset to read
    CHECK(ledger.unfinished() == 0);
}

TEST_CASE("ledger: gaps in the offsets (compaction, transaction markers) do not hold the commit back") {
    PartitionLedger ledger;
    InFlight* a = consume(ledger, 10);
    InFlight* b = consume(ledger, 15);
    InFlight* c = consume(ledger, 1'000'000);
    CHECK(ledger.committable() == 10);
    finish(b);
    CHECK(ledger.committable() == 10);
    finish(a);
    CHECK(ledger.committable() == 1'000'000);
    finish(c);
    CHECK(ledger.committable() == 1'000'001);
}

TEST_CASE("ledger: an offset fetched again is refused, so it is never processed twice") {
    PartitionLedger ledger;
    InFlight* a = consume(ledger, 7);
    CHECK_FALSE(ledger.fetched(7));
    CHECK_FALSE(ledger.fetched(3));  // older than what was fetched (a re-fetch after a seek)
    finish(a);
    CHECK(ledger.committable() == 8);
}

TEST_CASE("ledger: fan-out: the event is finished when every agent and every output let go of it") {
    PartitionLedger ledger;
    InFlight* f = consume(ledger, 0, 3);  // three agents read it
    add_share(f);                         // one of them produced an output, not yet acknowledged
    finish(f);
    finish(f);
    finish(f);  // every agent is done
    CHECK(ledger.committable() == 0);  // the output is not acknowledged yet
    finish(f);                         // its delivery report
    CHECK(ledger.committable() == 1);
}

TEST_CASE("ledger: an abandoned share keeps the offset uncommitted for the partition's next owner") {
    PartitionLedger ledger;
    InFlight* f = consume(ledger, 0, 2);
    InFlight* g = consume(ledger, 1);
    finish(f, 0);  // one agent's lane was revoked with it queued
    finish(f);
    finish(g);
    CHECK(ledger.committable() == 0);  // 0 stays: it is read again; 1 waits behind it
    CHECK(ledger.unfinished() == 0);   // but nothing of it is held: a revoked partition may be freed
}

TEST_CASE("ledger: an event nobody here reads is finished at once") {
    PartitionLedger ledger;
    REQUIRE(ledger.fetched(0));
    CHECK(ledger.admit(nullptr, 0, 0) == nullptr);
    CHECK(ledger.committable() == 1);
    CHECK(ledger.unfinished() == 0);
}

TEST_CASE("ledger: on_finished hooks run once the event is finished, and never for an abandoned one") {
    PartitionLedger ledger;
    int ran = 0;
    InFlight* f = consume(ledger, 0, 2);
    f->on_finished = std::make_unique<std::vector<std::function<void()>>>();
    f->on_finished->push_back([&] { ++ran; });
    finish(f);
    CHECK(ran == 0);
    finish(f);
    CHECK(ran == 1);

    InFlight* g = consume(ledger, 1, 2);
    g->on_finished = std::make_unique<std::vector<std::function<void()>>>();
    g->on_finished->push_back([&] { ++ran; });
    finish(g, 0);
    finish(g);
    CHECK(ran == 1);
}

TEST_CASE("ledger: a channel event holds its cause until every agent of the channel finished it") {
    PartitionLedger topic, channel;
    InFlight* m = consume(topic, 0);
    InFlight* e = send(channel, m, 2);  // the callback of m sent e to a channel read by two agents
    CHECK(e->channel_event->origin == &topic);
    finish(m);                          // m's callback returned
    CHECK(topic.committable() == 0);    // e is not finished
    CHECK(channel.unfinished() == 1);
    finish(e);
    CHECK(topic.committable() == 0);
    finish(e);
    CHECK(topic.committable() == 1);
    CHECK(channel.unfinished() == 0);
    CHECK_FALSE(channel.committable());  // a channel has no offsets to commit
}

TEST_CASE("ledger: a long chain through a channel finishes without recursion, and abandonment travels along it") {
    PartitionLedger topic, channel;
    InFlight* m = consume(topic, 0);
    // An agent writing back to the channel it reads: each event causes the next (100,000 links deep).
    std::vector<InFlight*> chain{m};
    for (int i = 0; i < 100'000; ++i) chain.push_back(send(channel, chain.back()));
    CHECK(chain.back()->channel_event->origin == &topic);
    for (size_t i = 0; i + 1 < chain.size(); ++i) finish(chain[i]);  // every callback but the last returned
    CHECK(topic.committable() == 0);
    finish(chain.back());
    CHECK(topic.committable() == 1);
    CHECK(channel.unfinished() == 0);

    InFlight* n = consume(topic, 1);
    InFlight* e = send(channel, n);
    finish(n);
    finish(e, 0);  // dropped (its cause's partition was revoked): the cause is abandoned too
    CHECK(topic.committable() == 1);
    CHECK(topic.unfinished() == 0);
}

TEST_CASE("ledger: a batch token holds every event of a channel batch until the batch's outputs are acknowledged") {
    PartitionLedger a, b, channel;
    InFlight* ma = consume(a, 0);
    InFlight* mb = consume(b, 0);
    InFlight* ea = send(channel, ma);
    InFlight* eb = send(channel, mb);
    finish(ma);
    finish(mb);
    InFlight* token = channel.hold_batch({ea, eb});
    CHECK(channel.unfinished() == 2);  // the token is no event
    add_share(token);                   // on_batch produced an output tracked against the whole batch
    finish(ea);                         // the batch returned OK: each event is done for the agent
    finish(eb);
    finish(token);  // the callback's own share of the token
    CHECK(a.committable() == 0);
    CHECK(b.committable() == 0);
    finish(token);  // the output's delivery report
    CHECK(a.committable() == 1);
    CHECK(b.committable() == 1);
    CHECK(channel.unfinished() == 0);
}

TEST_CASE("ledger: a revoked partition is seen from the channel events it caused") {
    PartitionLedger topic, channel;
    InFlight* m = consume(topic, 0);
    InFlight* e = send(channel, m);
    InFlight* f = send(channel, e);  // two links away
    CHECK_FALSE(f->channel_event->origin->revoked());
    topic.mark_revoked();
    CHECK(f->channel_event->origin->revoked());
    finish(f, 0);
    finish(e);
    finish(m);
    CHECK(topic.committable() == 0);
}

TEST_CASE("ledger: the commit sends an offset once, again after a failure, and never what the broker confirmed") {
    PartitionLedger ledger;
    CHECK(ledger.needs_commit(5, false));
    CHECK(ledger.should_commit(5, false));
    CHECK_FALSE(ledger.needs_commit(5, false));
    CHECK_FALSE(ledger.should_commit(5, false));  // sent, not answered yet: not again at the next tick
    CHECK(ledger.should_commit(5, true));          // a synchronous commit (a revoke) sends it regardless
    ledger.commit_failed(5);
    CHECK(ledger.should_commit(5, false));  // failed: the next tick sends it again
    ledger.confirmed(5);
    CHECK(ledger.committed() == 5);
    CHECK_FALSE(ledger.should_commit(5, true));  // confirmed
    CHECK_FALSE(ledger.should_commit(4, true));
    CHECK(ledger.should_commit(9, false));
    ledger.commit_failed(8);  // the report of an older commit: the one in flight stands
    CHECK_FALSE(ledger.should_commit(9, false));
    ledger.confirmed(3);  // a late confirmation of an older commit never moves it back
    CHECK(ledger.committed() == 5);
}

TEST_CASE("ledger: shares finished from many threads commit exactly what was fetched") {
    PartitionLedger topic, channel;
    constexpr int kEvents = 20'000, kThreads = 4;
    std::vector<InFlight*> events, sent;
    for (int64_t o = 0; o < kEvents; ++o) {
        InFlight* f = consume(topic, o, kThreads);
        if (o % 3 == 0) sent.push_back(send(channel, f));  // its callback sent something to a channel
        events.push_back(f);
    }
    // Each thread is one agent: it lets go of its share of every event, in an order of its own.
    auto run = [](int threads, const std::vector<InFlight*>& of) {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                const size_t n = of.size();
                for (size_t i = 0; i < n; ++i) finish(of[(i * 7 + static_cast<size_t>(t) * 13) % n]);
            });
        for (auto& t : pool) t.join();
    };
    run(kThreads, events);
    CHECK(topic.committable() == 0);  // every third event still waits for its channel event
    CHECK(topic.unfinished() == static_cast<int64_t>(sent.size()));
    std::vector<InFlight*> odd, even;
    for (size_t i = 0; i < sent.size(); ++i) (i % 2 ? odd : even).push_back(sent[i]);
    std::thread other([&] { run(1, odd); });
    run(1, even);
    other.join();
    CHECK(topic.committable() == kEvents);
    CHECK(topic.unfinished() == 0);
    CHECK(channel.unfinished() == 0);
}

TEST_CASE("ledger: a channel event tells an absent key, an empty value and a tombstone apart") {
    ChannelEvent both;
    both.bytes = "keyvalue";
    both.key_len = 3;
    both.value_len = 5;
    CHECK(both.key() == "key");
    CHECK(both.value() == "value");
    ChannelEvent keyless;
    keyless.bytes = "value";
    keyless.value_len = 5;
    CHECK_FALSE(keyless.key());
    CHECK(keyless.value() == "value");
    ChannelEvent tombstone;
    tombstone.bytes = "k";
    tombstone.key_len = 1;
    CHECK(tombstone.key() == "k");
    CHECK_FALSE(tombstone.value());
    ChannelEvent empty;
    empty.key_len = 0;
    empty.value_len = 0;
    CHECK(empty.key() == "");
    CHECK(empty.value() == "");
}
