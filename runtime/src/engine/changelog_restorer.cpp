// The changelog restorer (engine/changelog_restorer.hpp): one consumer reads every changelog partition to restore
// at once, from the offset after what the local store persisted up to the end captured at assignment, and an
// applier writes each shard's records in RocksDB write batches. A partition takes events again as soon as all of
// its shards are current (TaskManager::finish_recoveries, on the consumer thread); a global table's partitions are
// handed over by its follower instead. THREAD: the recovery thread, except start, cancel and status.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/logging.hpp"
#include "common/thread_name.hpp"
#include "common/wall_clock.hpp"
#include "engine/changelog_restorer.hpp"
#include "engine/global_table_follower.hpp"
#include "engine/standby_follower.hpp"
#include "kafka/client_config.hpp"

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Changelog records applied per RocksDB write batch: large, because a batch is sorted by key before it goes into
// the memtable, and the larger it is the closer its keys land (10,000: 837,578 records/s; 100,000: 962,274 on
// bench_word_count's recovery). What the reader holds over all shards is bounded apart (kRecoveryBuffered).
constexpr size_t kRecoveryBatch = 100'000;
constexpr size_t kRecoveryBuffered = 200'000;        // records read and not yet handed to the applier
constexpr size_t kRecoveryBufferedBytes = 64 << 20;  // their keys and values
constexpr auto kProgressEvery = std::chrono::seconds(3);
// A shard's records read are applied at least this often, even in small batches: a slow recovery abandoned by a
// rebalance keeps what it did, and the next one goes on from there.
constexpr auto kApplyAtLeastEvery = std::chrono::seconds(1);
constexpr size_t kReadBatch = 4096;  // messages taken from librdkafka's queue at a time

}  // namespace

// One shard to bring up to its changelog's end.
struct ChangelogRestorer::ShardRestore {
    TableShard* shard = nullptr;
    std::string name;  // "table[p]"
    std::vector<PartitionState*> waiting;  // the assigned partitions that use it
    int64_t from = 0, high = 0;            // [from, high): what to apply
    int64_t last = -1;                     // the last offset read (or skipped, at a gap)
    std::vector<TableChange> batch;        // the reader's, until handed to the applier
    size_t batch_bytes = 0;                // its keys and values
    bool ended = false;                    // the reader read to `high`
    std::atomic<bool> failed{false};       // the applier could not write it: the reader skips it
    int64_t applied = 0;                   // the applier's
    std::chrono::steady_clock::time_point submitted{};  // the reader's: when it last handed a batch over
    std::optional<int64_t> standby_offset;  // what the standby here had applied, when there was one
    bool settled = false;                   // recovered or failed (settle ran)
};

void ChangelogRestorer::start(std::vector<PartitionState*> partitions) {
    join();  // an incremental assignment's earlier restore
    cancel_ = false;
    thread_ = std::thread([this, partitions = std::move(partitions)] {
        name_this_thread("recovery");
        run(partitions);
    });
}

void ChangelogRestorer::cancel() {
    if (!thread_.joinable()) return;
    cancel_ = true;
    thread_.join();
}

std::vector<RecoveryRecord> ChangelogRestorer::history() const {
    std::lock_guard lock(status_mu_);
    return {history_.begin(), history_.end()};
}

void ChangelogRestorer::record(RecoveryRecord done) {
    records_replayed_ += static_cast<uint64_t>(done.replayed);
    std::lock_guard lock(status_mu_);
    history_.push_back(std::move(done));
    while (history_.size() > kRecoveryHistory) history_.pop_front();
}

std::vector<RecoveryStatus> ChangelogRestorer::status() const {
    std::lock_guard lock(status_mu_);
    std::vector<RecoveryStatus> out;
    for (const auto& [key, remaining] : remaining_) out.push_back({key.first, key.second, remaining});
    return out;
}

