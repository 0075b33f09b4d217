/*
 * word_split — a Mephisto plugin in plain C11, written against mephisto.h alone.
 *
 * The `split` agent reads sentences and emits one event per word to its sinks, with key = value = the word.
 * Words are lowercased and split on every ASCII byte that is not a letter or a digit (whitespace,
 * punctuation, control characters). Bytes >= 0x80 count as letters, so UTF-8 words stay whole; they are
 * not lowercased. An empty value or a tombstone emits nothing.
 *
 * The agent is stateless, so it sets no create/destroy: its instance pointer stays NULL.
 */
#include <mephisto/mephisto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The host table from the entry call; it stays valid until the plugin is unloaded (mephisto.h). */
static const mph_host_api* host;

static bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static char lowercase(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static void report(mph_agent_ctx* ctx, const char* message) { host->set_error(ctx, message, strlen(message)); }

/* Turns a failed emit into the callback's verdict: a full output queue is transient, the rest is not. */
static mph_status verdict_for_failed_emit(mph_agent_ctx* ctx, mph_status status) {
    switch (status) {
    case MPH_ERR_FULL:
        report(ctx, "split: the output queue stayed full");
        return MPH_RETRY;
    case MPH_ERR_UNSUPPORTED:
        report(ctx, "split: the agent has no sinks; add `sinks: [words]` to its YAML");
        return MPH_FATAL;
    default: {
        char message[64];
        snprintf(message, sizeof message, "split: emit failed with status %d", (int)status);
        report(ctx, message);
        return MPH_FATAL;
    }
    }
}

static mph_status split_on_event(void* instance, mph_agent_ctx* ctx, const mph_event* event) {
    (void)instance;
    if (event->value == NULL || event->value_len == 0) return MPH_OK;

    /* The event is a borrowed view: lowercase a private copy. emit copies what it is given. */
    char* text = malloc(event->value_len);
    if (text == NULL) {
        report(ctx, "split: out of memory");
        return MPH_RETRY;
    }
    const char* value = event->value;
    for (size_t i = 0; i < event->value_len; ++i) text[i] = lowercase(value[i]);

    mph_status verdict = MPH_OK;
    size_t i = 0;
    while (i < event->value_len && verdict == MPH_OK) {
        while (i < event->value_len && !is_word_byte((unsigned char)text[i])) ++i;
        const size_t start = i;
        while (i < event->value_len && is_word_byte((unsigned char)text[i])) ++i;
        if (i == start) break;

        const mph_message word = {
            .struct_size = sizeof(mph_message),
            .key = text + start,
            .key_len = i - start,
            .value = text + start,
            .value_len = i - start,
            .partition = MPH_PARTITION_ANY,
        };
        const mph_status status = host->emit(ctx, &word);
        if (status != MPH_OK) verdict = verdict_for_failed_emit(ctx, status);
    }
    free(text);
    return verdict;
}

static const mph_agent_descriptor split_agent = {
    .struct_size = sizeof(mph_agent_descriptor),
    .name = "split",
    .description = "emits one event per lowercased word, keyed by the word",
    .on_event = split_on_event,
};

static const mph_agent_descriptor* const agents[] = {&split_agent};

static const mph_plugin_descriptor plugin = {
    .struct_size = sizeof(mph_plugin_descriptor),
    .abi_major = MPH_ABI_VERSION_MAJOR,
    .abi_minor = MPH_ABI_VERSION_MINOR,
    .name = "word_split",
    .version = "1.0.0",
    .description = "splits sentences into words (a plugin in plain C)",
    .agents = agents,
    .agent_count = sizeof agents / sizeof agents[0],
};

MPH_EXPORT const mph_plugin_descriptor* mephisto_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor,
                                                              const mph_host_api* api, char* errbuf,
                                                              size_t errbuf_size) {
    if (host_abi_major != MPH_ABI_VERSION_MAJOR) {
        snprintf(errbuf, errbuf_size, "word_split needs Mephisto ABI %d.x, the host offers %u.%u",
                 MPH_ABI_VERSION_MAJOR, (unsigned)host_abi_major, (unsigned)host_abi_minor);
        return NULL;
    }
    /* emit and set_error are the members this plugin calls. */
    if (!MPH_HAS_MEMBER(mph_host_api, api, emit)) {
        snprintf(errbuf, errbuf_size, "word_split: the host function table is smaller than ABI 1.0");
        return NULL;
    }
    host = api;
    return &plugin;
}
