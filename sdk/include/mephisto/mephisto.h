/*
 * mephisto.h — the Mephisto plugin ABI.
 *
 * This header is the whole contract between the Mephisto host and a plugin. It is plain C11, includes only
 * <stdint.h>, <stddef.h> and <stdbool.h>, and compiles as C and as C++.
 *
 * Conventions (numbered so that comments can cite them):
 *  1. One exported symbol. A plugin exports MPH_ENTRY_SYMBOL with the mph_entry_fn signature. The host passes
 *     its ABI version and its function table; the plugin returns its descriptor, or NULL with a reason written
 *     into the caller-provided buffer.
 *  2. Versioning. MPH_ABI_VERSION_MAJOR changes only when a released member changes meaning; the host refuses
 *     a plugin of another major, or of a newer minor than its own, with a message naming both versions.
 *  3. Size-versioned structs. Every struct that crosses the line begins with `size_t struct_size`, set by its
 *     author to sizeof() of the struct it was compiled against. A reader reads a member only when struct_size
 *     covers it (MPH_HAS_MEMBER). Members are only ever appended; each group is tagged with "since 1.N".
 *  4. Append-only host table. mph_host_api only grows at the end. A plugin built against a newer minor that
 *     wants a newer member checks MPH_HAS_MEMBER(mph_host_api, api, member) before calling it. A released signature never
 *     changes: a new signature is a new member named with _v2.
 *  5. Opaque handles, named for their owner: mph_agent_ctx is host-owned. Bytes travel as (pointer, length);
 *     strings passed as `const char*` with no length are NUL-terminated.
 *  6. OWNERSHIP: inputs are borrowed for the duration of the call. Views returned by the host are valid until
 *     the callback that obtained them returns. Whoever keeps data copies it.
 *  7. THREAD: the host calls an agent instance from one thread at a time, so an instance needs no locks.
 *     Different instances of one agent may run concurrently on different threads. Host functions that take
 *     an mph_agent_ctx may only be called from inside a callback that received that ctx.
 *  8. ERRORS: functions return mph_status. A callback's verdict is MPH_OK, MPH_RETRY (transient: the host
 *     retries with backoff) or MPH_FATAL (the supervisor restarts the instance). Negative values are local
 *     errors of host functions. Error text goes to the host through set_error before returning. Any verdict
 *     other than MPH_OK and MPH_RETRY counts as MPH_FATAL: a host status returned as it came (say MPH_ERR_FULL
 *     from emit) restarts the instance; return MPH_RETRY to have the event tried again instead.
 *  9. No C++ across the line: no exceptions, no RTTI, no std:: types. The C++ wrapper (mephisto.hpp)
 *     catches every exception at the trampoline and turns it into MPH_FATAL plus the message.
 */
#ifndef MEPHISTO_MEPHISTO_H
#define MEPHISTO_MEPHISTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPH_ABI_VERSION_MAJOR 1
#define MPH_ABI_VERSION_MINOR 4

/* The one symbol a plugin exports (convention 1). */
#define MPH_ENTRY_SYMBOL "mephisto_plugin_entry"

/* Marks the entry function exported even when the plugin is built with -fvisibility=hidden. */
#if defined(__GNUC__)
#define MPH_EXPORT __attribute__((visibility("default")))
#else
#define MPH_EXPORT
#endif

/* True when the struct of type `type` pointed to by `ptr` was compiled with `member` (convention 3). */
#define MPH_HAS_MEMBER(type, ptr, member) \
    ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

/* ---------------------------------------------------------------------------------------------------------
 * Status codes. Stable numbers: they never change meaning.
 * ------------------------------------------------------------------------------------------------------- */
typedef int32_t mph_status;

#define MPH_OK 0             /* done */
#define MPH_RETRY 1          /* transient failure: retry this event with backoff */
#define MPH_FATAL 2          /* the instance is broken: the supervisor destroys and re-creates it */
#define MPH_ERR_INVALID -1   /* a host function was given an invalid argument */
#define MPH_ERR_NOT_FOUND -2 /* a named thing (topic, param) does not exist */
#define MPH_ERR_STATE -3     /* called outside the callback that owns the ctx, or in the wrong phase */
#define MPH_ERR_FULL -4      /* the host's output queue is full and did not drain in time */
#define MPH_ERR_UNSUPPORTED -5 /* the host does not offer this (e.g. no sinks configured) */
#define MPH_ERR_TIMEOUT -6     /* since 1.4: an ask got no reply within its timeout (on_reply's status) */

