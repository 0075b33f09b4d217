/* A plugin built twice (STAMP_VERSION 1 and 2) for the hot-reload tests. Its agent `stamp` emits each event's
 * value prefixed with "v<version>:", so the output says which build processed every event. */
#include <mephisto/mephisto.h>

#include <stdio.h>
#include <string.h>

#ifndef STAMP_VERSION
#error "build with -DSTAMP_VERSION=N"
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static const mph_host_api* api;

static mph_status stamp_create(mph_agent_ctx* ctx, void** instance) {
    static const char line[] = "stamp v" STR(STAMP_VERSION) " created";
    api->log(ctx, MPH_LOG_INFO, line, sizeof line - 1);
    *instance = NULL;
    return MPH_OK;
}

static mph_status stamp_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    char text[256];
    mph_message m;
    int n;
    (void)instance;
    if (!ev->value || ev->value_len > 200) return MPH_OK;
    n = snprintf(text, sizeof text, "v%d:%.*s", STAMP_VERSION, (int)ev->value_len, (const char*)ev->value);
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.key = ev->key;
    m.key_len = ev->key_len;
    m.value = text;
    m.value_len = (size_t)n;
    m.partition = MPH_PARTITION_ANY;
    return api->emit(ctx, &m) == MPH_OK ? MPH_OK : MPH_RETRY;
}

static const mph_agent_descriptor stamp_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "stamp",
    .description = "emits each value prefixed with the plugin's build version",
    .create = stamp_create,
    .on_event = stamp_on_event,
};
static const mph_agent_descriptor* const agents[] = {&stamp_agent};

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = "stamp",
    .version = STR(STAMP_VERSION) ".0.0",
    .agents = agents,
    .agent_count = 1,
};

MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t major, uint32_t minor, const mph_host_api* host,
                                                              char* errbuf, size_t errbuf_size) {
    (void)minor;
    if (major != MPH_ABI_VERSION_MAJOR) {
        snprintf(errbuf, errbuf_size, "built for ABI %d", MPH_ABI_VERSION_MAJOR);
        return NULL;
    }
    api = host;
    return &plugin;
}
