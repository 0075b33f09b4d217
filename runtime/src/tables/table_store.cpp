#include "tables/table_store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "common/logging.hpp"
#include "tables/codec.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace mephisto {
namespace {

// RocksDB's own log goes to the host's log, warnings and errors only, instead of a LOG file in the state
// directory: on a full disk, RocksDB writing its error to that LOG file tripped an assertion in librocksdb
// (`sync_without_flush_called_`) and aborted the host before it could say why.
class HostLogger final : public rocksdb::Logger {
public:
    explicit HostLogger(std::string table) : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), table_(std::move(table)) {}
    using rocksdb::Logger::Logv;
    void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::WARN_LEVEL, format, ap); }
    void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
        if (level < GetInfoLogLevel()) return;
        char text[1024];
        std::vsnprintf(text, sizeof text, format, ap);
        const auto at = level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? spdlog::level::err : spdlog::level::warn;
        logger("rocksdb")->log(at, "table {}: {}", table_, text);
    }

private:
    std::string table_;
};

// A recovery batch with at least this many keys goes into the store as a table file of its own (ingest_locked)
// instead of through the memtable, whose skip-list insert is what limits recovery: fewer keys are not worth a
// file, its sync and a version edit.
constexpr size_t kIngestFrom = 20'000;

// Clean cache entries kept per shard; dirty ones are kept until the next commit regardless.
constexpr size_t kCleanCacheLimit = 200'000;
// RocksDB's memory per table (one DB): its memtables together, and its block cache.
constexpr size_t kMemtables = 32 << 20;
constexpr size_t kBlockCache = 16 << 20;

std::string family_name(int32_t partition) { return "p" + std::to_string(partition); }
std::string offset_key(int32_t partition) { return "changelog-offset/" + family_name(partition); }

}  // namespace

// ------------------------------------------------------------------------------------------------ TableShard

TableShard::TableShard(TableStore& store, int32_t partition, rocksdb::ColumnFamilyHandle* cf)
    : store_(store), partition_(partition), cf_(cf) {}

TableShard::~TableShard() = default;

std::optional<std::string> TableShard::load(std::string_view key) {
    if (!cf_) {
        auto it = memory_.find(std::string(key));
        if (it == memory_.end()) return std::nullopt;
        return it->second;
    }
    std::string value;
    auto st = store_.db_->Get(rocksdb::ReadOptions(), cf_, rocksdb::Slice(key.data(), key.size()), &value);
    if (st.IsNotFound()) return std::nullopt;
    if (!st.ok()) throw std::runtime_error("table " + store_.spec_.name + ": read failed: " + st.ToString());
    return value;
}

TableShard::Entry& TableShard::entry(std::string_view key) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    trim();
    return cache_.emplace(std::string(key), Entry{load(key), false}).first->second;
}

void TableShard::trim() {
    if (cache_.size() - dirty_ < kCleanCacheLimit) return;
    // Drop clean entries down to half the limit; which ones does not matter much for a bound, and an
    // unordered walk is cheap.
    size_t to_drop = cache_.size() - dirty_ - kCleanCacheLimit / 2;
    for (auto it = cache_.begin(); it != cache_.end() && to_drop > 0;) {
        if (!it->second.dirty && it->second.unpersisted == 0) {
            it = cache_.erase(it);
            --to_drop;
        } else {
            ++it;
        }
    }
}

std::optional<std::string> TableShard::get(std::string_view key) {
    std::lock_guard lock(mu_);
    return entry(key).value;
}

void TableShard::put(std::string_view key, std::string_view value) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
        trim();
        it = cache_.emplace(std::string(key), Entry{}).first;  // a blind write needs no read
    }
    if (!it->second.dirty) ++dirty_;
    it->second.value = std::string(value);
    it->second.dirty = true;
}

void TableShard::erase(std::string_view key) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(std::string(key), Entry{}).first;
    if (!it->second.dirty) ++dirty_;
    it->second.value.reset();
    it->second.dirty = true;
}

