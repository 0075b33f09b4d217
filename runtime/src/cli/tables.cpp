// `mephisto tables`, `mephisto table get|dump` and `mephisto reset --table`: the local state of a stopped
// host, read through the same store code the host uses. A running host holds RocksDB's lock, and the error
// says so.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "common/json_bounds.hpp"
#include "common/logging.hpp"
#include "host/host.hpp"
#include "tables/codec.hpp"
#include "tables/windowed_table.hpp"
#include "tables/table_store.hpp"

namespace mephisto::cli {
namespace {

// A value for people: raw bytes as they are, everything else as its codec renders it in JSON.
std::string show(const TableStore& store, const std::string& value) {
    if (store.spec().value == ValueCodec::raw) return value;
    return to_json_with(store.codec(), value);
}

// The same as a JSON value, for dump's JSON lines; what does not parse, or nests too deep to render, as a string.
nlohmann::json as_json(const TableStore& store, const std::string& value) {
    if (store.spec().value == ValueCodec::raw) return value;
    auto shown = parse_json_bounded(to_json_with(store.codec(), value));
    if (shown.is_discarded()) return value;
    return shown;
}

// Loads the pipeline with --state-dir applied; errors are printed.
std::optional<PipelineConfig> load(const TableOptions& o) {
    HostOptions overrides;
    overrides.state_dir = o.state_dir;
    auto loaded = load_with_overrides(o.file, overrides);
    if (!loaded) {
        std::cerr << loaded.error() << "\n";
        return std::nullopt;
    }
    return std::move(*loaded);
}

// Loads the pipeline and opens one table's store; errors are printed.
std::unique_ptr<TableStore> open_table(const TableOptions& o, const std::string& table, PipelineConfig& config) {
    auto loaded = load(o);
    if (!loaded) return nullptr;
    config = std::move(*loaded);
    const TableSpec* spec = config.table(table);
    if (!spec) {
        std::cerr << o.file << ": no table '" << table << "' in this pipeline\n";
        return nullptr;
    }
    if (spec->store == StoreKind::memory) {
        std::cerr << "table " << table << " is a memory table: it has no local state (its changelog "
                  << spec->changelog_topic << " is the only copy)\n";
        return nullptr;
    }
    const auto dir = config.state_dir / table;
    if (!std::filesystem::exists(dir)) {
        std::cerr << "table " << table << ": no local state at " << dir.string() << "\n";
        return nullptr;
    }
    auto store = TableStore::open(*spec, dir);
    if (!store) {
        std::cerr << store.error();
        if (store.error().find("lock") != std::string::npos) std::cerr << " (is a host running on this state?)";
        std::cerr << "\n";
        return nullptr;
    }
    if (spec->value == ValueCodec::plugin) {
        // A plugin's codec renders the values: load the plugins the pipeline names, for the process's life.
        static std::vector<PluginMap> loaded_plugins;
        logger("loader")->set_level(spdlog::level::warn);  // the output is the value alone
        auto plugins = load_pipeline_plugins(config);
        if (!plugins) {
            std::cerr << plugins.error() << "\n";
            return nullptr;
        }
        loaded_plugins.push_back(std::move(*plugins));
        auto types = resolve_table_types(*spec, loaded_plugins.back());
        if (!types) {
            std::cerr << types.error() << "\n";
            return nullptr;
        }
        (*store)->bind_types(*types);
    }
    return std::move(*store);
}

}  // namespace

int list_tables(const TableOptions& o) {
    auto config = load(o);
    if (!config) return 1;
    if (config->tables.empty()) std::cout << o.file << ": no tables\n";
    int failures = 0;
    for (const auto& spec : config->tables) {
        std::cout << spec.name << "  " << (spec.store == StoreKind::rocksdb ? "rocksdb" : "memory") << ", "
                  << (spec.value == ValueCodec::plugin ? spec.value_codec.plugin + "." + spec.value_codec.name
                                                       : std::string(codec_name(spec.value)))
                  << " values" << (spec.global ? " (global)" : "") << ", changelog " << spec.changelog_topic << "\n";
        if (spec.store == StoreKind::memory) continue;
        PipelineConfig unused;
        auto store = open_table(o, spec.name, unused);
        if (!store) {
            ++failures;
            continue;
        }
        for (int32_t p : store->stored_partitions()) {
            auto shard = store->shard(p);
            if (!shard) continue;
            std::cout << "  partition " << p << ": " << (*shard)->snapshot().size() << " key(s), changelog offset "
                      << (*shard)->persisted_offset() << "\n";
        }
    }
    return failures == 0 ? 0 : 1;
}

int table_get(const TableOptions& o, const std::string& table, const std::string& key) {
    PipelineConfig config;
    auto store = open_table(o, table, config);
    if (!store) return 1;
    for (int32_t p : store->stored_partitions()) {
        auto shard = store->shard(p);
        if (!shard) continue;
        if (const auto& window = store->spec().window) {  // every live window of the key, oldest first
            auto windows = WindowedShard(**shard, *window).windows_of(key);
            for (const auto& [w, value] : windows)
                std::cout << "[" << w.start << ", " << w.end << ") " << show(*store, value) << "\n";
            if (!windows.empty()) return 0;
        } else if (auto v = (*shard)->get(key)) {
            std::cout << show(*store, *v) << "\n";
            return 0;
        }
    }
    std::cerr << "table " << table << ": no key '" << key << "'\n";
    return 3;
}

int table_dump(const TableOptions& o, const std::string& table) {
    PipelineConfig config;
    auto store = open_table(o, table, config);
    if (!store) return 1;
    for (int32_t p : store->stored_partitions()) {
        auto shard = store->shard(p);
        if (!shard) continue;
        for (const auto& [key, value] : (*shard)->snapshot()) {
            nlohmann::json line{{"partition", p}, {"key", key}, {"value", as_json(*store, value)}};
            if (const auto& window = store->spec().window) {  // "<window start><key>", and the window's marks
                auto split = split_window_key(key);
                if (!split) continue;
                line["key"] = std::string(split->second);
                if (window->kind == WindowKind::session) line["session_start"] = split->first;  // its end: `table get`
                else line["window"] = {split->first, split->first + window->width().count()};
            }
            std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        }
    }
    return 0;
}

int reset_table(const TableOptions& o, const std::string& table) {
    auto config = load(o);
    if (!config) return 1;
    if (!config->table(table)) {
        std::cerr << o.file << ": no table '" << table << "' in this pipeline\n";
        return 1;
    }
    {
        // Opening takes RocksDB's lock: a running host is never wiped under its feet.
        PipelineConfig unused;
        if (std::filesystem::exists(config->state_dir / table) && config->table(table)->store == StoreKind::rocksdb &&
            !open_table(o, table, unused))
            return 1;
    }
    std::error_code ec;
    auto removed = std::filesystem::remove_all(config->state_dir / table, ec);
    if (ec) {
        std::cerr << "reset: " << ec.message() << "\n";
        return 1;
    }
    std::cout << "table " << table << ": removed local state at " << (config->state_dir / table).string() << " ("
              << removed << " file(s)); the next start rebuilds it from " << config->table(table)->changelog_topic
              << "\n";
    return 0;
}

}  // namespace mephisto::cli
