/*
 * Compiled with -std=c11 -Wall -Wextra -pedantic -Werror -fsyntax-only (ctest abi.header_is_c11).
 *
 * Uses every type, macro and function-pointer signature of mephisto.h, so that the header stays strict C11,
 * and pins what the ABI promises never to change: the status numbers, and on LP64 the layout of every struct
 * (members may only be appended). A failing assertion here means a released ABI was broken.
 */
#include <mephisto/mephisto.h>

/* --- stable numbers (mephisto.h: "Stable numbers: they never change meaning") ----------------------------- */
_Static_assert(MPH_ABI_VERSION_MAJOR == 1, "a major bump needs a deliberate decision");
_Static_assert(MPH_OK == 0 && MPH_RETRY == 1 && MPH_FATAL == 2, "verdicts are stable");
_Static_assert(MPH_ERR_INVALID == -1 && MPH_ERR_NOT_FOUND == -2 && MPH_ERR_STATE == -3 && MPH_ERR_FULL == -4 &&
                   MPH_ERR_UNSUPPORTED == -5 && MPH_ERR_TIMEOUT == -6,
               "local error codes are stable");
_Static_assert(MPH_WINDOW_RELATIVE == 0 && MPH_WINDOW_CURRENT == 1 && MPH_WINDOW_NOW == 2,
               "window_get's time references are stable");
_Static_assert(MPH_LOG_TRACE == 0 && MPH_LOG_DEBUG == 1 && MPH_LOG_INFO == 2 && MPH_LOG_WARN == 3 && MPH_LOG_ERROR == 4,
               "log levels are stable");
_Static_assert(MPH_PARTITION_ANY == -1, "MPH_PARTITION_ANY is stable");
_Static_assert(sizeof(mph_status) == 4, "mph_status is 32 bits");

/* --- the released layouts on LP64 (x86_64, aarch64): appended members leave these offsets alone ---------- */
#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(offsetof(mph_header, value_len) == 24 && sizeof(mph_header) == 32, "mph_header layout");
_Static_assert(offsetof(mph_event, topic) == 8 && offsetof(mph_event, partition) == 16 &&
                   offsetof(mph_event, offset) == 24 && offsetof(mph_event, timestamp_ms) == 32 &&
                   offsetof(mph_event, key) == 40 && offsetof(mph_event, value) == 56 &&
                   offsetof(mph_event, headers) == 72 && offsetof(mph_event, header_count) == 80,
               "mph_event layout");
_Static_assert(offsetof(mph_message, key) == 8 && offsetof(mph_message, value) == 24 &&
                   offsetof(mph_message, headers) == 40 && offsetof(mph_message, partition) == 56 &&
                   offsetof(mph_message, timestamp_ms) == 64,
               "mph_message layout");
_Static_assert(offsetof(mph_host_api, abi_major) == 8 && offsetof(mph_host_api, log) == 16 &&
                   offsetof(mph_host_api, set_error) == 24 && offsetof(mph_host_api, param) == 32 &&
                   offsetof(mph_host_api, emit) == 40 && offsetof(mph_host_api, send) == 48 &&
                   offsetof(mph_host_api, forward) == 56 && offsetof(mph_host_api, partition) == 64 &&
                   offsetof(mph_host_api, agent_name) == 72,
               "mph_host_api 1.0 layout");
_Static_assert(offsetof(mph_host_api, table) == 80 && offsetof(mph_host_api, table_get) == 88 &&
                   offsetof(mph_host_api, table_put) == 96 && offsetof(mph_host_api, table_delete) == 104 &&
                   offsetof(mph_host_api, table_add) == 112 && offsetof(mph_host_api, table_iterate) == 120,
               "mph_host_api 1.1 layout (tables)");
_Static_assert(offsetof(mph_param_spec, name) == 8 && offsetof(mph_param_spec, default_value) == 24 &&
                   offsetof(mph_param_spec, required) == 32,
               "mph_param_spec layout");