/* Log levels for mph_host_api.log. */
#define MPH_LOG_TRACE 0
#define MPH_LOG_DEBUG 1
#define MPH_LOG_INFO 2
#define MPH_LOG_WARN 3
#define MPH_LOG_ERROR 4

/* Partition value meaning "let the partitioner choose" (murmur2 of the key, random when there is none). */
#define MPH_PARTITION_ANY (-1)

/* ---------------------------------------------------------------------------------------------------------
 * Handles and plain data.
 * ------------------------------------------------------------------------------------------------------- */

/* Host-owned context of one agent instance (or of one timer). Passed to every callback. */
typedef struct mph_agent_ctx mph_agent_ctx;

/* Host-owned handle of a table the agent declared in YAML (since 1.1). Valid for the life of the instance. */
typedef struct mph_table mph_table;

/* Called once per entry by table_iterate (since 1.1). Return MPH_OK to go on, anything else to stop (the
 * value is returned by table_iterate). OWNERSHIP: key and value are views valid during the call only. */
typedef mph_status (*mph_table_visit_fn)(void* user, const void* key, size_t key_len, const void* value,
                                         size_t value_len);

/* A time window of a windowed table (since 1.3): [start_ms, end_ms), milliseconds since the epoch. */
typedef struct mph_window {
    size_t struct_size;
    int64_t start_ms;
    int64_t end_ms;
} mph_window;

/* Which time window_get reads a windowed table at (since 1.3), Faust's WindowSet accessors. */
#define MPH_WINDOW_RELATIVE 0 /* the table's `relative_to` (Faust's .value()) */
#define MPH_WINDOW_CURRENT 1  /* the event being processed: its timestamp or time field (.current()) */
#define MPH_WINDOW_NOW 2      /* the wall clock (.now()) */

/* Called once per window by window_iterate (since 1.3). Return MPH_OK to go on, anything else to stop.
 * OWNERSHIP: window and value are views valid during the call only. */
typedef mph_status (*mph_window_visit_fn)(void* user, const mph_window* window, const void* value, size_t value_len);

/* Appends bytes to a host-owned output (since 1.2): codecs and aggregators hand their results to the host
 * through it; several calls append. OWNERSHIP: data copied. THREAD: the caller's. */
typedef void (*mph_write_fn)(void* sink, const void* data, size_t len);

/* A message header. OWNERSHIP: borrowed; in an event, valid until the callback returns. */
typedef struct mph_header {
    const char* name;
    size_t name_len;
    const void* value; /* NULL for a header without a value */
    size_t value_len;
} mph_header;

/* One consumed event. OWNERSHIP: host-owned view, valid until the callback returns (convention 6). */
typedef struct mph_event {
    size_t struct_size;
    const char* topic; /* NUL-terminated */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* milliseconds since the epoch; -1 when the message has none */
    const void* key;      /* NULL when the message has no key */
    size_t key_len;
    const void* value; /* NULL for a tombstone; non-NULL with value_len 0 for an empty value */
    size_t value_len;
    const mph_header* headers; /* NULL when header_count is 0 */
    size_t header_count;
} mph_event;

/* One message to produce. OWNERSHIP: borrowed; the host copies it before the call returns. */
typedef struct mph_message {
    size_t struct_size;
    const void* key; /* NULL for no key */
    size_t key_len;
    const void* value; /* NULL for a tombstone */
    size_t value_len;
    const mph_header* headers;
    size_t header_count;
    int32_t partition;    /* MPH_PARTITION_ANY or an explicit partition */
    int64_t timestamp_ms; /* 0: the host stamps the current time */
} mph_message;

/* ---------------------------------------------------------------------------------------------------------
 * The host function table (convention 4). Append-only.
 * ------------------------------------------------------------------------------------------------------- */
