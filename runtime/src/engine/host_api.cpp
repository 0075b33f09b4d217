// The host function table (ABI 1.0). Each function validates its arguments and returns a status; nothing
// throws across the line (convention 9).
#include "common/logging.hpp"
#include "engine/agent_context.hpp"
#include "engine/pipeline.hpp"
#include "tables/codec.hpp"
#include "tables/table_store.hpp"
#include "tables/windowed_table.hpp"

namespace mephisto {
namespace {

void api_log(mph_agent_ctx* ctx, int32_t level, const char* msg, size_t len) {
    static auto plugin_logger = logger("plugin");
    auto& log = ctx && ctx->log ? ctx->log : plugin_logger;
    auto lvl = level <= MPH_LOG_TRACE ? spdlog::level::trace
             : level == MPH_LOG_DEBUG ? spdlog::level::debug
             : level == MPH_LOG_INFO  ? spdlog::level::info
             : level == MPH_LOG_WARN  ? spdlog::level::warn
                                      : spdlog::level::err;
    log->log(lvl, "{}", std::string_view(msg ? msg : "", msg ? len : 0));
}

// A reason is for logs and dead-letter headers: bounded, so a plugin cannot make either unbounded.
constexpr size_t kMaxErrorBytes = 4096;

void api_set_error(mph_agent_ctx* ctx, const char* msg, size_t len) {
    if (!ctx) return;
    ctx->error.assign(msg ? msg : "", msg ? std::min(len, kMaxErrorBytes) : 0);
    if (msg && len > kMaxErrorBytes) ctx->error += "... (" + std::to_string(len) + " bytes in all)";
}

const char* api_param(mph_agent_ctx* ctx, const char* name) {
    if (!ctx || !name) return nullptr;
    auto it = ctx->params.find(name);
    return it == ctx->params.end() ? nullptr : it->second.c_str();
}

mph_status api_emit(mph_agent_ctx* ctx, const mph_message* msg) {
    if (!ctx || !ctx->pipeline || !msg) return MPH_ERR_INVALID;
    return ctx->pipeline->emit(*ctx, msg);
}

mph_status api_send(mph_agent_ctx* ctx, const char* topic, size_t topic_len, const mph_message* msg) {
    if (!ctx || !ctx->pipeline || !msg || !topic || topic_len == 0) return MPH_ERR_INVALID;
    return ctx->pipeline->send(*ctx, std::string(topic, topic_len), msg);
}

mph_status api_forward(mph_agent_ctx* ctx) {
    if (!ctx || !ctx->pipeline) return MPH_ERR_INVALID;
    return ctx->pipeline->forward(*ctx);
}

int32_t api_partition(mph_agent_ctx* ctx) { return ctx ? ctx->partition : -1; }

const char* api_agent_name(mph_agent_ctx* ctx) { return ctx ? ctx->agent_name.c_str() : ""; }

// --- tables (since 1.1) ------------------------------------------------------------------------------------

TableBinding* binding(mph_table* table) { return reinterpret_cast<TableBinding*>(table); }

mph_table* api_table(mph_agent_ctx* ctx, const char* name) {
    if (!ctx || !name) return nullptr;
    for (auto& b : ctx->tables)
        if (b.name == name) return reinterpret_cast<mph_table*>(&b);
    return nullptr;
}

// Checks a table call's common arguments; on failure the status to return.
mph_status check(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len) {
    if (!ctx || !table || (!key && key_len > 0)) return MPH_ERR_INVALID;
    if (!binding(table)->shard) return MPH_ERR_STATE;  // a timer instance has no partition
    return MPH_OK;
}

std::string_view as_view(const void* p, size_t n) { return {static_cast<const char*>(p), p ? n : 0}; }

// A global table holds every partition here. A key is read from the instance's own partition first, then from
// whichever partition holds it; it is written only by the owner of the partition that holds it (a new key is
// created on the instance's partition: the partition of the event being processed, Faust's rule).
TableShard* holder_elsewhere(const TableBinding& b, std::string_view key) {
    if (!b.store->spec().global || b.shard->contains(key)) return nullptr;
    for (TableShard* s : b.store->shards())
        if (s != b.shard && s->contains(key)) return s;
    return nullptr;
}

// Refuses a write to a global table's key that another partition holds. MPH_OK when the write may go ahead.
mph_status check_writable(mph_agent_ctx* ctx, const TableBinding& b, std::string_view key) {
    TableShard* holder = holder_elsewhere(b, key);
    if (!holder) return MPH_OK;
    ctx->error = "global table " + b.name + ": the key is held by partition " + std::to_string(holder->partition()) +
                 "; an instance on partition " + std::to_string(b.shard->partition()) +
                 " may read it but not write it (route its events by this key, e.g. with group_by)";
    return MPH_ERR_STATE;
}

// --- windowed tables (since 1.3) ----------------------------------------------------------------------------

const WindowSpec* window_of(const TableBinding& b) {
    const auto& w = b.store->spec().window;
    return w ? &*w : nullptr;
}

// The time `source` means for the calling instance: the event being processed, or (no event: a batch, a
// timer) the partition's stream time, or the wall clock.
int64_t time_for(mph_agent_ctx* ctx, const TableBinding& b, int32_t source) {
    const WindowSpec& spec = *window_of(b);
    if (source == MPH_WINDOW_NOW || (source == MPH_WINDOW_RELATIVE && spec.relative_to == TimeSource::now))
        return wall_ms();
    if (const rd_kafka_message_t* msg = ctx->message) {
        WindowSpec event_spec = spec;
        if (event_spec.relative_to == TimeSource::now) event_spec.relative_to = TimeSource::stream;
        rd_kafka_timestamp_type_t type;
        const int64_t ts = rd_kafka_message_timestamp(msg, &type);
        return event_time(event_spec, type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
                          {static_cast<const char*>(msg->payload), msg->payload ? msg->len : 0});
    }
    const int64_t stream = WindowedShard(*b.shard, spec).stream_time();
    return stream >= 0 ? stream : wall_ms();
}

// Hands `v` (or the table's default) to the plugin as the callback's view.
mph_status give(mph_agent_ctx* ctx, const TableBinding& b, std::optional<std::string> v, const void** value,
                size_t* value_len) {
    if (!v) v = b.store->spec().default_value;
    if (!v) return MPH_ERR_NOT_FOUND;
    ctx->views.push_back(std::move(*v));
    *value = ctx->views.back().data();
    *value_len = ctx->views.back().size();
    return MPH_OK;
}

bool is_session(const TableBinding& b) { return window_of(b) && window_of(b)->kind == WindowKind::session; }

// Calls write(stored key, session value) for every window of the current event that is still open, while none
// can close: the windows containing its time, or the session it joins (the key's sessions within the gap merged
// into one, int64 values summed when `sum_int64`; the merged value is passed, and stored already). False, and
// the event counted late, when there is none.
bool write_windows(mph_agent_ctx* ctx, const TableBinding& b, std::string_view key, bool sum_int64,
                   const std::function<void(const std::string&, const std::optional<std::string>&)>& write) {
    WindowedShard windows(*b.shard, *window_of(b));
    const int64_t t = time_for(ctx, b, MPH_WINDOW_RELATIVE);
    bool written;
    if (is_session(b))
        written = windows
                      .join_session(key, t, sum_int64,
                                    [&](const WindowedShard::Session& s) { write(window_key(s.window.start, key), s.value); })
                      .has_value();
    else
        written = windows.update(t, [&](const TimeWindow& w) { write(window_key(w.start, key), std::nullopt); });
    if (!written) b.store->late_events.fetch_add(1, std::memory_order_relaxed);
    return written;
}

mph_status api_window_get(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, int32_t source,
                          int64_t delta_ms, const void** value, size_t* value_len, mph_window* window) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    if (!value || !value_len || source < MPH_WINDOW_RELATIVE || source > MPH_WINDOW_NOW) return MPH_ERR_INVALID;
    TableBinding* b = binding(table);
    if (!window_of(*b)) {
        ctx->error = "table " + b->name + " is not windowed";
        return MPH_ERR_UNSUPPORTED;
    }
    const int64_t t = time_for(ctx, *b, source) - delta_ms;
    if (window_of(*b)->kind == WindowKind::session) {  // the key's session containing t
        auto session = WindowedShard(*b->shard, *window_of(*b)).session_at(as_view(key, key_len), t);
        if (session && window && MPH_HAS_MEMBER(mph_window, window, end_ms)) {
            window->start_ms = session->first.start;
            window->end_ms = session->first.end;
        }
        return give(ctx, *b, session ? std::optional(std::move(session->second)) : std::nullopt, value, value_len);
    }
    const TimeWindow w = window_at(*window_of(*b), t);
    if (window && MPH_HAS_MEMBER(mph_window, window, end_ms)) {
        window->start_ms = w.start;
        window->end_ms = w.end;
    }
    return give(ctx, *b, WindowedShard(*b->shard, *window_of(*b)).get(w, as_view(key, key_len)), value, value_len);
}

mph_status api_window_iterate(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                              mph_window_visit_fn visit, void* user) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    if (!visit) return MPH_ERR_INVALID;
    TableBinding* b = binding(table);
    if (!window_of(*b)) {
        ctx->error = "table " + b->name + " is not windowed";
        return MPH_ERR_UNSUPPORTED;
    }
    for (const auto& [w, value] : WindowedShard(*b->shard, *window_of(*b)).windows_of(as_view(key, key_len))) {
        const mph_window window{sizeof(mph_window), w.start, w.end};
        if (mph_status st = visit(user, &window, value.data(), value.size()); st != MPH_OK) return st;
    }
    return MPH_OK;
}

