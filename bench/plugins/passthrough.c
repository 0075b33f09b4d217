/* The benchmark's plugin, plain C against mephisto.h only.
 *  - pass:      forwards every event unchanged to the agent's sinks (the pass-through pipeline's agent);
 *  - noop:      returns MPH_OK and does nothing (bench_abi_call: the cost of the host -> plugin call);
 *  - call_host: calls api->partition(ctx) once per event (bench_abi_call: a plugin -> host call on top). */
#include <mephisto/mephisto.h>

#include <stddef.h>

/* bench_swap builds this file twice with different versions, so that the two images differ. */
#ifndef PASSTHROUGH_VERSION
#define PASSTHROUGH_VERSION "1.0.0"
#endif

static const mph_host_api* api;

static mph_status pass_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    (void)instance;
    (void)ev;
    return api->forward(ctx) == MPH_OK ? MPH_OK : MPH_RETRY;
}

static mph_status noop_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    (void)instance;
    (void)ctx;
    (void)ev;
    return MPH_OK;
}

static mph_status call_host_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    (void)instance;
    return api->partition(ctx) == ev->partition ? MPH_OK : MPH_RETRY;
}

static const mph_agent_descriptor pass_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "pass",
    .description = "forwards every event unchanged to the sinks",
    .on_event = pass_on_event,
};

static const mph_agent_descriptor noop_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "noop",
    .description = "does nothing (measures the call itself)",
    .on_event = noop_on_event,
};

static const mph_agent_descriptor call_host_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "call_host",
    .description = "calls api->partition once per event (measures a call back into the host)",
    .on_event = call_host_on_event,
};

static const mph_agent_descriptor* const agents[] = {&pass_agent, &noop_agent, &call_host_agent};

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = "passthrough",
    .version = PASSTHROUGH_VERSION,
    .description = "agents for Mephisto's benchmarks",
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
