/* Agents for the integration and reliability tests, written in plain C against mephisto.h only.
 * Their behaviour is steered by the data, so a test states in its input which events misbehave:
 *  - forward: forwards every event to the sinks; param delay_ms sleeps before each event (a slow agent);
 *             param fail_on: a value containing this text makes the instance fail (MPH_FATAL);
 *             param retry_on: a value containing this text gets MPH_RETRY;
 *             param drop_on: a value containing this text is finished without output (a filter).
 *  - tick:    a timer agent that sends "tick <n>" to the topic named by param topic.
 *  - count:   counts each event's value in the int64 table `counts` (Faust's word count); a value
 *             "delete:<word>" deletes <word> instead.
 *  - registry: sets and gets keys of the table `entries` on command (see below).
 *  - fold:    puts or merges each event into a table (codecs and aggregators, ABI 1.2).
 *  - window_count: counts events per key in the windowed table `windows`; emits each closed window (1.3).
 *  - adder:   reads "A B", answers "A B=SUM" when asked (1.4); cast to, it emits that to its sinks instead;
 *             param silent=true never answers (asks of it time out).
 *  - asker:   asks agent `target` (param, default adder) about every event, timeout param timeout_ms; emits
 *             each reply's value, or "timeout:<request>"; param mode=cast casts instead of asking.
 *  - acker:   for `ack: manual`: forwards every event and acknowledges them `every` (param, default 10) at a
 *             time, the last in its own callback; on_revoked acknowledges the rest; param fail_on: a value
 *             containing this text makes the instance fail (MPH_FATAL) before it forwards anything.
 * one group_by key function, by_value, and one filter predicate, no_spam. */
#define _POSIX_C_SOURCE 200809L
#include <mephisto/mephisto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const mph_host_api* api;

typedef struct forward_state {
    long delay_ms;
    const char* fail_on;
    const char* retry_on;
    const char* drop_on;
} forward_state;

static int contains(const mph_event* ev, const char* needle) {
    size_t n;
    if (!needle || !*needle || !ev->value) return 0;
    n = strlen(needle);
    if (n > ev->value_len) return 0;
    for (size_t i = 0; i + n <= ev->value_len; ++i)
        if (memcmp((const char*)ev->value + i, needle, n) == 0) return 1;
    return 0;
}

static mph_status forward_create(mph_agent_ctx* ctx, void** instance) {
    forward_state* s = calloc(1, sizeof *s);
    const char* delay = api->param(ctx, "delay_ms");
    if (!s) return MPH_FATAL;
    s->delay_ms = delay ? atol(delay) : 0;
    s->fail_on = api->param(ctx, "fail_on");
    s->retry_on = api->param(ctx, "retry_on");
    s->drop_on = api->param(ctx, "drop_on");
    {
        /* Tests count these lines to tell which instances a supervisor re-created. */
        char line[64];
        int n = snprintf(line, sizeof line, "instance created on partition %d", (int)api->partition(ctx));
        api->log(ctx, MPH_LOG_INFO, line, (size_t)n);
    }
    *instance = s;
    return MPH_OK;
}

static void forward_destroy(void* instance) { free(instance); }