int64_t TableShard::add(std::string_view key, int64_t delta) {
    std::lock_guard lock(mu_);
    Entry& e = entry(key);
    int64_t current = 0;
    if (e.value && e.value->size() == 8) current = decode_int64(*e.value);
    else if (!e.value && store_.spec_.default_value && store_.spec_.default_value->size() == 8)
        current = decode_int64(*store_.spec_.default_value);
    const int64_t next = static_cast<int64_t>(static_cast<uint64_t>(current) + static_cast<uint64_t>(delta));
    if (!e.dirty) ++dirty_;
    e.value = encode_int64(next);
    e.dirty = true;
    return next;
}

Result<std::string> TableShard::merge(std::string_view key, std::string_view input) {
    const mph_aggregator_descriptor* aggregator = store_.aggregator();
    if (!aggregator) return make_error("table " + store_.spec_.name + " has no aggregator (declare `aggregate:`)");
    std::lock_guard lock(mu_);
    Entry& e = entry(key);
    const std::optional<std::string>& current = e.value ? e.value : store_.spec_.default_value;
    std::string next;
    char errbuf[256] = {};
    const mph_status st = aggregator->merge(
        current ? current->data() : nullptr, current ? current->size() : 0, input.data(), input.size(),
        [](void* sink, const void* data, size_t len) {
            if (data && len) static_cast<std::string*>(sink)->append(static_cast<const char*>(data), len);
        },
        &next, errbuf, sizeof errbuf);
    errbuf[sizeof errbuf - 1] = '\0';
    if (st != MPH_OK) return make_error(errbuf[0] ? std::string(errbuf) : "the aggregator refused the input");
    if (auto valid = validate_with(store_.codec(), next); !valid)
        return make_error("the aggregator's result is not a valid value: " + valid.error());
    if (auto large = store_.too_large(key.size(), next.size())) return make_error(*large);
    if (!e.dirty) ++dirty_;
    e.value = next;
    e.dirty = true;
    return next;
}

std::map<std::string, std::string> TableShard::snapshot() {
    std::lock_guard lock(mu_);
    std::map<std::string, std::string> out;
    if (!cf_) {
        out = memory_;
    } else {
        std::unique_ptr<rocksdb::Iterator> it(store_.db_->NewIterator(rocksdb::ReadOptions(), cf_));
        for (it->SeekToFirst(); it->Valid(); it->Next()) out.emplace(it->key().ToString(), it->value().ToString());
    }
    for (const auto& [key, e] : cache_) {
        if (e.value) out[key] = *e.value;
        else out.erase(key);
    }
    return out;
}

std::map<std::string, std::string> TableShard::scan(std::string_view lo, std::string_view hi) {
    std::lock_guard lock(mu_);
    std::map<std::string, std::string> out;
    if (!cf_) {
        for (auto it = memory_.lower_bound(std::string(lo)); it != memory_.end() && it->first < hi; ++it)
            out.emplace(it->first, it->second);
    } else {
        rocksdb::ReadOptions options;
        const rocksdb::Slice upper(hi.data(), hi.size());
        options.iterate_upper_bound = &upper;
        std::unique_ptr<rocksdb::Iterator> it(store_.db_->NewIterator(options, cf_));
        for (it->Seek(rocksdb::Slice(lo.data(), lo.size())); it->Valid(); it->Next())
            out.emplace(it->key().ToString(), it->value().ToString());
    }
    for (const auto& [key, e] : cache_) {
        if (key < lo || key >= hi) continue;
        if (e.value) out[key] = *e.value;
        else out.erase(key);
    }
    return out;
}

std::vector<TableChange> TableShard::take_changes() {
    std::lock_guard lock(mu_);
    std::vector<TableChange> out;
    out.reserve(dirty_);
    for (auto& [key, e] : cache_) {
        if (!e.dirty) continue;
        out.push_back(TableChange{key, e.value});
        e.dirty = false;
        ++e.unpersisted;
    }
    dirty_ = 0;
    return out;
}