mph_status api_table_get(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, const void** value,
                         size_t* value_len) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    if (!value || !value_len) return MPH_ERR_INVALID;
    TableBinding* b = binding(table);
    if (window_of(*b)) return api_window_get(ctx, table, key, key_len, MPH_WINDOW_RELATIVE, 0, value, value_len, nullptr);
    std::optional<std::string> v = b->shard->get(as_view(key, key_len));
    if (!v && b->store->spec().global)
        if (TableShard* holder = holder_elsewhere(*b, as_view(key, key_len))) v = holder->get(as_view(key, key_len));
    if (!v) v = b->store->spec().default_value;
    if (!v) return MPH_ERR_NOT_FOUND;
    ctx->views.push_back(std::move(*v));
    *value = ctx->views.back().data();
    *value_len = ctx->views.back().size();
    return MPH_OK;
}

// A value checked by its table's codec; a plugin's codec runs named in the crash report, under the agent's call.
Status validate_value(const TableBinding& b, std::string_view value) {
    const PluginItemRef& codec = b.store->spec().value_codec;
    if (codec.empty()) return validate_with(b.store->codec(), value);
    PluginCallRecord record = current_plugin_call();
    record.plugin = codec.plugin.c_str();
    record.sha1 = nullptr;
    record.callback = "a table's value codec";
    PluginCall call(record);
    return validate_with(b.store->codec(), value);
}

