// The host function table (ABI 1.0). Each function validates its arguments and returns a status; nothing
// throws across the line (convention 9).
#include "common/logging.hpp"
#include "engine/agent_context.hpp"
#include "engine/pipeline.hpp"

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

void api_set_error(mph_agent_ctx* ctx, const char* msg, size_t len) {
    if (ctx) ctx->error.assign(msg ? msg : "", msg ? len : 0);
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
};

}  // namespace

const mph_host_api* host_api() { return &kHostApi; }

}  // namespace mephisto