static mph_status forward_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    forward_state* s = instance;
    if (s->delay_ms > 0) {
        struct timespec ts = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (contains(ev, s->fail_on)) {
        static const char msg[] = "poisoned event";
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    if (contains(ev, s->retry_on)) {
        static const char msg[] = "not yet";
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_RETRY;
    }
    if (contains(ev, s->drop_on)) return MPH_OK;
    return api->forward(ctx) == MPH_OK ? MPH_OK : MPH_RETRY;
}

typedef struct tick_state {
    long count;
} tick_state;

static mph_status tick_create(mph_agent_ctx* ctx, void** instance) {
    (void)ctx;
    *instance = calloc(1, sizeof(tick_state));
    return *instance ? MPH_OK : MPH_FATAL;
}

static mph_status tick_on_timer(void* instance, mph_agent_ctx* ctx, const char* timer, int64_t now_ms) {
    tick_state* s = instance;
    char text[64];
    const char* topic = api->param(ctx, "topic");
    mph_message m;
    (void)timer;
    (void)now_ms;
    if (!topic) return MPH_FATAL;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.partition = MPH_PARTITION_ANY;
    m.value = text;
    m.value_len = (size_t)snprintf(text, sizeof text, "tick %ld", ++s->count);
    return api->send(ctx, topic, strlen(topic), &m);
}

typedef struct count_state {
    mph_table* counts;
} count_state;

static mph_status count_create(mph_agent_ctx* ctx, void** instance) {
    count_state* s = calloc(1, sizeof *s);
    static const char msg[] = "the agent must declare the table `counts`";
    if (!s) return MPH_FATAL;
    if (!MPH_HAS_MEMBER(mph_host_api, api, table_iterate) || !(s->counts = api->table(ctx, "counts"))) {
        free(s);
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    *instance = s;
    return MPH_OK;
}

static mph_status count_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    count_state* s = instance;
    static const char del[] = "delete:";
    if (!ev->value) return MPH_OK;
    if (ev->value_len > sizeof del - 1 && memcmp(ev->value, del, sizeof del - 1) == 0)
        return api->table_delete(ctx, s->counts, (const char*)ev->value + sizeof del - 1, ev->value_len - (sizeof del - 1));
    return api->table_add(ctx, s->counts, ev->value, ev->value_len, 1, NULL);
}

static const mph_param_spec p_delay = {sizeof(mph_param_spec), "delay_ms", "sleep before each event", "0", false};
static const mph_param_spec p_fail = {sizeof(mph_param_spec), "fail_on", "fail on values containing this", NULL, false};
static const mph_param_spec p_retry = {sizeof(mph_param_spec), "retry_on", "retry values containing this", NULL, false};
static const mph_param_spec p_drop = {sizeof(mph_param_spec), "drop_on", "drop values containing this", NULL, false};
static const mph_param_spec* const forward_params[] = {&p_delay, &p_fail, &p_retry, &p_drop};

static const mph_param_spec p_topic = {sizeof(mph_param_spec), "topic", "where ticks go", NULL, true};
static const mph_param_spec* const tick_params[] = {&p_topic};

static const mph_agent_descriptor forward_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "forward",
    .description = "forwards events; misbehaves on request",
    .params = forward_params,
    .param_count = 4,
    .create = forward_create,
    .destroy = forward_destroy,
    .on_event = forward_on_event,
};

/* batch_forward: on_batch re-sends every event of the batch (key and value) to the sinks, with the header
 * `via: on_batch`; retries the batch when one of its values contains retry_on. It exports on_event too, which
 * sends the event with `via: on_event`: which of the two the host called shows in the output. */
static mph_status resend(mph_agent_ctx* ctx, const mph_event* ev, const char* via) {
    mph_header header = {"via", 3, via, strlen(via)};
    mph_message m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.partition = MPH_PARTITION_ANY;
    m.key = ev->key;
    m.key_len = ev->key_len;
    m.value = ev->value;
    m.value_len = ev->value_len;
    m.headers = &header;
    m.header_count = 1;
    return api->emit(ctx, &m) == MPH_OK ? MPH_OK : MPH_RETRY;
}

static mph_status batch_forward_on_batch(void* instance, mph_agent_ctx* ctx, const mph_event* const* events,
                                         size_t count) {
    forward_state* s = instance;
    for (size_t i = 0; i < count; ++i)
        if (contains(events[i], s->retry_on)) return MPH_RETRY;
    for (size_t i = 0; i < count; ++i)
        if (resend(ctx, events[i], "on_batch") != MPH_OK) return MPH_RETRY;
    return MPH_OK;
}

static mph_status batch_forward_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    forward_state* s = instance;
    if (contains(ev, s->retry_on)) return MPH_RETRY;
    return resend(ctx, ev, "on_event");
}