mph_status api_table_put(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, const void* value,
                         size_t value_len) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    if (!value && value_len > 0) return MPH_ERR_INVALID;
    TableBinding* b = binding(table);
    if (auto st = validate_value(*b, as_view(value, value_len)); !st) {
        ctx->error = "table " + b->name + ": " + st.error();
        return MPH_ERR_INVALID;
    }
    // A windowed table stores the window's start (8 bytes) before the key.
    if (auto large = b->store->too_large(key_len + (window_of(*b) ? 8 : 0), value_len)) {
        ctx->error = *large;
        return MPH_ERR_INVALID;
    }
    if (window_of(*b)) {
        write_windows(ctx, *b, as_view(key, key_len), false,
                      [&](const std::string& stored, const auto&) { b->shard->put(stored, as_view(value, value_len)); });
        return MPH_OK;
    }
    if (mph_status st = check_writable(ctx, *b, as_view(key, key_len)); st != MPH_OK) return st;
    b->shard->put(as_view(key, key_len), as_view(value, value_len));
    return MPH_OK;
}

mph_status api_table_delete(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    if (const TableBinding* b = binding(table); window_of(*b)) {  // a session keeps its span, without a value
        write_windows(ctx, *b, as_view(key, key_len), false,
                      [&](const std::string& stored, const auto&) { b->shard->erase(stored); });
        return MPH_OK;
    }
    if (mph_status st = check_writable(ctx, *binding(table), as_view(key, key_len)); st != MPH_OK) return st;
    binding(table)->shard->erase(as_view(key, key_len));
    return MPH_OK;
}

mph_status api_table_add(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, int64_t delta,
                         int64_t* result) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    TableBinding* b = binding(table);
    if (b->store->spec().value != ValueCodec::int64) {
        ctx->error = "table " + b->name + " does not hold int64 values; add needs int64";
        return MPH_ERR_UNSUPPORTED;
    }
    if (window_of(*b)) {  // every window of the event (a session: merged, summed); the result is the latest's
        int64_t v = 0;
        write_windows(ctx, *b, as_view(key, key_len), true, [&](const std::string& stored, const auto&) {
            v = b->shard->add(stored, delta);
        });
        if (result) *result = v;
        return MPH_OK;
    }
    if (mph_status st = check_writable(ctx, *b, as_view(key, key_len)); st != MPH_OK) return st;
    int64_t v = b->shard->add(as_view(key, key_len), delta);
    if (result) *result = v;
    return MPH_OK;
}