typedef struct mph_host_api {
    size_t struct_size;
    uint32_t abi_major; /* the host's ABI version */
    uint32_t abi_minor;

    /* since 1.0 ------------------------------------------------------------------------------------------ */

    /* Logs through the host's logger named after the plugin and agent. ctx may be NULL (plugin-level).
     * OWNERSHIP: msg borrowed. THREAD: any. ERRORS: none. */
    void (*log)(mph_agent_ctx* ctx, int32_t level, const char* msg, size_t msg_len);

    /* Records the reason for the verdict about to be returned (RETRY or FATAL); the host logs it, counts it
     * and puts it in dead-letter headers. The last call before returning wins; the host keeps the first
     * 4 KiB of it.
     * OWNERSHIP: msg copied. THREAD: the callback's. ERRORS: none. */
    void (*set_error)(mph_agent_ctx* ctx, const char* msg, size_t msg_len);

    /* The value of a param: the agent's `params:` in YAML, else the param's declared default_value, else NULL.
     * (The host refuses, at startup, YAML params the agent does not declare and missing required ones.)
     * OWNERSHIP: host-owned, valid for the life of the instance. THREAD: any callback of ctx. */
    const char* (*param)(mph_agent_ctx* ctx, const char* name);

    /* Produces `msg` to every sink of the agent (its `sinks:` in YAML).
     * OWNERSHIP: msg copied. THREAD: the callback's.
     * ERRORS: MPH_ERR_UNSUPPORTED when the agent has no sinks, MPH_ERR_FULL when the producer stays full,
     * MPH_ERR_INVALID for a NULL msg or an unknown partition. */
    mph_status (*emit)(mph_agent_ctx* ctx, const mph_message* msg);

    /* Produces `msg` to the named topic, which need not be a sink.
     * OWNERSHIP: topic and msg copied. THREAD: the callback's.
     * ERRORS: MPH_ERR_INVALID, MPH_ERR_FULL. */
    mph_status (*send)(mph_agent_ctx* ctx, const char* topic, size_t topic_len, const mph_message* msg);

    /* Produces the event being processed, unchanged (key, value, headers, timestamp), to every sink.
     * THREAD: on_event only. ERRORS: MPH_ERR_STATE outside on_event, MPH_ERR_UNSUPPORTED without sinks. */
    mph_status (*forward)(mph_agent_ctx* ctx);

    /* The partition this instance serves, or -1 for a timer instance. THREAD: any callback of ctx. */
    int32_t (*partition)(mph_agent_ctx* ctx);

    /* The agent's name in YAML (not the plugin's agent name). OWNERSHIP: host-owned, instance lifetime. */
    const char* (*agent_name)(mph_agent_ctx* ctx);

    /* since 1.1: tables ------------------------------------------------------------------------------------
     * Tables are host-owned, sharded like the agent's source topic, changelogged and recovered by the host
     * (Faust's Table). An instance reads and writes the shard of the partition it serves: a write goes to the
     * partition of the event being processed. Values are bytes in the table's value codec: int64 is 8 bytes
     * big-endian (Kafka's LongSerializer), double is an IEEE-754 binary64 big-endian, json is UTF-8 JSON text.
     * THREAD: every table function may only be called from a callback of ctx on a partition instance; from a
     * timer instance (partition -1) they return MPH_ERR_STATE.
     * A global table (`global: true`) is held whole by every host: get and iterate see every partition, and a
     * write to a key another partition holds returns MPH_ERR_STATE (the instance reads it, its owner writes). */

    /* Resolves a table the agent lists under `tables:` in YAML; call it once, in create.
     * Returns NULL when the agent did not declare the table. OWNERSHIP: host-owned, instance lifetime. */
    mph_table* (*table)(mph_agent_ctx* ctx, const char* name);

    /* Reads key. On MPH_OK, *value and *value_len view the value (or the table's declared default when the key
     * is absent). OWNERSHIP: the view is valid until the callback returns.
     * ERRORS: MPH_ERR_NOT_FOUND when absent and the table has no default; MPH_ERR_INVALID; MPH_ERR_STATE. */
    mph_status (*table_get)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                            const void** value, size_t* value_len);

    /* Writes key = value. OWNERSHIP: both copied.
     * ERRORS: MPH_ERR_INVALID (value not valid for the table's codec), MPH_ERR_STATE. */
    mph_status (*table_put)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, const void* value,
                            size_t value_len);

    /* Deletes key (a tombstone in the changelog; deleted keys stay deleted after recovery).
     * ERRORS: MPH_ERR_INVALID, MPH_ERR_STATE. */
    mph_status (*table_delete)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len);

    /* Atomically adds delta to an int64 table's value for key (absent: the default, else 0) and returns the
     * new value in *result (may be NULL). The counter of Faust's `table[key] += 1`, at hash-map speed.
     * ERRORS: MPH_ERR_UNSUPPORTED when the table's value codec is not int64; MPH_ERR_INVALID; MPH_ERR_STATE. */
    mph_status (*table_add)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len, int64_t delta,
                            int64_t* result);

    /* Visits every key of the instance's partition (of every partition for a global table), in key byte order. Returns MPH_OK after the last entry,
     * or the first non-OK value a visit returned. Writes made by the visit are not seen by the iteration.
     * ERRORS: MPH_ERR_INVALID, MPH_ERR_STATE. */
    mph_status (*table_iterate)(mph_agent_ctx* ctx, mph_table* table, mph_table_visit_fn visit, void* user);

    /* since 1.2: aggregation ----------------------------------------------------------------------------- */

    /* Folds `input` into key's value with the table's aggregator (YAML `aggregate:`), atomically: the value
     * becomes merge(current, input), where current is the stored value, else the table's default, else absent.
     * table_add is the built-in int64 sum; this is the same at the same speed for any aggregation a plugin
     * provides (mph_aggregator_descriptor). On MPH_OK, *value and *value_len (either may be NULL) view the new
     * value until the callback returns.
     * ERRORS: MPH_ERR_UNSUPPORTED when the table has no aggregator; MPH_ERR_INVALID when the aggregator refused
     * the input or produced a value the table's codec refuses (the table is unchanged; the reason becomes the
     * callback's error text); MPH_ERR_STATE as for every table function. */
    mph_status (*table_merge)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                              const void* input, size_t input_len, const void** value, size_t* value_len);

    /* since 1.3: windowed tables ---------------------------------------------------------------------------
     * A table with `window:` in YAML keeps one value per (key, window). table_put, table_add, table_merge and
     * table_delete change every window the current event falls in (one for tumbling and sliding windows, size /
     * step for hopping ones); an event whose windows all closed (later than the grace period) changes nothing
     * and is counted as late. table_get reads the window of the table's `relative_to` time; table_iterate
     * visits the keys of that window. Windows close in stream time (the largest event time the partition has
     * seen): a window closes once stream time passes its end plus the grace period, and the agent that exports
     * on_window_close gets it exactly once per (key, window). A window is removed from the store and the
     * changelog once stream time passes its end plus `expires`; reads never show it after that. */

    /* Reads key's value in the window containing (time - delta_ms), where time is chosen by `time_source`
     * (MPH_WINDOW_*): Faust's .value(), .current(), .now() and .delta(d). For hopping windows the latest window
     * containing that time. On MPH_OK, *value and *value_len view the value (or the table's default when the
     * window has none) until the callback returns, and *window (may be NULL) is set to the window read.
     * ERRORS: MPH_ERR_NOT_FOUND when the window has no value (or it expired) and the table has no default;
     * MPH_ERR_UNSUPPORTED when the table is not windowed; MPH_ERR_INVALID; MPH_ERR_STATE. */
    mph_status (*window_get)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                             int32_t time_source, int64_t delta_ms, const void** value, size_t* value_len,
                             mph_window* window);
    /* Visits key's live (not expired) windows, oldest first. Returns MPH_OK after the last, or the visitor's
     * status. ERRORS: as window_get. */
    mph_status (*window_iterate)(mph_agent_ctx* ctx, mph_table* table, const void* key, size_t key_len,
                                 mph_window_visit_fn visit, void* user);

    /* since 1.4: agents talking to agents (Faust's agent.cast / agent.ask) and manual acknowledgement -------
     * `agent` is an agent's YAML name in the caller's pipeline; a message to it goes to the first topic of its
     * `from:`, so it reaches whichever host owns the partition its key falls in (any host of the app).
     * THREAD: a callback of ctx on a partition instance (on_event, on_batch, on_reply, on_assigned,
     * on_revoked, on_window_close); from a timer instance cast works and ask and ack return MPH_ERR_STATE. */

    /* Sends msg to agent `agent`, expecting no reply. Tracked like send: the event being processed is not
     * committed before the broker acknowledged it.
     * ERRORS: MPH_ERR_NOT_FOUND (no such agent), MPH_ERR_INVALID, MPH_ERR_FULL. */
    mph_status (*cast)(mph_agent_ctx* ctx, const char* agent, const mph_message* msg);

    /* Sends msg to agent `agent` with reply-to and correlation-id headers and returns at once; *request_id
     * (may be NULL) identifies the request. The reply, or MPH_ERR_TIMEOUT after timeout_ms, comes to this
     * instance's on_reply exactly once. The event being processed stays uncommitted until then, so a crash
     * before the reply asks again after recovery (at-least-once, like every output). If the instance is
     * re-created meanwhile (a restart, a plugin swap) its successor gets on_reply; if the partition is revoked
     * the reply is dropped and the new owner asks again.
     * ERRORS: MPH_ERR_UNSUPPORTED (the agent exports no on_reply), MPH_ERR_NOT_FOUND, MPH_ERR_INVALID
     * (timeout_ms <= 0), MPH_ERR_FULL, MPH_ERR_STATE (no event being processed, or a timer instance). */
    mph_status (*ask)(mph_agent_ctx* ctx, const char* agent, const mph_message* msg, int64_t timeout_ms,
                      uint64_t* request_id);

    /* Answers the event being processed, when it was sent by ask: produces value to the asker's reply topic
     * with its correlation id (Faust: the value an agent yields goes to reply_to). Tracked like send.
     * THREAD: on_event only. ERRORS: MPH_ERR_NOT_FOUND when the event asked for no reply (nothing is sent),
     * MPH_ERR_STATE outside on_event, MPH_ERR_FULL. */
    mph_status (*reply)(mph_agent_ctx* ctx, const void* value, size_t value_len);

    /* Acknowledges the event at `offset` of this instance's partition, for an agent with `ack: manual` in YAML
     * (Faust's acks=False with stream.ack): such an agent's events are done only when it acknowledges them,
     * possibly in a later callback (on_revoked is the last chance before the commit). Events an instance did
     * not acknowledge when it is destroyed by a restart or swap are delivered again to its successor; at a
     * revoke they stay uncommitted and the next owner gets them.
     * ERRORS: MPH_ERR_NOT_FOUND (not an event this instance holds unacknowledged), MPH_ERR_STATE (the agent's
     * acks are not manual, or a timer instance). */
    mph_status (*ack)(mph_agent_ctx* ctx, int64_t offset);
} mph_host_api;

