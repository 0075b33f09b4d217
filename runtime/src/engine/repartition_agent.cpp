#include "engine/repartition_agent.hpp"

#include <string>

#include "common/crash_report.hpp"
#include "common/json_bounds.hpp"
#include "engine/agent_context.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {
namespace {

struct Repartitioner {
    bool by_field = false;
    std::string field;
    std::string topic;
    const mph_key_fn_descriptor* key_function = nullptr;  // group_by: {plugin, function}
    std::string key_plugin;                                // the plugin providing it
};

mph_status create(mph_agent_ctx* ctx, void** instance) {
    const mph_host_api* api = host_api();
    const char* by = api->param(ctx, "by");
    const char* field = api->param(ctx, "field");
    const char* topic = api->param(ctx, "topic");
    if (!by || !topic) return MPH_FATAL;
    auto* r = new Repartitioner{std::string(by) == "field", field ? field : "", topic, nullptr, {}};
    if (std::string(by) == "function") {
        r->key_function = ctx->pipeline ? ctx->pipeline->key_function(ctx->agent_name) : nullptr;
        if (ctx->pipeline)
            for (const auto& spec : ctx->pipeline->config().agents)
                if (spec.name == ctx->agent_name) r->key_plugin = spec.key_function.plugin;
        if (!r->key_function) {
            delete r;
            return MPH_FATAL;
        }
    }
    *instance = r;
    return MPH_OK;
}

void destroy(void* instance) { delete static_cast<Repartitioner*>(instance); }

mph_status on_event(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    const mph_host_api* api = host_api();
    auto* r = static_cast<Repartitioner*>(instance);
    std::string key;
    const void* key_data = ev->key;
    size_t key_len = ev->key_len;
    auto fail = [&](const std::string& why) {
        api->set_error(ctx, why.data(), why.size());
        return MPH_RETRY;  // the pipeline gives this agent no retries: its error policy applies at once
    };
    if (r->key_function) {
        char errbuf[256] = {};
        auto append = [](void* sink, const void* data, size_t len) {
            if (data && len) static_cast<std::string*>(sink)->append(static_cast<const char*>(data), len);
        };
        PluginCallRecord record = current_plugin_call();  // this agent's on_event, now in the plugin's function
        record.plugin = r->key_plugin.c_str();
        record.sha1 = nullptr;
        record.callback = "the group_by key function";
        PluginCall call(record);
        if (r->key_function->key(ev, append, &key, errbuf, sizeof errbuf) != MPH_OK) {
            errbuf[sizeof errbuf - 1] = '\0';
            return fail("group_by function: " + std::string(errbuf[0] ? errbuf : "the key function refused the event"));
        }
        key_data = key.data();
        key_len = key.size();
    } else if (r->by_field) {
        if (!ev->value) return fail("group_by " + r->field + ": the event has no value");
        auto field = json_field_key({static_cast<const char*>(ev->value), ev->value_len}, r->field);
        if (!field) return fail("group_by " + r->field + ": " + field.error());
        key = std::move(*field);
        key_data = key.data();
        key_len = key.size();
    }
    mph_message m{};
    m.struct_size = sizeof m;
    m.key = key_data;
    m.key_len = key_len;
    m.value = ev->value;
    m.value_len = ev->value_len;
    m.headers = ev->headers;
    m.header_count = ev->header_count;
    m.partition = MPH_PARTITION_ANY;
    m.timestamp_ms = ev->timestamp_ms > 0 ? ev->timestamp_ms : 0;
    mph_status st = api->send(ctx, r->topic.data(), r->topic.size(), &m);
    return st == MPH_OK ? MPH_OK : MPH_RETRY;
}

AgentInfo make_info() {
    AgentInfo info;
    info.name = "repartition";
    info.description = "re-keys events into a repartition topic (group_by / through)";
    info.callbacks.struct_size = sizeof(mph_agent_descriptor);
    info.callbacks.create = create;
    info.callbacks.destroy = destroy;
    info.callbacks.on_event = on_event;
    return info;
}

const AgentInfo kRepartition = make_info();

}  // namespace

const AgentInfo& repartition_agent() { return kRepartition; }

}  // namespace mephisto