mph_status api_table_iterate(mph_agent_ctx* ctx, mph_table* table, mph_table_visit_fn visit, void* user) {
    if (mph_status st = check(ctx, table, nullptr, 0); st != MPH_OK) return st;
    if (!visit) return MPH_ERR_INVALID;
    TableBinding* b = binding(table);
    if (const WindowSpec* w = window_of(*b)) {  // the keys of the window at the table's relative time
        auto entries = WindowedShard(*b->shard, *w).entries_at(window_at(*w, time_for(ctx, *b, MPH_WINDOW_RELATIVE)));
        for (const auto& [key, value] : entries)
            if (mph_status st = visit(user, key.data(), key.size(), value.data(), value.size()); st != MPH_OK) return st;
        return MPH_OK;
    }
    std::map<std::string, std::string> entries = b->shard->snapshot();
    if (b->store->spec().global)  // every partition; the instance's own wins a key held twice
        for (TableShard* s : b->store->shards())
            if (s != b->shard) entries.merge(s->snapshot());
    for (const auto& [key, value] : entries)
        if (mph_status st = visit(user, key.data(), key.size(), value.data(), value.size()); st != MPH_OK) return st;
    return MPH_OK;
}

// --- aggregation (since 1.2) ---------------------------------------------------------------------------------

mph_status api_table_merge(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, const void* input,
                           size_t input_len, const void** value, size_t* value_len) {
    if (mph_status st = check(ctx, table, key, key_len); st != MPH_OK) return st;
    if (!input && input_len > 0) return MPH_ERR_INVALID;
    TableBinding* b = binding(table);
    if (!b->store->aggregator()) {
        ctx->error = "table " + b->name + " has no aggregator: declare `aggregate: {plugin: P, name: NAME}` on it";
        return MPH_ERR_UNSUPPORTED;
    }
    PluginCallRecord in_aggregator = current_plugin_call();  // the agent's callback, now in the aggregator
    in_aggregator.plugin = b->store->spec().aggregate.plugin.c_str();
    in_aggregator.sha1 = nullptr;
    in_aggregator.callback = "a table's aggregator";
    PluginCall call(in_aggregator);
    Result<std::string> merged = std::string();
    if (window_of(*b)) {  // every window of the event (config refuses aggregators on session windows)
        const bool written = write_windows(ctx, *b, as_view(key, key_len), false, [&](const std::string& stored, const auto&) {
            if (merged) merged = b->shard->merge(stored, as_view(input, input_len));
        });
        if (!written) {
            if (value) *value = nullptr;
            if (value_len) *value_len = 0;
            return MPH_OK;
        }
    } else {
        if (mph_status st = check_writable(ctx, *b, as_view(key, key_len)); st != MPH_OK) return st;
        merged = b->shard->merge(as_view(key, key_len), as_view(input, input_len));
    }
    if (!merged) {
        ctx->error = "table " + b->name + ": " + merged.error();
        return MPH_ERR_INVALID;
    }
    if (value || value_len) {
        ctx->views.push_back(std::move(*merged));
        if (value) *value = ctx->views.back().data();
        if (value_len) *value_len = ctx->views.back().size();
    }
    return MPH_OK;
}

// --- agents talking to agents, manual acknowledgement (since 1.4) -----------------------------------------------

mph_status api_cast(mph_agent_ctx* ctx, const char* agent, const mph_message* msg) {
    if (!ctx || !ctx->pipeline || !msg || !agent || !*agent) return MPH_ERR_INVALID;
    return ctx->pipeline->cast(*ctx, agent, msg);
}

mph_status api_ask(mph_agent_ctx* ctx, const char* agent, const mph_message* msg, int64_t timeout_ms,
                   uint64_t* request_id) {
    if (!ctx || !ctx->pipeline || !msg || !agent || !*agent) return MPH_ERR_INVALID;
    return ctx->pipeline->ask(*ctx, agent, msg, timeout_ms, request_id);
}

mph_status api_reply(mph_agent_ctx* ctx, const void* value, size_t value_len) {
    if (!ctx || !ctx->pipeline || (!value && value_len > 0)) return MPH_ERR_INVALID;
    return ctx->pipeline->reply(*ctx, value, value_len);
}

mph_status api_ack(mph_agent_ctx* ctx, int64_t offset) {
    if (!ctx || !ctx->pipeline) return MPH_ERR_INVALID;
    return ctx->pipeline->ack(*ctx, offset);
}

const mph_host_api kHostApi = {
    sizeof(mph_host_api),
    MPH_ABI_VERSION_MAJOR,
    MPH_ABI_VERSION_MINOR,
    api_log,
    api_set_error,
    api_param,
    api_emit,
    api_send,
    api_forward,
    api_partition,
    api_agent_name,
    api_table,
    api_table_get,
    api_table_put,
    api_table_delete,
    api_table_add,
    api_table_iterate,
    api_table_merge,
    api_window_get,
    api_window_iterate,
    api_cast,
    api_ask,
    api_reply,
    api_ack,
};

}  // namespace

const mph_host_api* host_api() { return &kHostApi; }

}  // namespace mephisto