static const mph_agent_descriptor batch_forward_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "batch_forward",
    .description = "re-sends each batch (on_batch), or each event (on_event), to the sinks, saying which",
    .params = forward_params,
    .param_count = 4,
    .create = forward_create,
    .destroy = forward_destroy,
    .on_event = batch_forward_on_event,
    .on_batch = batch_forward_on_batch,
};

static const mph_agent_descriptor tick_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "tick",
    .description = "sends a numbered tick on every timer",
    .params = tick_params,
    .param_count = 1,
    .create = tick_create,
    .destroy = free,
    .on_timer = tick_on_timer,
};

static const mph_agent_descriptor count_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "count",
    .description = "counts event values in the table `counts`",
    .create = count_create,
    .destroy = free,
    .on_event = count_on_event,
};

/* registry: a key-value table `entries` driven by commands in event values, answering on its sinks.
 * "set:K=V" writes K; "get:K" emits "<who> K=V" (or "<who> K absent"); a refused write emits
 * "<who> refused K". Param who names the host in its answers. */
typedef struct registry_state {
    mph_table* entries;
    const char* who;
} registry_state;

static mph_status registry_create(mph_agent_ctx* ctx, void** instance) {
    registry_state* s = calloc(1, sizeof *s);
    static const char msg[] = "the agent must declare the table `entries`";
    if (!s) return MPH_FATAL;
    if (!MPH_HAS_MEMBER(mph_host_api, api, table_iterate) || !(s->entries = api->table(ctx, "entries"))) {
        free(s);
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    s->who = api->param(ctx, "who");
    *instance = s;
    return MPH_OK;
}

static mph_status answer(mph_agent_ctx* ctx, const char* text, int len) {
    mph_message m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.partition = MPH_PARTITION_ANY;
    m.value = text;
    m.value_len = len > 0 ? (size_t)len : 0;
    return api->emit(ctx, &m) == MPH_OK ? MPH_OK : MPH_RETRY;
}

static mph_status registry_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    registry_state* s = instance;
    const char* v = ev->value;
    char text[512];
    if (!v || ev->value_len < 5 || ev->value_len > 200) return MPH_OK;
    if (memcmp(v, "set:", 4) == 0) {
        const char* eq = memchr(v + 4, '=', ev->value_len - 4);
        size_t klen;
        mph_status st;
        if (!eq) return MPH_OK;
        klen = (size_t)(eq - (v + 4));
        st = api->table_put(ctx, s->entries, v + 4, klen, eq + 1, ev->value_len - 4 - klen - 1);
        if (st == MPH_ERR_STATE)
            return answer(ctx, text, snprintf(text, sizeof text, "%s refused %.*s", s->who, (int)klen, v + 4));
        return st == MPH_OK ? MPH_OK : MPH_FATAL;
    }
    if (memcmp(v, "get:", 4) == 0) {
        const void* value;
        size_t value_len;
        int klen = (int)ev->value_len - 4;
        mph_status st = api->table_get(ctx, s->entries, v + 4, (size_t)klen, &value, &value_len);
        if (st == MPH_ERR_NOT_FOUND)
            return answer(ctx, text, snprintf(text, sizeof text, "%s %.*s absent", s->who, klen, v + 4));
        if (st != MPH_OK) return MPH_FATAL;
        return answer(ctx, text,
                      snprintf(text, sizeof text, "%s %.*s=%.*s", s->who, klen, v + 4, (int)value_len, (const char*)value));
    }
    return MPH_OK;
}

static const mph_param_spec p_who = {sizeof(mph_param_spec), "who", "names the host in answers", "?", false};
static const mph_param_spec* const registry_params[] = {&p_who};

static const mph_agent_descriptor registry_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "registry",
    .description = "sets and gets keys of the table `entries` on command, answering on its sinks",
    .params = registry_params,
    .param_count = 1,
    .create = registry_create,
    .destroy = free,
    .on_event = registry_on_event,
};

