#include "engine/offset_committer.hpp"

#include <algorithm>

namespace mephisto {

void OffsetCommitter::commit(bool sync, std::chrono::milliseconds timeout, bool start_flushes) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
    {
        auto partitions = partitions_.lock();
        for (auto& [key, ps] : *partitions) {
            const std::optional<int64_t> next = ps->committable();
            if (!next || ps->recovering || ps->table_failed || ps->changelog_lost) continue;
            int64_t target = *next;
            if (!ps->shards.empty()) {
                // Every change must reach the changelog before the input offset that caused it is committed.
                auto allowed = state_.gate(*ps, *next, start_flushes);
                if (!allowed) continue;
                target = *allowed;
            }
            if (!ps->should_commit(target, sync)) continue;
            rd_kafka_topic_partition_list_add(list, key.first.c_str(), key.second)->offset = target;
        }
    }
    if (list->cnt > 0) {
        if (!sync) {
            rd_kafka_commit(consumer_, list, 1);
        } else {
            // A commit that waits at most `timeout`: the broker may be gone at shutdown.
            rd_kafka_queue_t* q = rd_kafka_queue_new(consumer_);
            rd_kafka_commit_queue(consumer_, list, q, nullptr, nullptr);
            rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(std::max<int64_t>(timeout.count(), 1)));
            if (!ev) {
                log_->warn("final offset commit not confirmed within {} ms; the uncommitted events will be "
                           "processed again", timeout.count());
            } else {
                rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
                const rd_kafka_topic_partition_list_t* done = rd_kafka_event_topic_partition_list(ev);
                if (err) log_->warn("final offset commit failed: {}", rd_kafka_err2str(err));
                auto partitions = partitions_.lock();
                for (int i = 0; !err && done && i < done->cnt; ++i)
                    if (PartitionState* ps = partitions.find(done->elems[i].topic, done->elems[i].partition);
                        ps && !done->elems[i].err)
                        ps->confirmed(done->elems[i].offset);
                rd_kafka_event_destroy(ev);
            }
            rd_kafka_queue_destroy(q);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void OffsetCommitter::on_report(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* offsets) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        // Not marked committed locally: the next interval sends it again (RELIABILITY 6).
        log_->warn("offset commit failed: {}; will retry", rd_kafka_err2str(err));
    }
    auto partitions = partitions_.lock();
    for (int i = 0; offsets && i < offsets->cnt; ++i) {
        const auto& tp = offsets->elems[i];
        PartitionState* ps = partitions.find(tp.topic, tp.partition);
        if (!ps) continue;
        if (tp.err == RD_KAFKA_RESP_ERR_NO_ERROR && err == RD_KAFKA_RESP_ERR_NO_ERROR) ps->confirmed(tp.offset);
        else ps->commit_failed(tp.offset);
    }
}

}  // namespace mephisto