/* ---------------------------------------------------------------------------------------------------------
 * What a plugin describes (convention 3: size-versioned; the host reads only what struct_size covers).
 * ------------------------------------------------------------------------------------------------------- */

/* A parameter an agent accepts; shown by `mephisto plugin inspect`. */
typedef struct mph_param_spec {
    size_t struct_size;
    const char* name;
    const char* description;
    const char* default_value; /* NULL: no default */
    bool required;
} mph_param_spec;

/* An agent: callbacks the host drives. Every callback gets the instance pointer set by create.
 * Unset (NULL) callbacks are skipped. An agent sets on_event or on_batch (or, for timers only, on_timer). */
typedef struct mph_agent_descriptor {
    size_t struct_size;
    const char* name;        /* unique within the plugin; YAML names it as `agent:` */
    const char* description; /* one line, may be NULL */
    const mph_param_spec* const* params; /* may be NULL */
    size_t param_count;

    /* Creates one instance. Called once per assigned partition and concurrency slot (`concurrency: N`: N
     * instances per partition, each with its own create), once per timer, and again for a new instance after a
     * restart (MPH_FATAL) or a plugin swap.
     * Sets *instance (may stay NULL). Returns MPH_OK or MPH_FATAL after set_error. THREAD: a worker. */
    mph_status (*create)(mph_agent_ctx* ctx, void** instance);
    /* Destroys an instance; never fails. Called after on_revoked, on restart and at shutdown. */
    void (*destroy)(void* instance);

    /* One event. Verdict per convention 8. An event read from a channel (not from Kafka) has the channel's
     * name as topic, partition 0, and as offset the channel's sequence number: the order in which this host
     * process took the events into the channel, counted from 0 at its start (not stable across restarts). */
    mph_status (*on_event)(void* instance, mph_agent_ctx* ctx, const mph_event* event);
    /* Several consecutive events of one partition; the verdict applies to the whole batch. An agent exporting
     * both gets events through on_event, unless its YAML says `take:`: then through on_batch, in batches of
     * up to take.max. OWNERSHIP: the array and events are valid until the callback returns. */
    mph_status (*on_batch)(void* instance, mph_agent_ctx* ctx, const mph_event* const* events, size_t count);
    /* A timer declared in YAML fired. `timer` is its YAML name; now_ms is wall-clock milliseconds. */
    mph_status (*on_timer)(void* instance, mph_agent_ctx* ctx, const char* timer, int64_t now_ms);
    /* The instance's partition was assigned (after create) or is being revoked (before destroy; the
     * host commits after it returns). Return values other than MPH_OK are logged and counted. */
    mph_status (*on_assigned)(void* instance, mph_agent_ctx* ctx, int32_t partition);
    mph_status (*on_revoked)(void* instance, mph_agent_ctx* ctx, int32_t partition);

    /* since 1.3: a window of a windowed table the agent declares closed (stream time passed its end plus the
     * grace period): its final value for key. Called once per (key, window) while the host runs, on the
     * instance of the partition that holds the key, right after the event that moved stream time past it;
     * outputs it sends are tracked like that event's. Across a crash it is at least once, not exactly once:
     * when that event was not committed yet, it is processed again and the window closes again. At most one agent per table may export it. Return MPH_OK; other verdicts
     * are logged and counted, and the window still counts as closed. OWNERSHIP: views valid during the call. */
    mph_status (*on_window_close)(void* instance, mph_agent_ctx* ctx, const char* table, const void* key,
                                  size_t key_len, const mph_window* window, const void* value, size_t value_len);

    /* since 1.4: the answer to an ask this agent's instance made on this partition. status is MPH_OK with the
     * reply message in `reply` (its value is what the other agent passed to reply), or MPH_ERR_TIMEOUT with
     * reply NULL. Outputs it sends are tracked against the event that asked. Verdicts other than MPH_OK are
     * logged and counted; the reply is not delivered again. OWNERSHIP: reply is a view valid during the call. */
    mph_status (*on_reply)(void* instance, mph_agent_ctx* ctx, uint64_t request_id, mph_status status,
                           const mph_event* reply);
} mph_agent_descriptor;

