#include "engine/global_table_follower.hpp"

#include "common/thread_name.hpp"

#include <chrono>
#include <thread>

namespace mephisto {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kApplyBatch = 10'000;                   // records per partition per write batch
constexpr auto kApplyEvery = std::chrono::milliseconds(20);  // bounds how long a read record waits to be seen
constexpr auto kProgressEvery = std::chrono::seconds(3);

}  // namespace

GlobalTableFollower::GlobalTableFollower(TableStore& store, int partitions,
                                         std::map<std::string, std::string> client_properties,
                                         std::shared_ptr<spdlog::logger> log)
    : store_(store),
      partitions_(partitions),
      properties_(std::move(client_properties)),
      log_(std::move(log)),
      name_(store.spec().name),
      changelog_(store.spec().changelog_topic) {}

GlobalTableFollower::~GlobalTableFollower() { stop(); }

Status GlobalTableFollower::read_ends(rd_kafka_t* rk, std::vector<int64_t>& low, std::vector<int64_t>& high,
                                      const std::atomic<bool>& cancel) {
    low.assign(partitions_, 0);
    high.assign(partitions_, 0);
    for (int32_t p = 0; p < partitions_; ++p) {
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while ((err = rd_kafka_query_watermark_offsets(rk, changelog_.c_str(), p, &low[p], &high[p], 2000)) &&
               Clock::now() < deadline && !cancel && !stop_)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (err)
            return make_error("global table " + name_ + ": cannot read the end of " + changelog_ + "[" +
                              std::to_string(p) + "]: " + rd_kafka_err2str(err));
    }
    return {};
}

Status GlobalTableFollower::start() {
    const std::map<std::string, std::string> defaults = {{"group.id", store_.spec().changelog_topic + "-follower"},
                                                         {"enable.auto.commit", "false"},
                                                         {"enable.partition.eof", "true"},
                                                         {"auto.offset.reset", "earliest"},
                                                         {"fetch.wait.max.ms", "50"},
                                                         {"queued.min.messages", "500000"}};
    auto conf = make_conf({&defaults, &properties_});
    if (!conf) return make_error("global table " + name_ + ": " + conf.error());
    route_logs(conf->get());
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    if (!consumer) return make_error("global table " + name_ + ": " + consumer.error());
    consumer_ = std::move(*consumer);

    std::lock_guard lock(mu_);
    shards_.assign(partitions_, nullptr);
    applied_next_.assign(partitions_, 0);
    owned_.assign(partitions_, false);
    pending_.assign(partitions_, {});
    read_next_.assign(partitions_, 0);
    for (int32_t p = 0; p < partitions_; ++p) {
        auto shard = store_.shard(p);
        if (!shard) return make_error(shard.error());
        shards_[p] = *shard;
    }
    thread_ = std::thread([this] {
        name_this_thread("global");
        follow();
    });
    return {};
}

void GlobalTableFollower::stop() {
    stop_ = true;
    applied_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (consumer_) {
        rd_kafka_assign(consumer_.get(), nullptr);
        rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
}

void GlobalTableFollower::follow() {
    rd_kafka_t* rk = consumer_.get();
    std::vector<int64_t> low, high;
    if (auto st = read_ends(rk, low, high, stop_); !st) {
        std::lock_guard lock(mu_);
        error_ = st.error();
        log_->error("{}", error_);
        applied_cv_.notify_all();
        return;
    }
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions_);
    int64_t total = 0;
    {
        std::lock_guard lock(mu_);
        for (int32_t p = 0; p < partitions_; ++p) {
            const int64_t persisted = shards_[p]->persisted_offset();
            if (persisted + 1 > high[p]) {
                error_ = "global table " + name_ + "[" + std::to_string(p) + "]: the store says it holds changelog " +
                         changelog_ + " up to offset " + std::to_string(persisted) + ", but the changelog ends at " +
                         std::to_string(high[p]) + ". The local state is from another changelog; the table will not "
                         "serve until it is reset: mephisto reset --table " + name_ + " <pipeline.yaml>";
                log_->error("{}", error_);
                applied_cv_.notify_all();
                rd_kafka_topic_partition_list_destroy(list);
                return;
            }
            const int64_t from = std::max(persisted + 1, low[p]);
            applied_next_[p] = read_next_[p] = from;
            total += high[p] - from;
            rd_kafka_topic_partition_list_add(list, changelog_.c_str(), p)->offset = from;
        }
        initial_end_ = high;
    }
    log_->info("global table {}: following {} partition(s) of {}, {} record(s) behind", name_, partitions_, changelog_,
               total);
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);

    const auto started = Clock::now();
    auto last_apply = started, last_report = started;
    size_t buffered = 0;
    int64_t applied_total = 0;
    while (!stop_) {
        apply_rewinds(rk);
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 10);
        if (m) {
            const int32_t p = m->partition;
            if (p >= 0 && p < partitions_) {
                if (!m->err) {
                    TableChange c;
                    c.key.assign(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
                    if (m->payload) c.value.emplace(static_cast<const char*>(m->payload), m->len);
                    pending_[p].push_back(std::move(c));
                    read_next_[p] = m->offset + 1;
                    ++buffered;
                } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    read_next_[p] = std::max(read_next_[p], m->offset);  // gaps end here
                } else {
                    log_->warn("global table {}: {}", name_, rd_kafka_message_errstr(m));
                }
            }
            rd_kafka_message_destroy(m);
        }
        const auto now = Clock::now();
        if (buffered >= kApplyBatch || !m || now - last_apply >= kApplyEvery) {
            applied_total += static_cast<int64_t>(buffered);
            apply_pending();
            buffered = 0;
            last_apply = now;
        }
        if (!caught_up_) {
            bool done = true;
            {
                std::lock_guard lock(mu_);
                for (int32_t p = 0; p < partitions_; ++p) done = done && applied_next_[p] >= initial_end_[p];
            }
            if (done) {
                const double secs = std::chrono::duration<double>(now - started).count();
                log_->info("global table {}: caught up, {} record(s) applied in {:.2f} s", name_, applied_total, secs);
                caught_up_ = true;
                applied_cv_.notify_all();
            } else if (now - last_report >= kProgressEvery) {
                log_->info("global table {}: catching up, {} record(s) applied", name_, applied_total);
                last_report = now;
            }
        }
    }
}

