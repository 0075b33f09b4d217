/* A plugin that misbehaves on request, for the hardening tests (issue 11). Built three ways:
 *  - crasher.so: agent `crash` forwards every event to its sinks, except values naming a misdeed:
 *      "segv" (a null write), "abort", "exit" (exit(0)), "quick_exit", "stack" (unbounded recursion),
 *      "fpe" (integer division by zero), "ill" (an illegal instruction), "bus" (a page past a file's end),
 *      "hang" (never returns; sleeps, so the machine is not burdened), "hog" (allocates and touches memory
 *      without bound: 16 MiB at a time, up to 4 GiB, then hangs, so a limit that does not hold fails the test
 *      without taking the machine). Its timer agent `nap` never returns
 *      from on_timer.
 *  - exit_on_load.so (HOSTILE_EXIT_ON_LOAD): the same agent, but a constructor calls exit(0) as the
 *    image is loaded.
 *  - slow_init.so (HOSTILE_SLOW_INIT): init sleeps for 30 s before it succeeds.
 * Each has the plugin name of its file, so a pipeline names it as `plugin: crasher` and so on. */
#define _GNU_SOURCE
#include <mephisto/mephisto.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(HOSTILE_EXIT_ON_LOAD)
#define PLUGIN_NAME "exit_on_load"
#elif defined(HOSTILE_SLOW_INIT)
#define PLUGIN_NAME "slow_init"
#else
#define PLUGIN_NAME "crasher"
#endif

static const mph_host_api* api;

static int is(const mph_event* ev, const char* word) {
    size_t n = strlen(word);
    return ev->value && ev->value_len == n && memcmp(ev->value, word, n) == 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Each frame keeps a buffer and does work after the call, so the compiler can neither drop nor loop it. The
 * recursion is unbounded on purpose: the stack overflows. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
__attribute__((noinline)) static int recurse(volatile int depth) {
    volatile char frame[512];
    frame[depth % 512] = (char)depth;
    return recurse(depth + 1) + frame[(depth + 1) % 512];
}
#pragma GCC diagnostic pop

static void bus_error(void) {
    char path[] = "/tmp/mephisto-bus-XXXXXX";
    int fd = mkstemp(path);
    volatile char* page;
    if (fd < 0) abort();
    unlink(path);
    if (ftruncate(fd, 4096) != 0) abort();
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED) abort();
    if (ftruncate(fd, 0) != 0) abort();  /* the mapped page is now past the end of the file */
    page[0] = 1;
}

static char* volatile hogged[256];

static mph_status crash_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    (void)instance;
    if (is(ev, "segv")) *(volatile int*)NULL = 1;
    if (is(ev, "abort")) abort();
    if (is(ev, "exit")) exit(0);
    if (is(ev, "quick_exit")) quick_exit(0);
    if (is(ev, "stack")) return recurse(0) ? MPH_OK : MPH_FATAL;
    if (is(ev, "fpe")) {
        volatile int zero = 0;
        volatile int one = 1;
        return one / zero ? MPH_OK : MPH_FATAL;
    }
    if (is(ev, "ill")) __builtin_trap();
    if (is(ev, "bus")) bus_error();
    if (is(ev, "hang"))
        for (;;) sleep_ms(1000);
    if (is(ev, "hog")) {
        const size_t chunk = (size_t)16 << 20;
        for (int i = 0; i < 256; ++i) {
            char* block = malloc(chunk);
            if (!block) abort();
            memset(block, i + 1, chunk);  /* touched: resident, charged to the worker */
            hogged[i] = block;            /* kept, so the compiler cannot drop the allocation */
        }
        for (;;) sleep_ms(1000);
    }
    return api->forward(ctx) == MPH_OK ? MPH_OK : MPH_RETRY;
}

static const mph_agent_descriptor crash_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "crash",
    .description = "forwards events, and misbehaves on the values that name a misdeed",
    .on_event = crash_on_event,
};
static mph_status nap_on_timer(void* instance, mph_agent_ctx* ctx, const char* timer, int64_t now_ms) {
    (void)instance;
    (void)ctx;
    (void)timer;
    (void)now_ms;
    for (;;) sleep_ms(1000);
    return MPH_OK;
}

static const mph_agent_descriptor nap_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "nap",
    .description = "a timer that never returns",
    .on_timer = nap_on_timer,
};
static const mph_agent_descriptor* const agents[] = {&crash_agent, &nap_agent};

#if defined(HOSTILE_EXIT_ON_LOAD)
__attribute__((constructor)) static void leave(void) { exit(0); }
#endif

#if defined(HOSTILE_SLOW_INIT)
static mph_status slow_init(char* errbuf, size_t errbuf_size) {
    (void)errbuf;
    (void)errbuf_size;
    sleep_ms(30000);
    return MPH_OK;
}
#endif

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = PLUGIN_NAME,
    .version = "1.0.0",
    .description = "misbehaves on request, for the hardening tests",
    .agents = agents,
    .agent_count = 2,
#if defined(HOSTILE_SLOW_INIT)
    .init = slow_init,
#endif
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