_Static_assert(offsetof(mph_agent_descriptor, name) == 8 && offsetof(mph_agent_descriptor, params) == 24 &&
                   offsetof(mph_agent_descriptor, create) == 40 && offsetof(mph_agent_descriptor, destroy) == 48 &&
                   offsetof(mph_agent_descriptor, on_event) == 56 && offsetof(mph_agent_descriptor, on_batch) == 64 &&
                   offsetof(mph_agent_descriptor, on_timer) == 72 &&
                   offsetof(mph_agent_descriptor, on_assigned) == 80 &&
                   offsetof(mph_agent_descriptor, on_revoked) == 88,
               "mph_agent_descriptor 1.0 layout");
_Static_assert(offsetof(mph_plugin_descriptor, abi_major) == 8 && offsetof(mph_plugin_descriptor, name) == 16 &&
                   offsetof(mph_plugin_descriptor, agents) == 40 && offsetof(mph_plugin_descriptor, init) == 56 &&
                   offsetof(mph_plugin_descriptor, fini) == 64,
               "mph_plugin_descriptor 1.0 layout");
/* 1.2 appended members: the 1.0 and 1.1 offsets above did not move. */
_Static_assert(offsetof(mph_host_api, table_merge) == 128, "mph_host_api 1.2 layout (aggregation)");
_Static_assert(offsetof(mph_plugin_descriptor, codecs) == 72 && offsetof(mph_plugin_descriptor, codec_count) == 80 &&
                   offsetof(mph_plugin_descriptor, aggregators) == 88 &&
                   offsetof(mph_plugin_descriptor, aggregator_count) == 96 &&
                   offsetof(mph_plugin_descriptor, key_functions) == 104 &&
                   offsetof(mph_plugin_descriptor, key_function_count) == 112,
               "mph_plugin_descriptor 1.2 layout");
_Static_assert(offsetof(mph_codec_descriptor, validate) == 24 && offsetof(mph_codec_descriptor, to_json) == 32,
               "mph_codec_descriptor layout");
_Static_assert(offsetof(mph_aggregator_descriptor, merge) == 24, "mph_aggregator_descriptor layout");
_Static_assert(offsetof(mph_key_fn_descriptor, key) == 24, "mph_key_fn_descriptor layout");
/* 1.3 appended members (windowed tables). */
_Static_assert(offsetof(mph_host_api, window_get) == 136 && offsetof(mph_host_api, window_iterate) == 144,
               "mph_host_api 1.3 layout (windows)");
_Static_assert(offsetof(mph_agent_descriptor, on_window_close) == 96, "mph_agent_descriptor 1.3 layout");
_Static_assert(offsetof(mph_plugin_descriptor, predicates) == 120 && offsetof(mph_plugin_descriptor, predicate_count) == 128,
               "mph_plugin_descriptor 1.3 layout");
_Static_assert(offsetof(mph_predicate_descriptor, keep) == 24, "mph_predicate_descriptor layout");
/* 1.4 appended members (cast, ask, reply, manual ack). */
_Static_assert(offsetof(mph_host_api, cast) == 152 && offsetof(mph_host_api, ask) == 160 &&
                   offsetof(mph_host_api, reply) == 168 && offsetof(mph_host_api, ack) == 176,
               "mph_host_api 1.4 layout (agents talking to agents, manual ack)");
_Static_assert(offsetof(mph_agent_descriptor, on_reply) == 104, "mph_agent_descriptor 1.4 layout");
_Static_assert(offsetof(mph_window, start_ms) == 8 && offsetof(mph_window, end_ms) == 16 && sizeof(mph_window) == 24,
               "mph_window layout");
#endif

/* --- every callback signature: a changed signature fails to compile here ---------------------------------- */
static mph_status create(mph_agent_ctx* ctx, void** instance) {
    (void)ctx;
    *instance = NULL;
    return MPH_OK;
}
static void destroy(void* instance) { (void)instance; }
static mph_status on_event(void* instance, mph_agent_ctx* ctx, const mph_event* event) {
    (void)instance;
    (void)ctx;
    return event->value == NULL ? MPH_OK : MPH_RETRY;
}
static mph_status on_batch(void* instance, mph_agent_ctx* ctx, const mph_event* const* events, size_t count) {
    (void)instance;
    (void)ctx;
    return count > 0 && events[0] != NULL ? MPH_OK : MPH_FATAL;
}
static mph_status on_timer(void* instance, mph_agent_ctx* ctx, const char* timer, int64_t now_ms) {
    (void)instance;
    (void)ctx;
    return timer != NULL && now_ms > 0 ? MPH_OK : MPH_FATAL;
}
static mph_status on_partition(void* instance, mph_agent_ctx* ctx, int32_t partition) {
    (void)instance;
    (void)ctx;
    return partition >= 0 ? MPH_OK : MPH_FATAL;
}
static mph_status init(char* errbuf, size_t errbuf_size) {
    (void)errbuf;
    (void)errbuf_size;
    return MPH_OK;
}
static void fini(void) {}

