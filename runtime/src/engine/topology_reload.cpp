// Topology reload inside a running pipeline (DESIGN.md §5): an edited file's agents, timers and declared
// topics are applied in place, without a rebalance. The agents the edit does not name never stop.
#include <set>

#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/pipeline.hpp"
#include "tables/codec.hpp"

namespace mephisto {

namespace {

template <typename T>
const T* by_name(const std::vector<T>& items, const std::string& name) {
    for (const auto& item : items)
        if (item.name == name) return &item;
    return nullptr;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Result<SwapReport> Pipeline::apply_topology(const PipelineConfig& edited, const TopologyDiff& diff,
                                            const std::map<std::string, std::shared_ptr<Plugin>>& plugins) {
    if (!diff.in_place()) return make_error("this edit needs the pipeline restarted: " + diff.summary());
    std::lock_guard swap_lock(swap_mutex_);
    if (stopping_) return make_error("pipeline " + config_.app_id + " is stopping");

    // 1. Resolve and check everything the edit brings; nothing changes until all of it holds.
    struct Starting {
        const AgentSpec* spec;
        std::shared_ptr<Plugin> plugin;
        const AgentInfo* info;
        const mph_predicate_descriptor* filter;
        std::shared_ptr<Plugin> filter_plugin;
    };
    std::vector<Starting> starting;       // new agents
    std::vector<Starting> restarting;     // changed agents
    std::vector<AgentRuntime*> stopping;  // removed agents
    std::map<std::string, AgentRuntime*> running;
    {
        std::lock_guard lock(agents_mutex_);
        for (auto& a : agents_) running[a->spec->name] = a.get();
    }
    auto resolve = [&](const AgentSpec& spec) -> Result<Starting> {
        auto r = resolve_stream_agent(spec, plugins);
        if (!r) return make_error(r.error());
        if (auto st = check_agent_features(spec, r->second); !st) return make_error(st.error());
        auto filter = resolve_filter(spec, plugins);
        if (!filter) return make_error(filter.error());
        return Starting{&spec, r->first, r->second, *filter, *filter ? plugins.at(spec.filter.plugin) : nullptr};
    };
    for (const auto& name : diff.agents_added) {
        auto s = resolve(*by_name(edited.agents, name));
        if (!s) return make_error(s.error());
        starting.push_back(*s);
    }
    for (const auto& name : diff.agents_changed) {
        const AgentSpec& spec = *by_name(edited.agents, name);
        auto s = resolve(spec);
        if (!s) return make_error(s.error());
        restarting.push_back(*s);  // same topics and tables (diff_topology): the same lanes
    }
    for (const auto& name : diff.agents_removed) stopping.push_back(running.at(name));
    // Who takes each windowed table's closed windows once the edit is applied (at most one agent).
    std::shared_ptr<const WindowClosers> closers_after;
    {
        std::vector<std::pair<const AgentSpec*, const AgentInfo*>> after;
        for (const auto& [name, agent] : running) {
            if (std::find(stopping.begin(), stopping.end(), agent) != stopping.end()) continue;
            const Starting* changed = nullptr;
            for (const auto& s : restarting)
                if (s.spec->name == name) changed = &s;
            after.emplace_back(changed ? changed->spec : agent->spec, changed ? changed->info : agent->info);
        }
        for (const auto& s : starting) after.emplace_back(s.spec, s.info);
        auto closers = window_closers(after);
        if (!closers) return make_error(closers.error());
        closers_after = *closers;
    }

    struct TimerStart {
        const TimerSpec* spec;
        std::shared_ptr<Plugin> plugin;
        const AgentInfo* info;
    };
    std::vector<TimerStart> timers_starting;
    for (const auto& t : edited.timers) {
        if (!contains(diff.timers_added, t.name) && !contains(diff.timers_changed, t.name)) continue;
        auto r = resolve_timer_agent(t, plugins);
        if (!r) return make_error(r.error());
        timers_starting.push_back({&t, r->first, r->second});
    }
    std::map<std::string, const mph_codec_descriptor*> new_codecs;
    for (const auto& name : diff.topics_added) {
        auto codec = resolve_topic_codec(*by_name(edited.topics, name), plugins);
        if (!codec) return make_error(codec.error());
        if (*codec) new_codecs[name] = *codec;
    }
    // Images whose codecs and aggregators this edit names. Those already held stay held: partitions, topics and
    // table stores keep pointers into them for as long as the pipeline runs.
    std::vector<std::shared_ptr<Plugin>> new_item_plugins;
    for (const auto& [name, mark] : item_plugins(edited)) {
        auto it = plugins.find(name);
        if (it == plugins.end()) return make_error(mark.str() + ": plugin '" + name + "' is not loaded");
        new_item_plugins.push_back(it->second);
    }
    std::vector<const Starting*> dead_lettering;
    for (const auto& s : starting) dead_lettering.push_back(&s);
    for (const auto& s : restarting) dead_lettering.push_back(&s);
    for (const Starting* ps : dead_lettering) {  // their dead-letter topics (the last check: it creates)
        const Starting& s = *ps;
        if (s.spec->on_error.then != ThenPolicy::dead_letter) continue;
        int partitions = 1;
        for (const auto& t : s.spec->from)
            if (auto* spec = edited.topic(t)) partitions = std::max(partitions, spec->partitions);
        if (auto st = topic_admin_->ensure(s.spec->on_error.dead_letter_topic, partitions); !st)
            return make_error("agents." + s.spec->name + ": " + st.error());
    }

    // 2. Stop the lanes of the agents that stop or restart; each finishes the callback in progress. One that
    //    does not return within the budget refuses the reload, and every lane stopped so far resumes.
    const auto started = std::chrono::steady_clock::now();
    std::map<AgentRuntime*, std::vector<Lane*>> lanes_of;
    for (AgentRuntime* a : stopping) lanes_of[a];
    for (const auto& s : restarting) lanes_of[running.at(s.spec->name)];
    {
        auto partitions = partitions_.lock();
        for (auto& [key, ps] : *partitions)
            for (auto& lane : ps->lanes)
                if (auto it = lanes_of.find(lane->agent); it != lanes_of.end()) it->second.push_back(lane.get());
    }
    std::vector<Lane*> stopped;
    const auto deadline = started + std::chrono::milliseconds(10'000);
    for (auto& [agent, lanes] : lanes_of)
        for (Lane* lane : lanes) {
            stopped.push_back(lane);
            if (lane->stop(deadline)) continue;
            for (Lane* l : stopped) l->resume();
            return make_error("agents." + agent->spec->name + ": the callback on " + lane->partition->topic + "[" +
                              std::to_string(lane->partition->partition) +
                              "] did not return within 10000 ms; the reload is refused and nothing changed");
        }

    SwapReport report;
    // 3. Changed agents that keep their topics restart on their new YAML (and image), like a plugin swap.
    for (const auto& s : restarting) {
        AgentRuntime* agent = running.at(s.spec->name);
        agent->filter = s.filter;  // its lanes are stopped
        agent->filter_plugin = s.filter_plugin;
        report.instances += restart_instances(*agent, lanes_of.at(agent), s.plugin, s.info, s.spec);
        report.agents.emplace_back(agent->spec->name, std::chrono::duration_cast<std::chrono::microseconds>(
                                                           std::chrono::steady_clock::now() - started));
    }

    // 4. Stopping agents say goodbye; starting ones get their runtime. Their lanes are exchanged per
    //    partition in one step, so a partition never has no lane to hand an event to.
    for (AgentRuntime* agent : stopping)
        for (Lane* lane : lanes_of.at(agent)) {
            if (lane->created) ++report.instances;
            runner_->revoke_instance(*lane);
        }
    std::vector<AgentRuntime*> added;
    {
        std::lock_guard lock(agents_mutex_);
        for (AgentRuntime* agent : stopping) {
            auto it = std::find_if(agents_.begin(), agents_.end(), [&](auto& a) { return a.get() == agent; });
            retired_agents_.push_back(std::move(*it));
            agents_.erase(it);
        }
        for (const auto& s : starting) {
            auto a = std::make_unique<AgentRuntime>(*s.spec);
            a->plugin = s.plugin;
            a->info = s.info;
            a->params = effective_params(s.info, s.spec->params);
            a->filter = s.filter;
            a->filter_plugin = s.filter_plugin;
            a->log = logger(s.spec->name);
            added.push_back(a.get());
            agents_.push_back(std::move(a));
        }
    }
    std::vector<std::unique_ptr<Lane>> removed_lanes;
    {
        auto partitions = partitions_.lock();
        for (auto& [key, ps] : *partitions) {
            std::vector<std::unique_ptr<Lane>> fresh;
            for (AgentRuntime* agent : added)
                if (contains(agent->spec->from, ps->topic))
                    for (auto& lane : make_lanes(*agent, *ps)) fresh.push_back(std::move(lane));
            std::lock_guard lanes_lock(ps->lanes_mu);
            for (auto it = ps->lanes.begin(); it != ps->lanes.end();) {
                if (std::find(stopping.begin(), stopping.end(), (*it)->agent) != stopping.end()) {
                    removed_lanes.push_back(std::move(*it));
                    it = ps->lanes.erase(it);
                } else {
                    ++it;
                }
            }
            for (auto& lane : fresh) ps->lanes.push_back(std::move(lane));
        }
    }
    // The events a stopped agent had not taken are done as far as it is concerned: its share of them is
    // finished, so their offsets commit once the remaining agents finish theirs.
    for (auto& lane : removed_lanes) {
        runner_->release_lane(*lane, 1);
        lane->ctx.tables.clear();
        retired_lanes_.push_back(std::move(lane));
    }
    for (AgentRuntime* agent : stopping) {
        agent->plugin.reset();  // its image unloads once nothing else runs it
        agent->info = nullptr;
    }
    for (AgentRuntime* agent : added) report.agents.emplace_back(agent->spec->name, std::chrono::microseconds(0));

    std::atomic_store(&window_closers_, closers_after);

    // 5. Timers.
    if (!diff.timers_added.empty() || !diff.timers_removed.empty() || !diff.timers_changed.empty()) {
        auto lock = timers_->lock();  // no timer fires while the set changes
        auto& timers = timers_->timers();
        for (auto it = timers.begin(); it != timers.end();) {
            TimerRuntime& t = **it;
            const bool removed = contains(diff.timers_removed, t.spec->name);
            const bool changed = contains(diff.timers_changed, t.spec->name);
            if (!removed && !changed) {
                ++it;
                continue;
            }
            if (timers_->destroy_instance(t)) ++report.instances;
            if (removed) {
                t.plugin.reset();
                t.info = nullptr;
                timers_->retire(std::move(*it));
                it = timers.erase(it);
            } else {
                ++it;
            }
        }
        const auto now = std::chrono::steady_clock::now();
        for (const auto& s : timers_starting) {
            TimerRuntime* t = nullptr;
            for (auto& existing : timers)
                if (existing->spec->name == s.spec->name) t = existing.get();
            if (!t) {
                timers.push_back(std::make_unique<TimerRuntime>(*s.spec));
                t = timers.back().get();
                t->ctx.pipeline = this;
                t->ctx.agent_name = s.spec->name;
                t->ctx.log = logger(s.spec->name);
            } else {
                t->set_spec(*s.spec);
            }
            t->quarantined = false;
            t->restarts.reset(t->spec->supervisor);
            t->plugin = s.plugin;
            t->info = s.info;
            t->ctx.params = effective_params(s.info, t->spec->params);
            t->ctx.sinks = &t->spec->sinks;
            t->schedule_next(now);
            report.agents.emplace_back(t->spec->name, std::chrono::microseconds(0));
        }
        timers_->changed();
    }

    // 6. The running file is now the edited one (settings outside agents, timers and topics are equal).
    config_.agents = edited.agents;
    config_.timers = edited.timers;
    config_.topics = edited.topics;
    for (const auto& name : diff.topics_removed) topic_codecs_.erase(name);
    for (const auto& [name, codec] : new_codecs) topic_codecs_[name] = codec;
    for (auto& plugin : new_item_plugins)
        if (std::find(item_plugins_.begin(), item_plugins_.end(), plugin) == item_plugins_.end())
            item_plugins_.push_back(std::move(plugin));
    return report;
}

}  // namespace mephisto