void GlobalTableFollower::apply_pending() {
    std::lock_guard lock(mu_);
    bool moved = false;
    for (int32_t p = 0; p < partitions_; ++p) {
        if (read_next_[p] == applied_next_[p]) continue;
        // An owned partition's records are this host's own writes: its flushes persist them.
        if (!owned_[p] && !pending_[p].empty()) {
            if (auto st = shards_[p]->apply(pending_[p], read_next_[p] - 1, /*invalidate_cache=*/true); !st) {
                log_->error("global table {}: {}", name_, st.error());
                continue;  // retried with the next batch
            }
        }
        pending_[p].clear();
        applied_next_[p] = read_next_[p];
        moved = true;
    }
    if (moved) applied_cv_.notify_all();
}

Status GlobalTableFollower::take_ownership(int32_t partition, const std::atomic<bool>& cancel) {
    if (partition < 0 || partition >= partitions_)
        return make_error("global table " + name_ + " has no partition " + std::to_string(partition));
    // The end now: everything the previous owner wrote before this host was assigned the partition.
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while ((err = rd_kafka_query_watermark_offsets(consumer_.get(), changelog_.c_str(), partition, &low, &high, 2000)) &&
           Clock::now() < deadline && !cancel && !stop_)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (err)
        return make_error("global table " + name_ + ": cannot read the end of " + changelog_ + "[" +
                          std::to_string(partition) + "]: " + rd_kafka_err2str(err));
    std::unique_lock lock(mu_);
    // `cancel` is set without a notification: look again every 100 ms.
    while (!(cancel || stop_ || !error_.empty() || (caught_up_ && applied_next_[partition] >= high)))
        applied_cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (!error_.empty()) return make_error(error_);
    if (cancel || stop_) return make_error("global table " + name_ + ": cancelled");
    owned_[partition] = true;
    log_->info("table {}[{}]: up to date with the global table (changelog offset {})", name_, partition, high - 1);
    return {};
}

void GlobalTableFollower::release(int32_t partition) {
    std::lock_guard lock(mu_);
    if (partition < 0 || partition >= partitions_) return;
    owned_[partition] = false;
    // While owned, this partition's records were skipped as this host's own; a flush that did not finish
    // before the revoke was not persisted (see TableShard::persist). Reading again from what the store holds
    // brings in whatever it lacks.
    rewind_.push_back(partition);
}

void GlobalTableFollower::apply_rewinds(rd_kafka_t* rk) {
    std::vector<int32_t> rewinds;
    {
        std::lock_guard lock(mu_);
        rewinds.swap(rewind_);
        for (int32_t p : rewinds) {
            pending_[p].clear();
            read_next_[p] = applied_next_[p] = shards_[p]->persisted_offset() + 1;
        }
    }
    if (rewinds.empty()) return;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions_);
    for (int32_t p = 0; p < partitions_; ++p) rd_kafka_topic_partition_list_add(list, changelog_.c_str(), p)->offset = read_next_[p];
    rd_kafka_assign(rk, list);  // the follower's own consumer: re-assigning moves only the rewound positions
    rd_kafka_topic_partition_list_destroy(list);
}

}  // namespace mephisto