/* A named value codec (since 1.2; Faust's codec registry). It says whether bytes are a well-formed value and how
 * to show one as JSON. A table or topic names it in YAML as `value: {plugin: P, codec: NAME}`; the built-in
 * codecs (raw, int64, double, json) are descriptors of this same type inside the host. The host validates every
 * table write and every consumed value of a topic with its codec; undecodable input follows the agent's error
 * policy. */
typedef struct mph_codec_descriptor {
    size_t struct_size;
    const char* name;        /* unique among the plugin's codecs */
    const char* description; /* one line, may be NULL */
    /* MPH_OK when `value` is well-formed, else MPH_ERR_INVALID with the reason written into errbuf
     * (NUL-terminated, truncated to errbuf_size). THREAD: any, concurrently: keep no mutable state.
     * May be NULL: every value is accepted. */
    mph_status (*validate)(const void* value, size_t value_len, char* errbuf, size_t errbuf_size);
    /* Writes `value` as one JSON value through write(sink, ...), for `mephisto table get|dump` and the admin
     * API. MPH_OK or MPH_ERR_INVALID. THREAD: any, concurrently. May be NULL: the host shows the bytes as a
     * JSON string. */
    mph_status (*to_json)(const void* value, size_t value_len, mph_write_fn write, void* sink);
} mph_codec_descriptor;

