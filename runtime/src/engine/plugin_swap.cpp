// Hot reload of one plugin inside a running pipeline (DESIGN.md §5), agent by agent, without a rebalance.
#include "common/logging.hpp"
#include "engine/clocked_call.hpp"
#include "engine/pipeline.hpp"

namespace mephisto {

namespace {
constexpr std::chrono::milliseconds kSwapStopBudget{10'000};
}

size_t Pipeline::restart_instances(AgentRuntime& agent, const std::vector<Lane*>& lanes,
                                   const std::shared_ptr<Plugin>& plugin, const AgentInfo* info, const AgentSpec* spec) {
    size_t destroyed = 0;
    for (Lane* lane : lanes) {
        if (!lane->created) continue;
        runner_->revoke_instance(*lane);  // what it held unacknowledged goes to the new code's instance
        ++destroyed;
    }
    if (spec != agent.spec) agent.set_spec(*spec);
    agent.plugin = plugin;
    agent.info = info;
    agent.params = effective_params(info, agent.spec->params);
    agent.restarts.reset(agent.spec->supervisor);  // new code gets a fresh start: the history was the old one's
    agent.stats.quarantined = false;
    for (Lane* lane : lanes) {
        lane->ctx.params = agent.params;
        lane->ctx.sinks = &agent.spec->sinks;
        lane->tries.reset();
        {
            std::lock_guard lock(lane->mu);  // a batch being gathered starts over under the new YAML
            lane->batch_waiting = 0;
            lane->batch_since = {};
        }
        lane->resume();  // create and on_assigned run on the worker, by the new code
    }
    return destroyed;
}

bool Pipeline::uses_plugin(const std::string& name) const {
    std::lock_guard lock(agents_mutex_);
    for (const auto& a : agents_)
        if (a->spec->builtin.empty() && a->spec->plugin == name) return true;
    for (const auto& t : timers_->timers())
        if (t->spec->plugin == name) return true;
    return false;
}

Result<SwapReport> Pipeline::swap_plugin(const std::string& name, const std::shared_ptr<Plugin>& replacement) {
    std::lock_guard swap_lock(swap_mutex_);
    if (stopping_) return make_error("pipeline " + config_.app_id + " is stopping");

    // 1. Check everything first: a replacement that cannot serve every agent and timer changes nothing.
    const std::map<std::string, std::shared_ptr<Plugin>> offered = {{name, replacement}};
    std::vector<std::pair<AgentRuntime*, const AgentInfo*>> agents;
    std::vector<std::pair<TimerRuntime*, const AgentInfo*>> timers;
    std::shared_ptr<const WindowClosers> closers_after_swap;
    for (auto& a : agents_) {
        if (!a->spec->builtin.empty() || a->spec->plugin != name) continue;
        auto r = resolve_stream_agent(*a->spec, offered);
        if (!r) return make_error(r.error());
        agents.emplace_back(a.get(), r->second);
    }
    for (auto& t : timers_->timers()) {
        if (t->spec->plugin != name) continue;
        auto r = resolve_timer_agent(*t->spec, offered);
        if (!r) return make_error(r.error());
        timers.emplace_back(t.get(), r->second);
    }

    {
        std::vector<std::pair<const AgentSpec*, const AgentInfo*>> after;
        std::lock_guard lock(agents_mutex_);
        for (auto& a : agents_) {
            const AgentInfo* info = a->info;
            for (auto& [swapped, new_info] : agents)
                if (swapped == a.get()) info = new_info;
            if (info != a->info)
                if (auto st = check_agent_features(*a->spec, info); !st) return make_error(st.error());
            after.emplace_back(a->spec, info);
        }
        auto closers = window_closers(after);
        if (!closers) return make_error(closers.error());
        closers_after_swap = *closers;
    }

    SwapReport report;
    // 2. Agent by agent: stop its lanes (the callback in progress finishes), let the old code say goodbye,
    //    switch, resume. Events that arrive meanwhile wait in the lanes' queues; their offsets stay
    //    uncommitted until the new code has processed them.
    for (auto& [agent, info] : agents) {
        const auto started = std::chrono::steady_clock::now();
        std::vector<Lane*> lanes;
        {
            auto partitions = partitions_.lock();
            for (auto& [key, ps] : *partitions)
                for (auto& lane : ps->lanes)
                    if (lane->agent == agent) lanes.push_back(lane.get());
            for (auto& [name, ps] : channels_->all())
                for (auto& lane : ps->lanes)
                    if (lane->agent == agent) lanes.push_back(lane.get());
        }
        // A callback that never returns must not hold the reload (and the host's signals) forever: past the
        // budget the swap is refused and the lanes stopped so far resume on the old code.
        const auto deadline = started + kSwapStopBudget;
        for (size_t i = 0; i < lanes.size(); ++i) {
            if (lanes[i]->stop(deadline)) continue;
            for (size_t j = 0; j <= i; ++j) lanes[j]->resume();
            return make_error("agents." + agent->spec->name + ": the callback on " + lanes[i]->partition->topic + "[" +
                              std::to_string(lanes[i]->partition->partition) + "] did not return within " +
                              std::to_string(kSwapStopBudget.count()) + " ms; the swap is refused" +
                              (report.agents.empty() ? "" : " (agents swapped before it keep the new code)"));
        }
        report.instances += restart_instances(*agent, lanes, replacement, info, agent->spec);
        report.agents.emplace_back(agent->spec->name, std::chrono::duration_cast<std::chrono::microseconds>(
                                                           std::chrono::steady_clock::now() - started));
    }
    std::atomic_store(&window_closers_, closers_after_swap);
    if (!timers.empty()) {
        auto lock = timers_->lock();  // no timer fires while its image changes
        for (auto& [timer, info] : timers) {
            if (timers_->destroy_instance(*timer)) ++report.instances;
            timer->quarantined = false;
            timer->restarts.reset(timer->spec->supervisor);
            timer->plugin = replacement;
            timer->info = info;
            timer->ctx.params = effective_params(info, timer->spec->params);
            report.agents.emplace_back(timer->spec->name, std::chrono::microseconds(0));
        }
        timers_->changed();
    }
    return report;
}

}  // namespace mephisto