void ChangelogRestorer::run(std::vector<PartitionState*> partitions) {
    const int64_t started_ms = wall_ms();
    {
        // A standby taken over by a cancelled restore of a shard this one does not restore is history.
        std::set<const TableShard*> now;
        for (PartitionState* ps : partitions) now.insert(ps->shards.begin(), ps->shards.end());
        std::lock_guard lock(status_mu_);
        std::erase_if(standby_taken_, [&](const auto& entry) { return !now.count(entry.first); });
    }
    std::deque<ShardRestore> restores;  // a deque: the reader and the applier hold pointers into it
    std::map<TableShard*, size_t> index;
    std::map<PartitionState*, int> pending;  // shards each partition still waits for
    for (PartitionState* ps : partitions) {
        pending[ps] = 0;
        for (TableShard* shard : ps->shards) {
            if (cancel_) return;
            if (auto it = index.find(shard); it != index.end()) {  // shared by two copartitioned topics
                restores[it->second].waiting.push_back(ps);
                ++pending[ps];
                continue;
            }
            // A global table's follower already reads this partition: it hands it over once current.
            if (GlobalTableFollower* follower = s_.follower(shard->store().spec().name)) {
                if (auto st = follower->take_ownership(shard->partition(), cancel_); !st) {
                    if (cancel_) return;
                    s_.log->error("{}", st.error());
                    ps->table_failed = true;
                }
                continue;
            }
            index[shard] = restores.size();
            ShardRestore& r = restores.emplace_back();
            // A standby of it here stops following it before its offset is read: from then on only this
            // restore writes it, then its instances (a standby is never served as active).
            if (StandbyFollower* standby = s_.standby ? s_.standby() : nullptr) {
                r.standby_offset = standby->take_over(shard->store().spec().name, shard->partition());
                std::lock_guard lock(status_mu_);
                if (r.standby_offset) standby_taken_[shard] = *r.standby_offset;
                else if (auto it = standby_taken_.find(shard); it != standby_taken_.end()) r.standby_offset = it->second;
            }
            r.shard = shard;
            r.name = shard->store().spec().name + "[" + std::to_string(shard->partition()) + "]";
            r.waiting.push_back(ps);
            ++pending[ps];
        }
    }
    // A partition is recovered once each of its shards is (or one failed: it then stays paused).
    auto settle = [&](ShardRestore& r, const Status& st) {
        r.settled = true;
        {
            std::lock_guard lock(status_mu_);
            standby_taken_.erase(r.shard);
        }
        if (st)
            record({r.shard->store().spec().name, r.shard->partition(), r.applied, r.from, std::max(r.from, r.high),
                    r.standby_offset, started_ms, wall_ms() - started_ms});
        if (!st) {
            // A store that cannot be written (a full disk) stops the pipeline: every partition needs it.
            if (r.shard->store().write_failed()) s_.fail(st.error());
            else s_.log->error("{}", st.error());
        }
        for (PartitionState* ps : r.waiting) {
            if (!st) ps->table_failed = true;
            if (--pending[ps] == 0 || !st) ps->recovered = true;
        }
    };
    for (auto& [ps, count] : pending)
        if (count == 0) ps->recovered = true;
    if (!restores.empty()) restore_shards(restores, settle);
    // Abandoned by a revoke: what they applied (whole batches: possibly nothing) is in the store, with its offset.
    for (const auto& r : restores)
        if (!r.settled && r.high > 0)
            record({r.shard->store().spec().name, r.shard->partition(), r.applied, r.from, std::max(r.from, r.high),
                    r.standby_offset, started_ms, wall_ms() - started_ms, false});
}