bool TableShard::contains(std::string_view key) {
    std::lock_guard lock(mu_);
    return entry(key).value.has_value();
}

Status TableShard::apply(const std::vector<TableChange>& records, int64_t last_offset, bool invalidate_cache) {
    std::lock_guard lock(mu_);
    return apply_locked(records, last_offset, invalidate_cache, true);
}

Status TableShard::apply_locked(const std::vector<TableChange>& records, int64_t last_offset, bool invalidate_cache,
                                bool may_ingest) {
    if (invalidate_cache)
        for (const auto& r : records)
            if (auto it = cache_.find(std::string_view(r.key)); it != cache_.end() && !it->second.dirty) cache_.erase(it);
    if (!cf_) {
        for (const auto& r : records) {
            if (r.value) memory_[r.key] = *r.value;
            else memory_.erase(r.key);
        }
        memory_offset_ = std::max(memory_offset_, last_offset);
        return {};
    }
    // In key order: RocksDB's memtable, a skip list, keeps its place between inserts, so keys in order go in several
    // times faster than at random (a changelog and a cache both hand them over in no order: sorting 100,000 first
    // took recovery from 623,304 to 837,578 records/s). Only the last change of a key is written.
    std::vector<const TableChange*> in_order;
    in_order.reserve(records.size());
    for (const auto& r : records) in_order.push_back(&r);
    // Equal keys keep their log order by address (the pointers go up with it): std::sort, which needs no merge
    // buffer, instead of a stable sort.
    std::sort(in_order.begin(), in_order.end(), [](const TableChange* a, const TableChange* b) {
        const int c = a->key.compare(b->key);
        return c < 0 || (c == 0 && a < b);
    });
    size_t last = 0;  // keeps only the last change of each key, in place
    for (size_t i = 0; i < in_order.size(); ++i) {
        if (i + 1 < in_order.size() && in_order[i + 1]->key == in_order[i]->key) continue;  // a later one follows
        in_order[last++] = in_order[i];
    }
    in_order.resize(last);
    rocksdb::WriteBatch batch;
    if (!may_ingest || in_order.size() < kIngestFrom || !ingest_locked(in_order)) {
        for (const TableChange* r : in_order) {
            if (r->value) batch.Put(cf_, r->key, *r->value);
            else batch.Delete(cf_, r->key);
        }
    }
    batch.Put(store_.db_->DefaultColumnFamily(), offset_key(partition_), std::to_string(last_offset));
    auto st = store_.db_->Write(rocksdb::WriteOptions(), &batch);
    if (!st.ok()) {
        store_.write_failed_ = true;
        return make_error("table " + store_.spec_.name + ": cannot write to its store in " + store_.dir_.string() + ": " +
                          st.ToString() + (st.IsNoSpace() || st.ToString().find("No space") != std::string::npos
                                               ? " (the state directory's disk is full: free space, then restart; the "
                                                 "changelog holds every change, so nothing acknowledged is lost)"
                                               : ""));
    }
    return {};
}

bool TableShard::ingest_locked(const std::vector<const TableChange*>& in_order) {
    // The file gets a sequence number above everything in the store (RocksDB assigns it at ingestion), so its
    // values win over older ones exactly as the same writes through the memtable would. The changelog offset is
    // written after it: a crash between the two applies these records again, which leaves the same values.
    static std::atomic<uint64_t> files{0};
    const std::filesystem::path path =
        store_.dir_ / ("ingest-" + family_name(partition_) + "-" + std::to_string(files.fetch_add(1)) + ".sst");
    const rocksdb::Options options(store_.db_->GetDBOptions(), *store_.cf_options_);
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options, cf_);
    auto st = writer.Open(path.string());
    for (size_t i = 0; st.ok() && i < in_order.size(); ++i) {
        const TableChange& r = *in_order[i];
        st = r.value ? writer.Put(r.key, *r.value) : writer.Delete(r.key);
    }
    if (st.ok()) st = writer.Finish();
    if (st.ok()) {
        rocksdb::IngestExternalFileOptions ingest;
        ingest.move_files = true;  // a hard link: nothing is copied
        st = store_.db_->IngestExternalFile(cf_, {path.string()}, ingest);
    }
    std::error_code ignored;
    std::filesystem::remove(path, ignored);  // moved into the store, or failed: either way not ours any more
    if (!st.ok())
        logger("tables")->warn("table {}[{}]: cannot ingest {} recovered records as a file ({}); writing them one by one",
                               store_.spec_.name, partition_, in_order.size(), st.ToString());
    return st.ok();
}

