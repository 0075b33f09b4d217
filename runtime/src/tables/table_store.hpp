#pragma once
// Host-owned table state (DESIGN.md §6, Kafka Streams' state stores with a record cache).
//
// A TableStore is one table of one pipeline: one RocksDB with a column family per partition (one DB per
// partition gave Faust users "too many open files"), or plain maps for `store: memory`. Each partition is a
// TableShard with a write-back cache: between two commits a hot key costs a hash-map update, and the
// changelog carries one record per changed key per commit. The changelog offset a shard has persisted is
// written in the same RocksDB write batch as the data it covers, so store and offset never disagree.
#include <filesystem>
#include <atomic>
#include <climits>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "tables/codec.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
struct ColumnFamilyOptions;
}  // namespace rocksdb

namespace mephisto {

class TableStore;

// One change on its way to the changelog: a value, or a deletion (tombstone).
struct TableChange {
    std::string key;
    std::optional<std::string> value;
};

class TableShard {
public:
    TableShard(TableStore& store, int32_t partition, rocksdb::ColumnFamilyHandle* cf);
    ~TableShard();
    TableShard(const TableShard&) = delete;
    TableShard& operator=(const TableShard&) = delete;

    int32_t partition() const { return partition_; }
    TableStore& store() const { return store_; }

    // One changelog flush at a time per shard, so stored values and offsets only move forward.
    // THREAD: set by the pipeline's consumer thread.
    std::atomic<bool> flush_in_progress{false};

    // THREAD: any (the shard locks). Reads see the cache, then the store.
    std::optional<std::string> get(std::string_view key);
    void put(std::string_view key, std::string_view value);
    void erase(std::string_view key);
    int64_t add(std::string_view key, int64_t delta);  // int64 tables
    // Folds `input` into key's value with the table's aggregator; the table's codec checks the result. The
    // error is the aggregator's or the codec's reason, and then nothing changed.
    Result<std::string> merge(std::string_view key, std::string_view input);
    // Every live entry in key order (a consistent copy: visits may write to the table).
    std::map<std::string, std::string> snapshot();
    // The live entries with keys in [lo, hi), in key order (a copy).
    std::map<std::string, std::string> scan(std::string_view lo, std::string_view hi);

    // Windowed tables (tables/windowed_table.hpp): the partition's stream time and the close and expiry marks,
    // loaded from the shard's meta keys on first use. Guarded by window_mu.
    std::mutex window_mu;
    bool window_loaded = false;
    int64_t stream_time = -1;           // the largest event time seen; persisted
    int64_t closed_before = INT64_MIN;  // windows starting before this closed
    int64_t closed_persisted = INT64_MIN;  // the close mark stored: what those closes produced was acknowledged
    int64_t expired_before = INT64_MIN; // windows starting before this were removed (in memory: rescanned once)
    int64_t next_session_close = INT64_MIN;  // sessions: the stream time at which the next one may close
    // Sessions closed (handed to on_window_close) whose closed state is not stored yet: it is, once what the
    // close produced is acknowledged (WindowedShard::persist_session_closes). Their index keys; in memory only,
    // so after a crash they close again rather than never.
    std::set<std::string> sessions_closing;

    // Commit support. Takes the changes since the last take (cache entries stay, now clean).
    std::vector<TableChange> take_changes();
    // Persists `changes` (already acknowledged by the changelog) with `changelog_offset`, the offset of the
    // last of them, in one write batch, unless the cache was dropped since `epoch` (then the partition may
    // belong to someone else by now, and recovery or a global table's follower reads them from the changelog).
    Status persist(const std::vector<TableChange>& changes, int64_t changelog_offset, uint64_t epoch);
    // Bumped by drop_cache: flushes started before it no longer persist.
    uint64_t epoch() const { return epoch_.load(); }
    // Changelog offset the store is up to date with, -1 when none.
    int64_t persisted_offset();
    // Recovery: applies changelog records (key, value or tombstone) up to `last_offset` in one batch.
    // `invalidate_cache` drops the cached copies of those keys: a global table's follower writes partitions
    // that this host's instances read but do not own.
    Status apply(const std::vector<TableChange>& records, int64_t last_offset, bool invalidate_cache = false);
    // Whether key has a value (in the cache or the store).
    bool contains(std::string_view key);
    // Drops the cache (on revoke, after the final flush) and fences flushes still in flight (see persist).
    // Dirty entries would be lost: the caller flushed.
    void drop_cache();

private:
    friend class TableStore;
    struct Entry {
        std::optional<std::string> value;  // nullopt: deleted
        bool dirty = false;
        // Flushes that took this value and have not persisted it yet: until then the store holds an older
        // value, so the entry must stay cached (trim skips it).
        uint32_t unpersisted = 0;
    };
    // `may_ingest`: a large batch may go in as a table file (recovery); a flush's goes through the memtable,
    // which a file overlapping it would flush.
    Status apply_locked(const std::vector<TableChange>& records, int64_t last_offset, bool invalidate_cache,
                        bool may_ingest);
    // Writes `in_order` (sorted by key, one change per key) as a table file and hands it to RocksDB whole; false
    // when it could not (the caller then writes them through the memtable). Mutex held.
    bool ingest_locked(const std::vector<const TableChange*>& in_order);
    std::optional<std::string> load(std::string_view key);  // from the store, mutex held
    Entry& entry(std::string_view key);                      // cached entry, loaded on miss, mutex held
    void trim();                                             // bounds the clean part of the cache