/* A custom aggregation for a table (since 1.2): YAML `aggregate: {plugin: P, name: NAME}` on the table, and
 * agents call table_merge. The host runs merge under the key's lock in its write-back cache, so concurrent
 * merges of one key never interleave and a hot key costs no store read. */
typedef struct mph_aggregator_descriptor {
    size_t struct_size;
    const char* name;        /* unique among the plugin's aggregators */
    const char* description; /* one line, may be NULL */
    /* Writes the new value through write(sink, ...) from the key's `current` value (NULL, length 0, when the
     * key is absent and the table has no default) and one `input`. Returns MPH_OK, or MPH_ERR_INVALID with the
     * reason in errbuf to refuse the input (nothing changes). THREAD: any, concurrently; must not call the host.
     * OWNERSHIP: current and input are borrowed for the call. */
    mph_status (*merge)(const void* current, size_t current_len, const void* input, size_t input_len,
                        mph_write_fn write, void* sink, char* errbuf, size_t errbuf_size);
} mph_aggregator_descriptor;

/* A key function (since 1.2): what `group_by: {plugin: P, function: NAME}` re-keys an agent's sources by, when
 * neither the message key nor a JSON field is the grouping key. The host calls it for every event on its way to
 * the repartition topic `<app>-<agent>-<NAME>-repartition`. */
