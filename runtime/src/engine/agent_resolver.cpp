#include "engine/agent_resolver.hpp"

#include <algorithm>

namespace mephisto {

Result<ResolvedAgent> resolve_agent(const PluginMap& plugins, const std::string& plugin_name,
                                    const std::string& agent_name, const Mark& plugin_mark, const Mark& agent_mark,
                                    const std::map<std::string, std::string>& yaml_params, const std::string& what) {
    auto it = plugins.find(plugin_name);
    if (it == plugins.end()) return make_error(plugin_mark.str() + ": plugin '" + plugin_name + "' is not loaded");
    const AgentInfo* info = it->second->find_agent(agent_name);
    if (!info) {
        std::string known;
        for (const auto& a : it->second->agents()) known += (known.empty() ? "" : ", ") + a.name;
        return make_error(agent_mark.str() + ": " + what + ": plugin '" + plugin_name + "' has no agent '" +
                          agent_name + "' (it has: " + (known.empty() ? "none" : known) + ")");
    }
    for (const auto& [name, value] : yaml_params) {
        (void)value;
        bool known = info->params.empty() ||
                     std::any_of(info->params.begin(), info->params.end(), [&](auto& p) { return p.name == name; });
        if (!known) return make_error(agent_mark.str() + ": " + what + ": agent '" + agent_name + "' of plugin '" +
                                      plugin_name + "' has no param '" + name + "'");
    }
    for (const auto& param : info->params)
        if (param.required && !yaml_params.count(param.name))
            return make_error(agent_mark.str() + ": " + what + ": param '" + param.name + "' is required by agent '" +
                              agent_name + "'");
    return std::make_pair(it->second, info);
}

Result<const mph_predicate_descriptor*> resolve_filter(const AgentSpec& spec, const PluginMap& plugins) {
    const auto& ref = spec.filter;
    if (ref.empty()) return static_cast<const mph_predicate_descriptor*>(nullptr);
    auto it = plugins.find(ref.plugin);
    if (it == plugins.end()) return make_error(ref.mark.str() + ": plugin '" + ref.plugin + "' is not loaded");
    const PredicateInfo* p = it->second->find_predicate(ref.name);
    if (!p) {
        std::string known;
        for (const auto& k : it->second->predicates()) known += (known.empty() ? "" : ", ") + k.name;
        return make_error(ref.mark.str() + ": agents." + spec.name + ".filter: plugin " + ref.plugin +
                          " has no predicate '" + ref.name + "' (it provides: " + (known.empty() ? "none" : known) + ")");
    }
    return &p->callbacks;
}

std::map<std::string, std::string> effective_params(const AgentInfo* info, const std::map<std::string, std::string>& yaml) {
    std::map<std::string, std::string> out;
    for (const auto& p : info->params)
        if (p.default_value) out[p.name] = *p.default_value;
    for (const auto& [k, v] : yaml) out[k] = v;
    return out;
}

Result<ResolvedAgent> resolve_stream_agent(const AgentSpec& spec, const PluginMap& plugins) {
    const std::string what = "agents." + spec.name;
    auto r = resolve_agent(plugins, spec.plugin, spec.agent, spec.plugin_mark, spec.agent_mark, spec.params, what);
    if (!r) return r;
    if (!r->second->callbacks.on_event && !r->second->callbacks.on_batch)
        return make_error(spec.agent_mark.str() + ": " + what + ": agent '" + spec.agent + "' of plugin '" + spec.plugin +
                          "' has neither on_event nor on_batch, so it cannot read a topic");
    return r;
}

Result<ResolvedAgent> resolve_timer_agent(const TimerSpec& spec, const PluginMap& plugins) {
    const std::string what = "timers." + spec.name;
    auto r = resolve_agent(plugins, spec.plugin, spec.agent, spec.plugin_mark, spec.agent_mark, spec.params, what);
    if (!r) return r;
    if (!r->second->callbacks.on_timer)
        return make_error(spec.agent_mark.str() + ": " + what + ": agent '" + spec.agent + "' of plugin '" + spec.plugin +
                          "' has no on_timer callback");
    return r;
}

}  // namespace mephisto