    TableStore& store_;
    int32_t partition_;
    rocksdb::ColumnFamilyHandle* cf_;       // null for memory tables
    std::map<std::string, std::string> memory_;  // the memory store
    int64_t memory_offset_ = -1;
    // Looked up by string_view: a cache hit (the hot path of a counter) allocates nothing.
    struct KeyHash {
        using is_transparent = void;
        size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
    };
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> cache_;
    size_t dirty_ = 0;
    std::atomic<uint64_t> epoch_{0};
};

class TableStore {
public:
    // Opens (creating if missing) the table's store under `dir` (RocksDB), or a memory store.
    static Result<std::unique_ptr<TableStore>> open(const TableSpec& spec, const std::filesystem::path& dir);
    ~TableStore();

    const TableSpec& spec() const { return spec_; }
    // The value codec (a built-in until bind_types) and the aggregator (null when none).
    const mph_codec_descriptor& codec() const { return *types_.codec; }
    const mph_aggregator_descriptor* aggregator() const { return types_.aggregator; }
    // Binds codecs and aggregators resolved against the loaded plugins (which must outlive the store).
    void bind_types(const TableTypes& types) { types_ = types; }
    // The shard of `partition`, created on first use. THREAD: any.
    Result<TableShard*> shard(int32_t partition);
    // Shards this store has open, by partition.
    std::vector<TableShard*> shards();
    // Partitions that have stored state (column families), for the CLI.
    std::vector<int32_t> stored_partitions();
    // Keys stored for a partition: RocksDB's estimate (cheap), or the count of a memory store. THREAD: any.
    uint64_t estimate_keys(int32_t partition);

    // Set once a write to the store failed (a full disk, an I/O error): the store is read-only from then on
    // (RocksDB's own rule), and the pipeline must stop; the changelog still holds every change. THREAD: any.
    bool write_failed() const { return write_failed_.load(); }
    const std::filesystem::path& dir() const { return dir_; }
    // The largest key plus value its changelog can take (the producer's message.max.bytes, less the record's
    // framing): a larger write is refused, where the agent's error policy can handle it, rather than failing
    // the changelog flush (and the pipeline) at every restart.
    size_t max_record_bytes() const { return max_record_bytes_; }
    void set_max_record_bytes(size_t bytes) { max_record_bytes_ = bytes; }
    // "table T: a value of N bytes with its key of K is more than its changelog can take (...)" when it is.
    std::optional<std::string> too_large(size_t key_len, size_t value_len) const;

    // Windowed tables: events later than the grace period (dropped), windows closed and windows removed.
    std::atomic<uint64_t> late_events{0};
    std::atomic<uint64_t> windows_closed{0};
    std::atomic<uint64_t> windows_expired{0};

private:
    friend class TableShard;
    explicit TableStore(const TableSpec& spec);  // out of line: rocksdb::DB is incomplete here
    TableSpec spec_;
    TableTypes types_;
    std::filesystem::path dir_;
    std::unique_ptr<rocksdb::DB> db_;
    std::unique_ptr<rocksdb::ColumnFamilyOptions> cf_options_;  // for the partitions' column families created later
    std::map<std::string, rocksdb::ColumnFamilyHandle*> families_;  // "p<N>" -> handle
    std::mutex mu_;
    std::map<int32_t, std::unique_ptr<TableShard>> shards_;
    std::atomic<bool> write_failed_{false};
    size_t max_record_bytes_ = 1'000'000 - 512;
};

}  // namespace mephisto
