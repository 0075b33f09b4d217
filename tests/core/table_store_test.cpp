// The table store in-process (tables/table_store): what a batch of changelog records leaves in RocksDB, whatever
// their order, and what a flush persists; the store is reopened from disk to see what it really kept.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tables/table_store.hpp"

using mephisto::StoreKind;
using mephisto::TableChange;
using mephisto::TableSpec;
using mephisto::TableStore;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() / ("mephisto-table-store-test-" + std::to_string(getpid()));
        std::filesystem::remove_all(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

TableSpec spec(StoreKind kind) {
    TableSpec table;
    table.name = "t";
    table.store = kind;
    return table;
}

std::map<std::string, std::string> contents(TableStore& store, int32_t partition) {
    auto shard = store.shard(partition);
    REQUIRE(shard.ok());
    return (*shard)->snapshot();
}

}  // namespace

TEST_CASE("a changelog batch applies as the log says: the last change of a key wins, in whatever order the keys come") {
    for (StoreKind kind : {StoreKind::rocksdb, StoreKind::memory}) {
        CAPTURE(static_cast<int>(kind));
        TempDir dir;
        // A log with repeats and deletions, keys in no order; the expected state is the log replayed one by one.
        std::vector<TableChange> log;
        std::map<std::string, std::string> expected;
        std::mt19937 random(7);
        for (int i = 0; i < 20'000; ++i) {
            std::string key = "k" + std::to_string(random() % 3'000);
            if (random() % 5 == 0) {
                log.push_back(TableChange{key, std::nullopt});
                expected.erase(key);
            } else {
                std::string value = "v" + std::to_string(i);
                log.push_back(TableChange{key, value});
                expected[key] = value;
            }
        }
        {
            auto store = TableStore::open(spec(kind), dir.path);
            REQUIRE(store.ok());
            auto shard = (*store)->shard(3);
            REQUIRE(shard.ok());
            // Two batches, the way recovery hands them over: the second overrides the first.
            const std::vector<TableChange> first(log.begin(), log.begin() + 12'345), second(log.begin() + 12'345, log.end());
            REQUIRE((*shard)->apply(first, 12'344).ok());
            REQUIRE((*shard)->apply(second, 19'999).ok());
            CHECK(contents(**store, 3) == expected);
            CHECK((*shard)->persisted_offset() == 19'999);
        }
        if (kind == StoreKind::memory) continue;
        auto reopened = TableStore::open(spec(kind), dir.path);  // what RocksDB kept
        REQUIRE(reopened.ok());
        CHECK(contents(**reopened, 3) == expected);
        CHECK((*(*reopened)->shard(3))->persisted_offset() == 19'999);
        CHECK(contents(**reopened, 4).empty());  // another partition's column family holds nothing of it
    }
}

TEST_CASE("a flush persists what the cache took, with its changelog offset, and a dropped cache fences a late flush") {
    TempDir dir;
    {
        auto store = TableStore::open(spec(StoreKind::rocksdb), dir.path);
        REQUIRE(store.ok());
        auto shard = *(*store)->shard(0);
        for (int i = 0; i < 1'000; ++i) shard->put("k" + std::to_string(999 - i), "v" + std::to_string(i));
        shard->erase("k5");
        const auto changes = shard->take_changes();
        CHECK(changes.size() == 1'000);
        const uint64_t epoch = shard->epoch();
        REQUIRE(shard->persist(changes, 41, epoch).ok());
        CHECK(shard->persisted_offset() == 41);

        shard->put("late", "x");
        const auto late = shard->take_changes();
        const uint64_t before_drop = shard->epoch();
        shard->drop_cache();  // revoked meanwhile: the next owner recovers it from the changelog
        REQUIRE(shard->persist(late, 42, before_drop).ok());
        CHECK(shard->persisted_offset() == 41);
    }
    auto reopened = TableStore::open(spec(StoreKind::rocksdb), dir.path);
    REQUIRE(reopened.ok());
    const auto stored = contents(**reopened, 0);
    CHECK(stored.size() == 999);
    CHECK(stored.at("k0") == "v999");
    CHECK(stored.count("k5") == 0);
    CHECK(stored.count("late") == 0);
}

TEST_CASE("a large recovery batch goes in as a table file, ordered with the memtable's writes as the log says") {
    TempDir dir;
    auto sst_files = [&] {
        size_t n = 0;
        for (const auto& f : std::filesystem::directory_iterator(dir.path)) n += f.path().extension() == ".sst";
        return n;
    };
    std::map<std::string, std::string> expected;
    {
        auto store = TableStore::open(spec(StoreKind::rocksdb), dir.path);
        REQUIRE(store.ok());
        auto shard = *(*store)->shard(0);
        // Older values through the memtable (a flush).
        for (int i = 0; i < 1'000; ++i) shard->put("k" + std::to_string(i), "old");
        REQUIRE(shard->persist(shard->take_changes(), 10, shard->epoch()).ok());
        for (int i = 0; i < 1'000; ++i) expected["k" + std::to_string(i)] = "old";
        CHECK(sst_files() == 0);  // all of it still in the memtable

        shard->drop_cache();  // revoked, then assigned again: recovery starts from the store
        // A recovery batch of 40,000 distinct keys, with repeats and deletions: it becomes a table file.
        std::vector<TableChange> batch;
        std::mt19937 random(11);
        for (int i = 0; i < 60'000; ++i) {
            std::string key = "k" + std::to_string(i < 40'000 ? i : random() % 40'000);
            if (random() % 7 == 0) {
                batch.push_back(TableChange{key, std::nullopt});
                expected.erase(key);
            } else {
                batch.push_back(TableChange{key, "r" + std::to_string(i)});
                expected[key] = "r" + std::to_string(i);
            }
        }
        REQUIRE(shard->apply(batch, 70'000).ok());
        CHECK(sst_files() >= 1);  // ingested, not written through the memtable
        CHECK(shard->persisted_offset() == 70'000);

        // Newer writes through the memtable win over the file.
        for (int i = 0; i < 10; ++i) shard->put("k" + std::to_string(i), "new");
        REQUIRE(shard->persist(shard->take_changes(), 70'001, shard->epoch()).ok());
        for (int i = 0; i < 10; ++i) expected["k" + std::to_string(i)] = "new";
        CHECK(contents(**store, 0) == expected);
    }
    for (const auto& f : std::filesystem::directory_iterator(dir.path))
        CHECK_FALSE(f.path().filename().string().starts_with("ingest-"));  // RocksDB took the file
    auto reopened = TableStore::open(spec(StoreKind::rocksdb), dir.path);
    REQUIRE(reopened.ok());
    CHECK(contents(**reopened, 0) == expected);
    CHECK((*(*reopened)->shard(0))->persisted_offset() == 70'001);
}
