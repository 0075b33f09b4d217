#pragma once
// One resolver of agents for the three places that need one: a pipeline's creation, a plugin swap and a
// topology reload. Each finds the agent a YAML entry names in the loaded plugins, checks the YAML's params
// against what the agent declares and that it has the callbacks its place needs, and says what is wrong with
// the YAML position, in the same words wherever it is asked.
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "common/result.hpp"
#include "config/config.hpp"
#include "plugin/plugin.hpp"

namespace mephisto {

using PluginMap = std::map<std::string, std::shared_ptr<Plugin>>;
using ResolvedAgent = std::pair<std::shared_ptr<Plugin>, const AgentInfo*>;

// The agent `agent_name` of plugin `plugin_name`, checked against the YAML params it is given; `what` names the
// entry ("agents.count").
Result<ResolvedAgent> resolve_agent(const PluginMap& plugins, const std::string& plugin_name,
                                    const std::string& agent_name, const Mark& plugin_mark, const Mark& agent_mark,
                                    const std::map<std::string, std::string>& yaml_params, const std::string& what);
// The agent of an `agents:` entry: it reads a topic or a channel, so it needs on_event or on_batch.
Result<ResolvedAgent> resolve_stream_agent(const AgentSpec& spec, const PluginMap& plugins);
// The agent of a `timers:` entry: it needs on_timer.
Result<ResolvedAgent> resolve_timer_agent(const TimerSpec& spec, const PluginMap& plugins);
// The predicate of an agent's `filter:` (null when it has none); errors name the YAML position.
Result<const mph_predicate_descriptor*> resolve_filter(const AgentSpec& spec, const PluginMap& plugins);
// The params an instance sees: the plugin's declared defaults, overridden by the YAML.
std::map<std::string, std::string> effective_params(const AgentInfo* info, const std::map<std::string, std::string>& yaml);

}  // namespace mephisto