void ChangelogRestorer::restore_shards(std::deque<ShardRestore>& restores,
                              const std::function<void(ShardRestore&, const Status&)>& settle) {
    const std::map<std::string, std::string> props = {{"bootstrap.servers", s_.bootstrap},
                                                      {"group.id", s_.app_id + "-recovery"},
                                                      {"enable.auto.commit", "false"},
                                                      {"enable.partition.eof", "true"},
                                                      {"queued.min.messages", "500000"},
                                                      // Everything to read is there already: a broker holding a
                                                      // fetch to the end of its wait (the embedded one does) only
                                                      // stalls the restore.
                                                      {"fetch.wait.max.ms", "10"},
                                                      {"client.id", "mephisto-" + s_.app_id + "-recovery"}};
    auto conf = make_conf({&props, &s_.client_properties});
    std::string refused = conf ? "" : conf.error();
    KafkaPtr consumer;
    if (conf) {
        if (auto made = make_client(RD_KAFKA_CONSUMER, std::move(*conf))) consumer = std::move(*made);
        else refused = made.error();
    }
    if (!consumer) {
        for (auto& r : restores) settle(r, make_error("table " + r.name + ": recovery: " + refused));
        return;
    }
    rd_kafka_t* rk = consumer.get();

    // Where each starts and ends. The end is captured once, at assignment: what was written before this host took
    // the partition over.
    rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(static_cast<int>(restores.size()));
    std::map<std::pair<std::string, int32_t>, ShardRestore*> by_partition;
    int64_t total = 0;
    for (auto& r : restores) {
        if (cancel_) break;
        const std::string& changelog = r.shard->store().spec().changelog_topic;
        const int32_t partition = r.shard->partition();
        const int64_t persisted = r.shard->persisted_offset();
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while ((err = rd_kafka_query_watermark_offsets(rk, changelog.c_str(), partition, &low, &high, 2000)) &&
               Clock::now() < deadline && !cancel_)
            std::this_thread::sleep_for(milliseconds(100));
        if (cancel_) break;
        if (err) {
            settle(r, make_error("table " + r.name + ": cannot read the end of " + changelog + ": " + rd_kafka_err2str(err)));
            continue;
        }
        if (persisted + 1 > high) {
            settle(r, make_error("table " + r.name + ": the store says it holds changelog " + changelog + " up to offset " +
                                 std::to_string(persisted) + ", but the changelog ends at " + std::to_string(high) +
                                 ". The local state is from another changelog (a reset or recreated topic?); the table "
                                 "will not serve until it is reset: mephisto reset --table " +
                                 r.shard->store().spec().name + " <pipeline.yaml>"));
            continue;
        }
        r.from = std::max(persisted + 1, low);
        r.high = high;
        r.last = r.from - 1;
        r.submitted = Clock::now();
        if (r.from >= high) {
            s_.log->info("table {}: up to date (changelog offset {})", r.name, persisted);
            settle(r, {});
            continue;
        }
        s_.log->info("table {}: recovering {} changelog record(s) from offset {}", r.name, high - r.from, r.from);
        total += high - r.from;
        {
            std::lock_guard lock(status_mu_);
            remaining_[{r.shard->store().spec().name, partition}] = high - r.from;
        }
        rd_kafka_topic_partition_list_add(assignment, changelog.c_str(), partition)->offset = r.from;
        by_partition[{changelog, partition}] = &r;
    }
    rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);

    // The applier: RocksDB's writes (their memtable insert is the cost) on a thread of their own while the reader
    // fetches. A shard's batches are applied in order; a short queue bounds what is held in memory.
    struct Job {
        ShardRestore* restore;
        std::vector<TableChange> batch;
        int64_t last;
        bool final;
    };
    constexpr size_t kQueuedBatches = 4;
    std::mutex jobs_mu;
    std::condition_variable jobs_cv;
    std::deque<Job> jobs;
    bool closed = false;
    const auto started = Clock::now();
    auto settle_one = [&](ShardRestore& r, const Status& st) {  // the applier's
        if (st) {
            const double secs = std::chrono::duration<double>(Clock::now() - started).count();
            s_.log->info("table {}: recovered {} record(s) in {:.2f} s ({:.0f} records/s)", r.name, r.applied, secs,
                       secs > 0 ? static_cast<double>(r.applied) / secs : 0.0);
        }
        settle(r, st);
    };
    std::thread applier([&] {
        name_this_thread("restore");
        for (;;) {
            Job job;
            {
                std::unique_lock lock(jobs_mu);
                jobs_cv.wait(lock, [&] { return !jobs.empty() || closed; });
                if (jobs.empty()) return;
                job = std::move(jobs.front());
                jobs.pop_front();
            }
            jobs_cv.notify_all();  // room for the reader
            ShardRestore& r = *job.restore;
            if (r.failed || cancel_) continue;
            Status st;
            if (!job.batch.empty()) {
                st = r.shard->apply(job.batch, job.last);
                r.applied += static_cast<int64_t>(job.batch.size());
            }
            if (!st) {
                r.failed = true;
                settle_one(r, st);
            } else if (job.final) {
                settle_one(r, {});
            }
        }
    });
    size_t buffered = 0, buffered_bytes = 0;  // in the shards' open batches
    auto submit = [&](ShardRestore& r, bool final) {
        r.submitted = Clock::now();
        buffered -= r.batch.size();
        buffered_bytes -= r.batch_bytes;
        r.batch_bytes = 0;
        {
            std::unique_lock lock(jobs_mu);
            jobs_cv.wait(lock, [&] { return jobs.size() < kQueuedBatches; });  // the applier always drains
            jobs.push_back(Job{&r, std::move(r.batch), r.last, final});
        }
        r.batch.clear();
        jobs_cv.notify_all();
    };
    auto last_report = started;
    size_t active = by_partition.size();
    const rd_kafka_topic_t* last_rkt = nullptr;  // most messages come in runs of one partition
    int32_t last_partition = -1;
    ShardRestore* current = nullptr;
    // Messages come in batches: one queue lock and wake-up per batch, not per record (and one clock read).
    rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
    std::vector<rd_kafka_message_t*> fetched(kReadBatch);
    while (active > 0 && !cancel_) {
        const ssize_t count = rd_kafka_consume_batch_queue(queue, 100, fetched.data(), fetched.size());
        for (ssize_t i = 0; i < count; ++i) {
            rd_kafka_message_t* m = fetched[i];
            if (!m->rkt) {  // a client error, not a partition's
                if (m->err) s_.log->warn("tables: recovery: {}", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            if (m->rkt != last_rkt || m->partition != last_partition) {
                auto it = by_partition.find({rd_kafka_topic_name(m->rkt), m->partition});
                current = it == by_partition.end() ? nullptr : it->second;
                last_rkt = m->rkt;
                last_partition = m->partition;
            }
            ShardRestore* r = current;
            if (r && !r->ended && !r->failed) {
                if (!m->err && m->offset < r->high) {
                    TableChange c;
                    c.key.assign(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
                    if (m->payload) c.value.emplace(static_cast<const char*>(m->payload), m->len);
                    const size_t bytes = c.key.size() + (c.value ? c.value->size() : 0);
                    r->batch_bytes += bytes;
                    buffered_bytes += bytes;
                    r->batch.push_back(std::move(c));
                    ++buffered;
                    r->last = m->offset;
                } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    r->last = std::max(r->last, m->offset - 1);  // gaps (aborted transactions, compaction) end here
                } else if (m->err) {
                    s_.log->warn("table {}: recovery: {}", r->name, rd_kafka_message_errstr(m));
                }
                if (r->last >= r->high - 1) {
                    r->ended = true;
                    submit(*r, true);
                    --active;
                    // Its changelog may go on (another owner's writes before the revoke): fetch no more of it.
                    rd_kafka_topic_partition_list_t* done = rd_kafka_topic_partition_list_new(1);
                    rd_kafka_topic_partition_list_add(done, rd_kafka_topic_name(m->rkt), m->partition);
                    rd_kafka_pause_partitions(rk, done);
                    rd_kafka_topic_partition_list_destroy(done);
                } else if (r->batch.size() >= kRecoveryBatch || buffered >= kRecoveryBuffered ||
                           buffered_bytes >= kRecoveryBufferedBytes) {
                    submit(*r, false);
                }
            }
            rd_kafka_message_destroy(m);
        }
        const auto now = Clock::now();
        for (auto& [key, r] : by_partition)
            if (!r->ended && !r->failed && !r->batch.empty() && now - r->submitted >= kApplyAtLeastEvery) submit(*r, false);
        if (now - last_report >= kProgressEvery) {
            int64_t left = 0;
            std::lock_guard lock(status_mu_);
            for (auto& [key, r] : by_partition) {
                if (r->ended || r->failed) continue;
                const int64_t remaining = r->high - 1 - r->last;
                left += remaining;
                remaining_[{r->shard->store().spec().name, r->shard->partition()}] = remaining;
            }
            const double secs = std::chrono::duration<double>(now - started).count();
            const double rate = secs > 0 ? static_cast<double>(total - left) / secs : 0;
            s_.log->info("tables: recovering {} partition(s), {} record(s) left, {:.0f} records/s, ETA {:.0f} s", active,
                       left, rate, rate > 0 ? static_cast<double>(left) / rate : 0.0);
            last_report = now;
        }
    }
    rd_kafka_queue_destroy(queue);
    rd_kafka_assign(rk, nullptr);
    {
        std::lock_guard lock(jobs_mu);
        closed = true;
    }
    jobs_cv.notify_all();
    applier.join();  // every batch read is applied (or, at a cancel, dropped)
    {
        std::lock_guard lock(status_mu_);
        for (auto& r : restores) remaining_.erase({r.shard->store().spec().name, r.shard->partition()});
    }
    if (cancel_) return;  // abandoned (a revoke): what was read but not applied is read again next time
    if (total > 0) {
        const double secs = std::chrono::duration<double>(Clock::now() - started).count();
        s_.log->info("tables: restored {} changelog record(s) of {} partition(s) in {:.2f} s ({:.0f} records/s)", total,
                   by_partition.size(), secs, secs > 0 ? static_cast<double>(total) / secs : 0.0);
    }
}

}  // namespace mephisto