static mph_status on_window_close(void* instance, mph_agent_ctx* ctx, const char* table, const void* key,
                                  size_t key_len, const mph_window* window, const void* value, size_t value_len) {
    (void)instance;
    (void)ctx;
    (void)table;
    (void)key;
    (void)key_len;
    (void)value;
    (void)value_len;
    return window->end_ms > window->start_ms ? MPH_OK : MPH_ERR_INVALID;
}

static mph_status on_reply(void* instance, mph_agent_ctx* ctx, uint64_t request_id, mph_status status,
                           const mph_event* reply) {
    (void)instance;
    (void)ctx;
    (void)request_id;
    return status == MPH_ERR_TIMEOUT || reply != NULL ? MPH_OK : MPH_FATAL;
}

static const mph_param_spec param = {sizeof(mph_param_spec), "name", "description", "default", false};
static const mph_param_spec* const params[] = {&param};
static const mph_agent_descriptor agent = {sizeof(mph_agent_descriptor),
                                           "agent",
                                           "description",
                                           params,
                                           1,
                                           create,
                                           destroy,
                                           on_event,
                                           on_batch,
                                           on_timer,
                                           on_partition,
                                           on_partition,
                                           on_window_close,
                                           on_reply};
static const mph_agent_descriptor* const agents[] = {&agent};

/* A codec and an aggregator have the 1.2 types. */
static mph_status validate(const void* value, size_t value_len, char* errbuf, size_t errbuf_size) {
    (void)value;
    (void)errbuf;
    (void)errbuf_size;
    return value_len > 0 ? MPH_OK : MPH_ERR_INVALID;
}
static mph_status to_json(const void* value, size_t value_len, mph_write_fn write, void* sink) {
    write(sink, value, value_len);
    return MPH_OK;
}
static mph_status merge(const void* current, size_t current_len, const void* input, size_t input_len,
                        mph_write_fn write, void* sink, char* errbuf, size_t errbuf_size) {
    (void)errbuf;
    (void)errbuf_size;
    write(sink, current_len > input_len ? current : input, current_len > input_len ? current_len : input_len);
    return MPH_OK;
}
static const mph_codec_descriptor codec = {sizeof(mph_codec_descriptor), "codec", NULL, validate, to_json};
static const mph_codec_descriptor* const codecs[] = {&codec};
static const mph_aggregator_descriptor aggregator = {sizeof(mph_aggregator_descriptor), "longest", NULL, merge};
static const mph_aggregator_descriptor* const aggregators[] = {&aggregator};
static mph_status key_of(const mph_event* event, mph_write_fn write, void* sink, char* errbuf, size_t errbuf_size) {
    (void)errbuf;
    (void)errbuf_size;
    write(sink, event->value, event->value_len);
    return MPH_OK;
}
static const mph_key_fn_descriptor key_fn = {sizeof(mph_key_fn_descriptor), "by_value", NULL, key_of};
static const mph_key_fn_descriptor* const key_functions[] = {&key_fn};
/* A predicate has the 1.3 type. */
static int32_t keep(const mph_event* event, char* errbuf, size_t errbuf_size) {
    (void)errbuf;
    (void)errbuf_size;
    return event->value_len > 0;
}
static const mph_predicate_descriptor predicate = {sizeof(mph_predicate_descriptor), "non_empty", NULL, keep};
static const mph_predicate_descriptor* const predicates[] = {&predicate};