/* fold: writes each event's value under its key into the table named by param `table`, with table_put
 * (mode put) or table_merge (mode merge, through the table's aggregator). A value the table refuses gets
 * MPH_RETRY with the host's reason, so the agent's error policy decides (tests use retry 0, dead_letter). */
typedef struct fold_state {
    mph_table* table;
    int merge;
} fold_state;

static mph_status fold_create(mph_agent_ctx* ctx, void** instance) {
    fold_state* s = calloc(1, sizeof *s);
    const char* table = api->param(ctx, "table");
    const char* mode = api->param(ctx, "mode");
    static const char msg[] = "param table must name a table the agent declares; mode is put or merge";
    if (!s) return MPH_FATAL;
    s->merge = mode && strcmp(mode, "merge") == 0;
    if (!MPH_HAS_MEMBER(mph_host_api, api, table_merge) || !table || !(s->table = api->table(ctx, table)) ||
        (mode && !s->merge && strcmp(mode, "put") != 0)) {
        free(s);
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    *instance = s;
    return MPH_OK;
}

static mph_status fold_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    fold_state* s = instance;
    mph_status st;
    if (!ev->key || !ev->value) return MPH_OK;
    st = s->merge ? api->table_merge(ctx, s->table, ev->key, ev->key_len, ev->value, ev->value_len, NULL, NULL)
                  : api->table_put(ctx, s->table, ev->key, ev->key_len, ev->value, ev->value_len);
    if (st == MPH_OK) return MPH_OK;
    return st == MPH_ERR_INVALID ? MPH_RETRY : MPH_FATAL; /* the host wrote the reason */
}

static const mph_param_spec p_table = {sizeof(mph_param_spec), "table", "the table to write", NULL, true};
static const mph_param_spec p_mode = {sizeof(mph_param_spec), "mode", "put or merge", "put", false};
static const mph_param_spec* const fold_params[] = {&p_table, &p_mode};

static const mph_agent_descriptor fold_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "fold",
    .description = "puts or merges each event into a table",
    .params = fold_params,
    .param_count = 2,
    .create = fold_create,
    .destroy = free,
    .on_event = fold_on_event,
};

/* window_count: counts each event by its key in the windowed int64 table `windows`; when a window closes it
 * emits "<key>@<window start>=<count>" to its sinks (ABI 1.3). */
static mph_status window_count_create(mph_agent_ctx* ctx, void** instance) {
    mph_table* t = api->table(ctx, "windows");
    static const char msg[] = "the agent must declare the table `windows`";
    if (!t) {
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    *instance = t;
    return MPH_OK;
}

static mph_status window_count_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    if (!ev->key) return MPH_OK;
    return api->table_add(ctx, (mph_table*)instance, ev->key, ev->key_len, 1, NULL);
}

static mph_status window_count_on_close(void* instance, mph_agent_ctx* ctx, const char* table, const void* key,
                                        size_t key_len, const mph_window* window, const void* value, size_t value_len) {
    char text[256];
    int64_t count = 0;
    mph_message m;
    (void)instance;
    (void)table;
    for (size_t i = 0; i < value_len && i < 8; ++i) count = (int64_t)(((uint64_t)count << 8) | ((const unsigned char*)value)[i]);
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.partition = MPH_PARTITION_ANY;
    m.key = key;
    m.key_len = key_len;
    m.value = text;
    m.value_len = (size_t)snprintf(text, sizeof text, "%.*s@%lld=%lld", (int)key_len, (const char*)key,
                                   (long long)window->start_ms, (long long)count);
    return api->emit(ctx, &m);
}

static const mph_agent_descriptor window_count_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "window_count",
    .description = "counts events per key and window; emits each window's final count",
    .create = window_count_create,
    .on_event = window_count_on_event,
    .on_window_close = window_count_on_close,
};