typedef struct mph_key_fn_descriptor {
    size_t struct_size;
    const char* name;        /* unique among the plugin's key functions */
    const char* description; /* one line, may be NULL */
    /* Writes the key `event` is grouped by through write(sink, ...) (nothing written: an empty key). Returns
     * MPH_OK, or MPH_ERR_INVALID with the reason in errbuf: the event then follows the agent's error policy.
     * THREAD: any, concurrently; must not call the host. OWNERSHIP: event is borrowed for the call. */
    mph_status (*key)(const mph_event* event, mph_write_fn write, void* sink, char* errbuf, size_t errbuf_size);
} mph_key_fn_descriptor;

/* A predicate (since 1.3), Faust's stream.filter: YAML `filter: {plugin: P, predicate: NAME}` on an agent. The
 * host asks it about every event before the agent sees it; an event it rejects is acknowledged without reaching
 * the agent (and counted as filtered). */
typedef struct mph_predicate_descriptor {
    size_t struct_size;
    const char* name;        /* unique among the plugin's predicates */
    const char* description; /* one line, may be NULL */
    /* 1: the agent gets the event; 0: it is filtered out; MPH_ERR_INVALID with the reason in errbuf: the event
     * follows the agent's error policy. THREAD: any, concurrently; must not call the host.
     * OWNERSHIP: event is borrowed for the call. */
    int32_t (*keep)(const mph_event* event, char* errbuf, size_t errbuf_size);
} mph_predicate_descriptor;

/* The plugin as a whole. Returned by the entry function; must stay valid until fini returns
 * (a static const object is the usual choice). */
typedef struct mph_plugin_descriptor {
    size_t struct_size;
    uint32_t abi_major; /* set to MPH_ABI_VERSION_MAJOR / _MINOR: the ABI the plugin was built against */
    uint32_t abi_minor;
    const char* name;        /* e.g. "hello_world" */
    const char* version;     /* the plugin's own version, free-form, e.g. "1.2.0" */
    const char* description; /* may be NULL */
    const mph_agent_descriptor* const* agents;
    size_t agent_count;
    /* Called once after load, before any agent is created. Returns MPH_OK, or MPH_FATAL with a reason
     * written into errbuf; the host then refuses the plugin and unloads it. May be NULL. */
    mph_status (*init)(char* errbuf, size_t errbuf_size);
    /* Called once before unload, after every instance was destroyed. May be NULL. */
    void (*fini)(void);

    /* since 1.2: what the plugin provides besides agents (a plugin may provide only these: agent_count 0):
     * value codecs, table aggregators and group_by key functions */
    const mph_codec_descriptor* const* codecs; /* may be NULL */
    size_t codec_count;
    const mph_aggregator_descriptor* const* aggregators; /* may be NULL */
    size_t aggregator_count;
    const mph_key_fn_descriptor* const* key_functions; /* may be NULL */
    size_t key_function_count;

    /* since 1.3: predicates for agents' `filter:` */
    const mph_predicate_descriptor* const* predicates; /* may be NULL */
    size_t predicate_count;
} mph_plugin_descriptor;

/* The entry function (convention 1). `api` stays valid until fini returns: keep the pointer.
 * Return NULL and write a reason into errbuf to refuse the host (for example, an api too old). */
typedef const mph_plugin_descriptor* (*mph_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor,
                                                     const mph_host_api* api, char* errbuf,
                                                     size_t errbuf_size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MEPHISTO_MEPHISTO_H */