Status TableShard::persist(const std::vector<TableChange>& changes, int64_t changelog_offset, uint64_t epoch) {
    // Cached entries that changed again since the take stay dirty and reach the store with the next flush;
    // the store only ever holds what the changelog holds.
    std::lock_guard lock(mu_);
    if (epoch != epoch_.load()) return {};  // fenced by drop_cache: the changelog is the authority now
    auto st = apply_locked(changes, changelog_offset, false, false);  // the memtable: a file would flush it
    for (const auto& change : changes)  // the store has them now: the cached copies may be evicted again
        if (auto it = cache_.find(change.key); it != cache_.end() && it->second.unpersisted > 0) --it->second.unpersisted;
    return st;
}

int64_t TableShard::persisted_offset() {
    std::lock_guard lock(mu_);
    if (!cf_) return memory_offset_;
    std::string value;
    auto st = store_.db_->Get(rocksdb::ReadOptions(), store_.db_->DefaultColumnFamily(), offset_key(partition_), &value);
    if (!st.ok()) return -1;
    return std::stoll(value);
}

void TableShard::drop_cache() {
    {
        std::lock_guard lock(window_mu);
        window_loaded = false;  // re-read from the store: another host may have moved it meanwhile
    }
    std::lock_guard lock(mu_);
    cache_.clear();
    dirty_ = 0;
    epoch_++;
}


// ------------------------------------------------------------------------------------------------ TableStore

Result<std::unique_ptr<TableStore>> TableStore::open(const TableSpec& spec, const std::filesystem::path& dir) {
    std::unique_ptr<TableStore> store(new TableStore(spec));
    store->dir_ = dir;
    if (spec.store == StoreKind::memory) return store;

    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error("table " + spec.name + ": cannot create " + dir.string() + ": " + ec.message());
    // A recovery's table file left behind by a crash before RocksDB took it (TableShard::ingest_locked): RocksDB
    // does not know its name, so it would never remove it.
    for (const auto& f : std::filesystem::directory_iterator(dir, ec))
        if (f.path().filename().string().starts_with("ingest-") && f.path().extension() == ".sst")
            std::filesystem::remove(f.path(), ec);

    rocksdb::DBOptions db_options;
    rocksdb::ColumnFamilyOptions cf_options;
    // Bounded memory (the defaults would let each partition's memtables grow to 2 x 64 MiB and give each its own
    // 32 MiB block cache: a 12-partition word count's host went past 330 MiB in 40 s). The memtables of all
    // partitions flush together past kMemtables, and one block cache serves them all; `options:` may change both.
    db_options.db_write_buffer_size = kMemtables;
    cf_options.write_buffer_size = kMemtables / 2;
    rocksdb::BlockBasedTableOptions table_options;
    table_options.block_cache = rocksdb::NewLRUCache(kBlockCache);
    cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.info_log = std::make_shared<HostLogger>(spec.name);
    rocksdb::ConfigOptions config;
    config.ignore_unknown_options = false;
    for (const auto& [key, value] : spec.rocksdb_options) {
        std::unordered_map<std::string, std::string> one{{key, value}};
        rocksdb::DBOptions db_next;
        rocksdb::ColumnFamilyOptions cf_next;
        if (rocksdb::GetDBOptionsFromMap(config, db_options, one, &db_next).ok()) {
            db_options = db_next;
        } else if (rocksdb::GetColumnFamilyOptionsFromMap(config, cf_options, one, &cf_next).ok()) {
            cf_options = cf_next;
        } else {
            return make_error(spec.mark.str() + ": tables." + spec.name + ".options: '" + key + ": " + value +
                              "' is not a RocksDB DBOptions or ColumnFamilyOptions setting");
        }
    }

    std::vector<std::string> names;
    if (!rocksdb::DB::ListColumnFamilies(db_options, dir.string(), &names).ok()) names = {rocksdb::kDefaultColumnFamilyName};
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) descriptors.emplace_back(n, cf_options);
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    auto st = rocksdb::DB::Open(db_options, dir.string(), descriptors, &handles, &db);
    if (!st.ok())
        return make_error("table " + spec.name + ": cannot open RocksDB at " + dir.string() + ": " + st.ToString() +
                          (st.IsNoSpace() || st.ToString().find("No space") != std::string::npos
                               ? " (the state directory's disk is full: free space, then start again)"
                               : ""));
    store->db_.reset(db);
    store->cf_options_ = std::make_unique<rocksdb::ColumnFamilyOptions>(cf_options);
    for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == rocksdb::kDefaultColumnFamilyName) db->DestroyColumnFamilyHandle(handles[i]);
        else store->families_[names[i]] = handles[i];
    }
    return store;
}

