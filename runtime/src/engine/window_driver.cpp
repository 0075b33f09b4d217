// The window driver: after a lane's events, its windowed tables' stream time moves to their time; windows that
// closed go to the one agent taking them (on_window_close), and expired windows are removed. What must be
// stored once the closes' outputs are acknowledged rides on the event (InFlight::on_finished).
// THREAD: the lane's worker.
#include "engine/lane_runner.hpp"

#include <algorithm>

#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "tables/windowed_table.hpp"

namespace mephisto {

void LaneRunner::advance_windows(Lane& lane, const std::vector<const rd_kafka_message_t*>& events, InFlight* inflight) {
    for (const TableBinding& b : lane.ctx.tables) {
        if (!b.store->spec().window) continue;
        const WindowSpec& spec = *b.store->spec().window;
        int64_t t = -1;
        for (const rd_kafka_message_t* msg : events) {
            rd_kafka_timestamp_type_t type;
            const int64_t ts = rd_kafka_message_timestamp(msg, &type);
            t = std::max(t, event_time(spec, type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
                                       {static_cast<const char*>(msg->payload), msg->payload ? msg->len : 0}));
        }
        const auto closers = std::atomic_load(s_.window_closers);  // a reload may replace it
        auto closer = closers->find(b.name);
        const bool takes = closer == closers->end() || closer->second == lane.agent->spec->name;
        uint64_t expired = 0;
        std::optional<int64_t> close_mark;
        auto closed = WindowedShard(*b.shard, spec).advance(t, takes, expired, close_mark);
        if (expired) b.store->windows_expired.fetch_add(expired, std::memory_order_relaxed);
        if (close_mark) {
            // Stored once what on_window_close sends for these windows is acknowledged, with the event: a crash
            // before that closes them again (at-least-once), never loses a close.
            TableShard* shard = b.shard;
            auto store_mark = [shard, &spec, mark = *close_mark] { WindowedShard(*shard, spec).persist_close_mark(mark); };
            if (!inflight->on_finished) inflight->on_finished = std::make_unique<std::vector<std::function<void()>>>();
            inflight->on_finished->push_back(std::move(store_mark));
        }
        if (closed.empty()) continue;
        if (spec.kind == WindowKind::session) {
            // Likewise for sessions: each is stored as closed once what its close sent is acknowledged.
            std::vector<std::pair<std::string, TimeWindow>> sessions;
            for (const auto& c : closed) sessions.emplace_back(c.key, c.window);
            TableShard* shard = b.shard;
            auto store_closes = [shard, &spec, sessions = std::move(sessions)] {
                WindowedShard(*shard, spec).persist_session_closes(sessions);
            };
            if (!inflight->on_finished) inflight->on_finished = std::make_unique<std::vector<std::function<void()>>>();
            inflight->on_finished->push_back(std::move(store_closes));
        }
        b.store->windows_closed.fetch_add(closed.size(), std::memory_order_relaxed);
        const auto on_close = lane.agent->info->callbacks.on_window_close;
        if (!on_close || closer == closers->end()) continue;
        lane.ctx.inflight = inflight;  // what it sends is acknowledged before the event's offset commits
        for (const auto& c : closed) {
            const mph_window window{sizeof(mph_window), c.window.start, c.window.end};
            lane.ctx.error.clear();
            lane.ctx.views.clear();
            ClockedCall call(lane.call, call_record(lane, "on_window_close", inflight->offset()));
            mph_status st = on_close(lane.instance, &lane.ctx, b.name.c_str(), c.key.data(), c.key.size(), &window,
                                     c.value.data(), c.value.size());
            if (st != MPH_OK) {
                lane.agent->stats.failures.fetch_add(1, std::memory_order_relaxed);
                lane.agent->log->warn("on_window_close of {} [{}, {}) returned {}: {}", b.name, c.window.start,
                                      c.window.end, st, lane.ctx.error);
            }
        }
        lane.ctx.inflight = nullptr;
    }
}

}  // namespace mephisto
