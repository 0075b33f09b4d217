#include "config/topology_diff.hpp"

#include <algorithm>
#include <set>

namespace mephisto {

namespace {

bool same_ref(const PluginItemRef& a, const PluginItemRef& b) { return a.plugin == b.plugin && a.name == b.name; }

bool same_topic(const TopicSpec& a, const TopicSpec& b) {
    return a.partitions == b.partitions && a.key == b.key && a.value == b.value && same_ref(a.value_codec, b.value_codec);
}

bool same_window(const std::optional<WindowSpec>& a, const std::optional<WindowSpec>& b) {
    if (!a || !b) return !a && !b;
    return a->kind == b->kind && a->size == b->size && a->step == b->step && a->before == b->before &&
           a->after == b->after && a->gap == b->gap && a->grace == b->grace && a->expires == b->expires &&
           a->relative_to == b->relative_to && a->time_field == b->time_field;
}

bool same_table(const TableSpec& a, const TableSpec& b) {
    return same_window(a.window, b.window) && a.store == b.store && a.value == b.value && same_ref(a.value_codec, b.value_codec) &&
           same_ref(a.aggregate, b.aggregate) && a.default_value == b.default_value && a.partitions == b.partitions &&
           a.rocksdb_options == b.rocksdb_options && a.global == b.global && a.changelog_topic == b.changelog_topic &&
           a.standby_replicas == b.standby_replicas;
}

bool same_take(const std::optional<TakeSpec>& a, const std::optional<TakeSpec>& b) {
    if (!a || !b) return !a && !b;
    return a->max == b->max && a->within == b->within;
}

bool same_supervisor(const SupervisorSpec& a, const SupervisorSpec& b) {
    return a.strategy == b.strategy && a.max_restarts == b.max_restarts && a.within == b.within &&
           a.backoff_initial == b.backoff_initial && a.backoff_max == b.backoff_max;
}

template <typename T>
const T* by_name(const std::vector<T>& items, const std::string& name) {
    for (const auto& item : items)
        if (item.name == name) return &item;
    return nullptr;
}

// Lists whose order means nothing (topics read, sinks, tables).
std::set<std::string> as_set(const std::vector<std::string>& names) { return {names.begin(), names.end()}; }

std::string joined(const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

}  // namespace

bool same_agent(const AgentSpec& a, const AgentSpec& b) {
    return a.name == b.name && a.plugin == b.plugin && a.agent == b.agent && as_set(a.from) == as_set(b.from) &&
           as_set(a.sinks) == as_set(b.sinks) && as_set(a.echo) == as_set(b.echo) && as_set(a.tables) == as_set(b.tables) &&
           a.params == b.params && a.on_error.retry == b.on_error.retry &&
           a.on_error.then == b.on_error.then && a.on_error.dead_letter_topic == b.on_error.dead_letter_topic &&
           a.on_error.retry_backoff == b.on_error.retry_backoff && same_supervisor(a.supervisor, b.supervisor) &&
           a.builtin == b.builtin && same_ref(a.key_function, b.key_function) && same_ref(a.filter, b.filter) &&
           same_take(a.take, b.take) &&
           a.concurrency == b.concurrency && a.manual_ack == b.manual_ack;
}

bool same_timer(const TimerSpec& a, const TimerSpec& b) {
    return a.name == b.name && a.plugin == b.plugin && a.agent == b.agent && a.every == b.every && a.cron == b.cron &&
           a.timezone == b.timezone && a.on_leader == b.on_leader &&
           a.params == b.params && as_set(a.sinks) == as_set(b.sinks) && same_supervisor(a.supervisor, b.supervisor);
}

bool TopologyDiff::empty() const {
    return agents_added.empty() && agents_removed.empty() && agents_changed.empty() && timers_added.empty() &&
           timers_removed.empty() && timers_changed.empty() && topics_added.empty() && topics_removed.empty() &&
           restart_reasons.empty();
}

std::string TopologyDiff::summary() const {
    std::string out;
    auto section = [&](const char* what, const std::vector<std::string>& added, const std::vector<std::string>& removed,
                       const std::vector<std::string>& changed) {
        if (added.empty() && removed.empty() && changed.empty()) return;
        out += (out.empty() ? "" : "; ") + std::string(what);
        for (const auto& n : added) out += " +" + n;
        for (const auto& n : removed) out += " -" + n;
        for (const auto& n : changed) out += " ~" + n;
    };
    section("agents", agents_added, agents_removed, agents_changed);
    section("timers", timers_added, timers_removed, timers_changed);
    section("topics", topics_added, topics_removed, {});
    for (const auto& r : restart_reasons) out += (out.empty() ? "" : "; ") + r;
    return out.empty() ? "no change" : out;
}

TopologyDiff diff_topology(const PipelineConfig& running, const PipelineConfig& edited) {
    TopologyDiff d;
    auto restart = [&](std::string why) { d.restart_reasons.push_back(std::move(why)); };

    // Settings the whole pipeline was built with.
    if (running.app_id != edited.app_id) restart("the app id changed (" + running.app_id + " -> " + edited.app_id + ")");
    if (running.app_version != edited.app_version) restart("the app version changed");
    const auto& rb = running.broker;
    const auto& eb = edited.broker;
    if (rb.embedded != eb.embedded || rb.embedded_port != eb.embedded_port || rb.embedded_brokers != eb.embedded_brokers ||
        rb.bootstrap != eb.bootstrap || rb.properties != eb.properties)
        restart("the broker settings changed");
    if (running.plugin_dir != edited.plugin_dir) restart("the plugin directory changed");
    if (running.state_dir != edited.state_dir) restart("the state directory changed");
    if (running.commit_interval != edited.commit_interval) restart("the commit interval changed");
    if (running.shutdown_timeout != edited.shutdown_timeout) restart("the shutdown timeout changed");
    if (running.workers != edited.workers) restart("the worker count changed");
    if (running.static_membership != edited.static_membership) restart("static_membership changed");
    if (running.warm_up != edited.warm_up) restart("warm_up changed");
    if (running.hung_callback_after != edited.hung_callback_after) restart("hung_callback_after changed");
    if (running.broker_unreachable_timeout != edited.broker_unreachable_timeout)
        restart("broker_unreachable_timeout changed");
    if (running.plugin_load_timeout != edited.plugin_load_timeout) restart("plugins.load_timeout changed");
    if (running.consumer_properties != edited.consumer_properties) restart("the consumer properties changed");
    if (running.producer_properties != edited.producer_properties) restart("the producer properties changed");
    if (running.has_leader_timers() != edited.has_leader_timers())
        restart("leader election starts or stops (on_leader timers): the consumer must rejoin the group");

    // Tables: their stores, changelogs and partitions are opened at start.
    std::set<std::string> tables_changed;
    for (const auto& t : running.tables)
        if (const TableSpec* e = by_name(edited.tables, t.name); !e || !same_table(t, *e)) tables_changed.insert(t.name);
    for (const auto& t : edited.tables)
        if (!by_name(running.tables, t.name)) tables_changed.insert(t.name);
    if (!tables_changed.empty()) restart("tables changed: " + joined(tables_changed));

    // What the consumer reads: a different set of topics means a new subscription and a group rebalance.
    const auto old_sources = running.source_topics();
    const auto new_sources = edited.source_topics();
    const std::set<std::string> old_set(old_sources.begin(), old_sources.end());
    const std::set<std::string> new_set(new_sources.begin(), new_sources.end());
    if (old_set != new_set) {
        std::set<std::string> gained, lost;
        std::set_difference(new_set.begin(), new_set.end(), old_set.begin(), old_set.end(), std::inserter(gained, gained.end()));
        std::set_difference(old_set.begin(), old_set.end(), new_set.begin(), new_set.end(), std::inserter(lost, lost.end()));
        restart("the topics the pipeline reads changed (" +
                (gained.empty() ? "" : "+" + joined(gained)) + (gained.empty() || lost.empty() ? "" : ", ") +
                (lost.empty() ? "" : "-" + joined(lost)) + "): its consumer must rejoin the group");
    }

    // Declarations of topics read decide how their events are checked: those change only with a restart.
    for (const auto& t : running.topics) {
        const TopicSpec* e = by_name(edited.topics, t.name);
        if (!e && old_set.count(t.name)) restart("topic " + t.name + "'s declaration was removed");
        else if (!e) d.topics_removed.push_back(t.name);
        else if (!same_topic(t, *e)) restart("topic " + t.name + "'s declaration changed");
    }
    for (const auto& t : edited.topics)
        if (!by_name(running.topics, t.name)) {
            if (old_set.count(t.name)) restart("topic " + t.name + " is now declared");
            else d.topics_added.push_back(t.name);
        }

    // Agents, by name.
    for (const auto& a : running.agents) {
        const AgentSpec* e = by_name(edited.agents, a.name);
        if (!e) {
            d.agents_removed.push_back(a.name);
        } else if (!same_agent(a, *e)) {
            d.agents_changed.push_back(a.name);
            // Its lanes (one per partition of each topic it reads) and their table bindings stay as they are.
            if (as_set(a.from) != as_set(e->from)) restart("agent " + a.name + " now reads other topics");
            if (as_set(a.tables) != as_set(e->tables)) restart("agent " + a.name + " now uses other tables");
            if (a.concurrency != e->concurrency) restart("agent " + a.name + "'s concurrency changed");
        }
    }
    for (const auto& a : edited.agents)
        if (!by_name(running.agents, a.name)) d.agents_added.push_back(a.name);

    // Channels and the agents reading them are built with the pipeline (their lanes are not partitions').
    std::set<std::pair<std::string, int64_t>> old_channels, new_channels;
    for (const auto& ch : running.channels) old_channels.emplace(ch.name, ch.maxsize);
    for (const auto& ch : edited.channels) new_channels.emplace(ch.name, ch.maxsize);
    if (old_channels != new_channels) restart("the channels changed");
    auto reads_channel = [](const std::vector<std::string>& names, const PipelineConfig& c) {
        for (const auto& n : names)
            if (const AgentSpec* a = by_name(c.agents, n))
                for (const auto& t : a->from)
                    if (c.channel(t)) return n;
        return std::string();
    };
    for (const auto& [names, config] : {std::pair{&d.agents_added, &edited}, std::pair{&d.agents_removed, &running},
                                        std::pair{&d.agents_changed, &running}})
        if (auto name = reads_channel(*names, *config); !name.empty())
            restart("agent " + name + ", which reads a channel, was added, removed or changed");

    // The repartition agents `group_by`/`through` add come with their own topics: restart for those.
    auto builtin = [&](const std::vector<std::string>& names, const PipelineConfig& c) {
        for (const auto& n : names)
            if (const AgentSpec* a = by_name(c.agents, n); a && !a->builtin.empty()) return true;
        return false;
    };
    if (builtin(d.agents_added, edited) || builtin(d.agents_removed, running) || builtin(d.agents_changed, running))
        restart("a group_by/through repartition changed");

    // A starting agent may use a table only on topics where a running agent already uses it: those table
    // partitions are assigned and recovered; others would need a recovery the running pipeline cannot pause for.
    std::set<std::pair<std::string, std::string>> bound;  // (topic, table) the running pipeline serves
    for (const auto& a : running.agents)
        for (const auto& topic : a.from)
            for (const auto& table : a.tables) bound.emplace(topic, table);
    auto check_tables = [&](const std::string& name) {
        const AgentSpec* a = by_name(edited.agents, name);
        for (const auto& topic : a->from)
            for (const auto& table : a->tables)
                if (!bound.count({topic, table}))
                    restart("agent " + name + " would use table " + table + " on topic " + topic +
                            ", which no running agent does (its partitions must be recovered first)");
    };
    for (const auto& n : d.agents_added) check_tables(n);
    for (const auto& n : d.agents_changed) check_tables(n);

    for (const auto& t : running.timers) {
        const TimerSpec* e = by_name(edited.timers, t.name);
        if (!e) d.timers_removed.push_back(t.name);
        else if (!same_timer(t, *e)) d.timers_changed.push_back(t.name);
    }
    for (const auto& t : edited.timers)
        if (!by_name(running.timers, t.name)) d.timers_added.push_back(t.name);
    return d;
}

}  // namespace mephisto