TableStore::TableStore(const TableSpec& spec) : spec_(spec) { types_.codec = &builtin_codec(spec.value); }

std::optional<std::string> TableStore::too_large(size_t key_len, size_t value_len) const {
    if (key_len + value_len <= max_record_bytes_) return std::nullopt;
    return "table " + spec_.name + ": a value of " + std::to_string(value_len) + " bytes with its key of " +
           std::to_string(key_len) + " is more than its changelog can take (" + std::to_string(max_record_bytes_) +
           " bytes: the producer's message.max.bytes less the record's framing)";
}

TableStore::~TableStore() {
    shards_.clear();
    if (db_) {
        for (auto& [name, handle] : families_) db_->DestroyColumnFamilyHandle(handle);
        db_->Close();
    }
}

Result<TableShard*> TableStore::shard(int32_t partition) {
    std::lock_guard lock(mu_);
    if (auto it = shards_.find(partition); it != shards_.end()) return it->second.get();
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    if (db_) {
        const std::string name = family_name(partition);
        if (auto it = families_.find(name); it != families_.end()) {
            cf = it->second;
        } else {
            auto st = db_->CreateColumnFamily(*cf_options_, name, &cf);  // the table's options, not RocksDB's defaults
            if (!st.ok()) return make_error("table " + spec_.name + ": cannot create column family " + name + ": " + st.ToString());
            families_[name] = cf;
        }
    }
    auto shard = std::make_unique<TableShard>(*this, partition, cf);
    TableShard* raw = shard.get();
    shards_.emplace(partition, std::move(shard));
    return raw;
}

std::vector<TableShard*> TableStore::shards() {
    std::lock_guard lock(mu_);
    std::vector<TableShard*> out;
    for (auto& [p, s] : shards_) out.push_back(s.get());
    return out;
}

std::vector<int32_t> TableStore::stored_partitions() {
    std::lock_guard lock(mu_);
    std::vector<int32_t> out;
    for (const auto& [name, handle] : families_) out.push_back(std::stoi(name.substr(1)));
    if (!db_)
        for (const auto& [partition, shard] : shards_) out.push_back(partition);  // a memory store's shards
    std::sort(out.begin(), out.end());
    return out;
}

uint64_t TableStore::estimate_keys(int32_t partition) {
    std::lock_guard lock(mu_);
    if (!db_) {
        auto it = shards_.find(partition);
        if (it == shards_.end()) return 0;
        std::lock_guard shard_lock(it->second->mu_);
        return it->second->memory_.size();
    }
    auto it = families_.find(family_name(partition));
    uint64_t keys = 0;
    if (it == families_.end() || !db_->GetIntProperty(it->second, "rocksdb.estimate-num-keys", &keys)) return 0;
    return keys;
}

}  // namespace mephisto