/* adder, asker, acker (ABI 1.4): agents talking to agents, and manual acknowledgement. */
static mph_status adder_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    char input[64], answer[128];
    const char* silent = api->param(ctx, "silent");
    long long a = 0, b = 0;
    size_t n = ev->value_len < sizeof input - 1 ? ev->value_len : sizeof input - 1;
    mph_status st;
    int len;
    (void)instance;
    if (silent && strcmp(silent, "true") == 0) return MPH_OK;
    memcpy(input, ev->value ? ev->value : "", n);
    input[n] = '\0';
    if (sscanf(input, "%lld %lld", &a, &b) != 2) {
        static const char msg[] = "expected two numbers";
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    len = snprintf(answer, sizeof answer, "%lld %lld=%lld", a, b, a + b);
    st = api->reply(ctx, answer, (size_t)len);
    if (st == MPH_ERR_NOT_FOUND) { /* cast: nobody asked */
        mph_message out = {sizeof(mph_message), ev->key, ev->key_len, answer, (size_t)len, NULL, 0, MPH_PARTITION_ANY, 0};
        st = api->emit(ctx, &out);
        if (st == MPH_ERR_UNSUPPORTED) st = MPH_OK;
    }
    return st == MPH_OK ? MPH_OK : MPH_RETRY;
}

static const mph_param_spec adder_silent = {sizeof(mph_param_spec), "silent", "true: never answer", "false", false};
static const mph_param_spec* const adder_params[] = {&adder_silent};
static const mph_agent_descriptor adder_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "adder",
    .description = "answers \"A B\" with \"A B=SUM\"",
    .params = adder_params,
    .param_count = 1,
    .on_event = adder_on_event,
};

static mph_status asker_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    const char* target = api->param(ctx, "target");
    const char* mode = api->param(ctx, "mode");
    const char* timeout = api->param(ctx, "timeout_ms");
    mph_message msg = {sizeof(mph_message), ev->key, ev->key_len, ev->value, ev->value_len, NULL, 0, MPH_PARTITION_ANY, 0};
    mph_status st;
    (void)instance;
    if (mode && strcmp(mode, "cast") == 0) st = api->cast(ctx, target, &msg);
    else st = api->ask(ctx, target, &msg, atoll(timeout), NULL);
    if (st != MPH_OK) {
        char why[64];
        int n = snprintf(why, sizeof why, "%s failed with %d", mode ? mode : "ask", (int)st);
        api->set_error(ctx, why, (size_t)n);
        return MPH_RETRY;
    }
    return MPH_OK;
}

static mph_status asker_on_reply(void* instance, mph_agent_ctx* ctx, uint64_t request, mph_status status,
                                 const mph_event* reply) {
    char text[64];
    mph_message out = {sizeof(mph_message), NULL, 0, NULL, 0, NULL, 0, MPH_PARTITION_ANY, 0};
    (void)instance;
    if (status == MPH_OK && reply) {
        out.value = reply->value;
        out.value_len = reply->value_len;
    } else {
        int n = snprintf(text, sizeof text, "timeout:%llu", (unsigned long long)request);
        out.value = text;
        out.value_len = (size_t)n;
    }
    return api->emit(ctx, &out) == MPH_OK ? MPH_OK : MPH_RETRY;
}

static const mph_param_spec asker_target = {sizeof(mph_param_spec), "target", "the agent asked", "adder", false};
static const mph_param_spec asker_mode = {sizeof(mph_param_spec), "mode", "ask or cast", "ask", false};
static const mph_param_spec asker_timeout = {sizeof(mph_param_spec), "timeout_ms", "ask timeout", "5000", false};
static const mph_param_spec* const asker_params[] = {&asker_target, &asker_mode, &asker_timeout};
static const mph_agent_descriptor asker_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "asker",
    .description = "asks another agent about every event and emits the answers",
    .params = asker_params,
    .param_count = 3,
    .on_event = asker_on_event,
    .on_reply = asker_on_reply,
};

typedef struct acker_state {
    long every;
    const char* fail_on;
    int64_t held[4096];
    long count;
} acker_state;