static const mph_plugin_descriptor plugin = {sizeof(mph_plugin_descriptor),
                                             MPH_ABI_VERSION_MAJOR,
                                             MPH_ABI_VERSION_MINOR,
                                             "plugin",
                                             "1.0.0",
                                             "description",
                                             agents,
                                             1,
                                             init,
                                             fini,
                                             codecs,
                                             1,
                                             aggregators,
                                             1,
                                             key_functions,
                                             1,
                                             predicates,
                                             1};

/* The table visitor has the mph_table_visit_fn type (since 1.1). */
static mph_status visit(void* user, const void* key, size_t key_len, const void* value, size_t value_len) {
    (void)key;
    (void)value;
    *(size_t*)user += key_len + value_len;
    return MPH_OK;
}

/* The table functions (since 1.1), called with their exact types, behind their MPH_HAS_MEMBER check. */
static mph_status use_tables(const mph_host_api* api, mph_agent_ctx* ctx) {
    const mph_table_visit_fn visitor = visit;
    mph_table* table;
    const void* value = NULL;
    size_t value_len = 0;
    size_t visited = 0;
    int64_t count = 0;
    mph_status status;
    if (!MPH_HAS_MEMBER(mph_host_api, api, table_iterate)) return MPH_ERR_UNSUPPORTED;
    table = api->table(ctx, "counts");
    if (table == NULL) return MPH_ERR_NOT_FOUND;
    status = api->table_get(ctx, table, "key", 3, &value, &value_len);
    if (status == MPH_OK) status = api->table_put(ctx, table, "key", 3, "\0\0\0\0\0\0\0\1", 8);
    if (status == MPH_OK) status = api->table_add(ctx, table, "key", 3, 1, &count);
    if (status == MPH_OK) status = api->table_delete(ctx, table, "key", 3);
    if (status == MPH_OK) status = api->table_iterate(ctx, table, visitor, &visited);
    return status;
}

/* Every host function, called with its exact types. */
static mph_status use_host(const mph_host_api* api, mph_agent_ctx* ctx) {
    const mph_header header = {"name", 4, "value", 5};
    const mph_message message = {sizeof(mph_message), "key", 3, "value", 5, &header, 1, MPH_PARTITION_ANY, 0};
    if (!MPH_HAS_MEMBER(mph_host_api, api, agent_name)) return MPH_ERR_UNSUPPORTED;
    api->log(ctx, MPH_LOG_INFO, "message", 7);
    api->set_error(ctx, "error", 5);
    const char* value = api->param(ctx, "name");
    const int32_t partition = api->partition(ctx);
    const char* agent_name = api->agent_name(ctx);
    mph_status status = api->emit(ctx, &message);
    if (status == MPH_OK) status = api->send(ctx, "topic", 5, &message);
    if (status == MPH_OK) status = api->forward(ctx);
    if (status == MPH_OK) status = use_tables(api, ctx);
    if (status == MPH_OK && MPH_HAS_MEMBER(mph_host_api, api, ack)) {
        uint64_t request_id = 0;
        status = api->cast(ctx, "agent", &message);
        if (status == MPH_OK) status = api->ask(ctx, "agent", &message, 1000, &request_id);
        if (status == MPH_OK) status = api->reply(ctx, "value", 5);
        if (status == MPH_OK) status = api->ack(ctx, (int64_t)request_id);
    }
    return value != NULL && agent_name != NULL && partition >= MPH_PARTITION_ANY ? status : MPH_ERR_NOT_FOUND;
}

MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor,
                                                              const mph_host_api* api, char* errbuf,
                                                              size_t errbuf_size);
MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor,
                                                              const mph_host_api* api, char* errbuf,
                                                              size_t errbuf_size) {
    const mph_entry_fn self = mephisto_plugin_entry; /* the exported function has the mph_entry_fn type */
    const mph_event event = {sizeof(mph_event), "topic", 0, 0, -1, NULL, 0, NULL, 0, NULL, 0};
    (void)self;
    (void)errbuf;
    (void)errbuf_size;
    (void)event;
    (void)host_abi_minor;
    if (host_abi_major != MPH_ABI_VERSION_MAJOR) return NULL;
    return use_host(api, NULL) == MPH_OK ? &plugin : NULL;
}
