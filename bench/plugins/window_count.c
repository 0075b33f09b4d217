/* bench_windowed_count's plugin, plain C against mephisto.h only.
 *  - count: api->table_add(key, +1) on the agent's int64 table `counts` per event. With `window:` on the table
 *           (bench_windowed_count) that is the event's window; on_window_close takes every closed (key, window)
 *           and does nothing with it (the benchmark measures the host's windowing, not the plugin's work). With
 *           a plain table (bench_windowed_count --no-window) the same agent is a plain counter. */
#include <mephisto/mephisto.h>

#include <stddef.h>

static const mph_host_api* api;

static mph_status count_create(mph_agent_ctx* ctx, void** instance) {
    mph_table* counts = api->table(ctx, "counts");
    if (!counts) {
        static const char msg[] = "agent count needs the table `counts` (tables: [counts] in YAML)";
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    *instance = counts;
    return MPH_OK;
}

static mph_status count_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    return api->table_add(ctx, (mph_table*)instance, ev->key, ev->key ? ev->key_len : 0, 1, NULL) == MPH_OK ? MPH_OK
                                                                                                       : MPH_RETRY;
}

static mph_status count_on_window_close(void* instance, mph_agent_ctx* ctx, const char* table, const void* key,
                                        size_t key_len, const mph_window* window, const void* value,
                                        size_t value_len) {
    (void)instance;
    (void)ctx;
    (void)table;
    (void)key;
    (void)key_len;
    (void)window;
    (void)value;
    (void)value_len;
    return MPH_OK;
}

static const mph_agent_descriptor count_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "count",
    .description = "adds 1 to the event key's value in the (windowed) int64 table `counts`",
    .create = count_create,
    .on_event = count_on_event,
    .on_window_close = count_on_window_close,
};

static const mph_agent_descriptor* const agents[] = {&count_agent};

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = "window_count",
    .version = "1.0.0",
    .description = "a windowed counter for Mephisto's benchmarks",
    .agents = agents,
    .agent_count = sizeof agents / sizeof agents[0],
};

MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t major, uint32_t minor, const mph_host_api* host,
                                                              char* errbuf, size_t errbuf_size) {
    (void)minor;
    (void)errbuf;
    (void)errbuf_size;
    if (major != MPH_ABI_VERSION_MAJOR) return NULL;
    api = host;
    return &plugin;
}