static mph_status acker_create(mph_agent_ctx* ctx, void** instance) {
    acker_state* s = calloc(1, sizeof *s);
    const char* every = api->param(ctx, "every");
    if (!s) return MPH_FATAL;
    s->every = every ? atol(every) : 10;
    s->fail_on = api->param(ctx, "fail_on");
    if (s->every < 1 || s->every > 4096) s->every = 10;
    *instance = s;
    return MPH_OK;
}

static void acker_destroy(void* instance) { free(instance); }

static mph_status acker_ack_all(acker_state* s, mph_agent_ctx* ctx) {
    for (long i = 0; i < s->count; ++i)
        if (api->ack(ctx, s->held[i]) != MPH_OK) return MPH_FATAL;
    s->count = 0;
    return MPH_OK;
}

static mph_status acker_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    acker_state* s = instance;
    if (contains(ev, s->fail_on)) {
        static const char msg[] = "poisoned event";
        api->set_error(ctx, msg, sizeof msg - 1);
        return MPH_FATAL;
    }
    if (api->forward(ctx) != MPH_OK) return MPH_RETRY;
    s->held[s->count++] = ev->offset;
    return s->count >= s->every ? acker_ack_all(s, ctx) : MPH_OK;
}

static mph_status acker_on_revoked(void* instance, mph_agent_ctx* ctx, int32_t partition) {
    (void)partition;
    return acker_ack_all(instance, ctx);
}

static const mph_param_spec acker_every = {sizeof(mph_param_spec), "every", "acknowledge this many at a time", "10", false};
static const mph_param_spec acker_fail_on = {sizeof(mph_param_spec), "fail_on", "fail on values containing this", NULL, false};
static const mph_param_spec* const acker_params[] = {&acker_every, &acker_fail_on};
static const mph_agent_descriptor acker_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "acker",
    .description = "forwards events and acknowledges them in groups (ack: manual)",
    .params = acker_params,
    .param_count = 2,
    .create = acker_create,
    .destroy = acker_destroy,
    .on_event = acker_on_event,
    .on_revoked = acker_on_revoked,
};

static const mph_agent_descriptor* const agents[] = {&forward_agent, &tick_agent,   &count_agent, &registry_agent,
                                                     &fold_agent,    &window_count_agent, &adder_agent,
                                                     &asker_agent,   &acker_agent,        &batch_forward_agent};

/* by_value: a group_by key function (ABI 1.2) keying each event by its value; an empty value is refused. */
static mph_status by_value(const mph_event* ev, mph_write_fn write, void* sink, char* errbuf, size_t errbuf_size) {
    if (!ev->value || ev->value_len == 0) {
        snprintf(errbuf, errbuf_size, "an empty value has no key");
        return MPH_ERR_INVALID;
    }
    write(sink, ev->value, ev->value_len);
    return MPH_OK;
}

static const mph_key_fn_descriptor by_value_fn = {sizeof(mph_key_fn_descriptor), "by_value",
                                                  "keys each event by its value", by_value};
static const mph_key_fn_descriptor* const key_functions[] = {&by_value_fn};

/* no_spam: a filter predicate (ABI 1.3) keeping events whose value does not contain "spam"; a value
 * containing "undecidable" is an error (the agent's error policy applies). */
static int32_t no_spam(const mph_event* ev, char* errbuf, size_t errbuf_size) {
    if (contains(ev, "undecidable")) {
        snprintf(errbuf, errbuf_size, "cannot tell whether this is spam");
        return MPH_ERR_INVALID;
    }
    return contains(ev, "spam") ? 0 : 1;
}

static const mph_predicate_descriptor no_spam_predicate = {sizeof(mph_predicate_descriptor), "no_spam",
                                                           "keeps events whose value has no \"spam\"", no_spam};
static const mph_predicate_descriptor* const predicates[] = {&no_spam_predicate};

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = "test_agents",
    .version = "1.0.0",
    .description = "agents for Mephisto's own tests",
    .agents = agents,
    .agent_count = 10,
    .key_functions = key_functions,
    .key_function_count = 1,
    .predicates = predicates,
    .predicate_count = 1,
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
