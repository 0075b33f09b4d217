// `mephisto plugin inspect FILE.so`: what a plugin offers, read through the same loader the host uses, so a
// plugin the host would refuse is refused here with the same reason.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "engine/agent_context.hpp"
#include "plugin/plugin.hpp"

namespace mephisto::cli {

int inspect_plugin(const std::filesystem::path& file, bool json) {
    auto plugin = load_plugin(file, host_api());
    if (!plugin) {
        std::cerr << plugin.error() << "\n";
        return 1;
    }
    const Plugin& p = **plugin;
    auto callbacks = [](const mph_agent_descriptor& d) {
        std::vector<std::string> out;
        if (d.on_event) out.push_back("on_event");
        if (d.on_batch) out.push_back("on_batch");
        if (d.on_timer) out.push_back("on_timer");
        if (d.on_assigned) out.push_back("on_assigned");
        if (d.on_revoked) out.push_back("on_revoked");
        if (d.on_window_close) out.push_back("on_window_close");
        if (d.on_reply) out.push_back("on_reply");
        return out;
    };
    if (json) {
        nlohmann::json j = {{"file", file.string()},
                            {"name", p.name()},
                            {"version", p.version()},
                            {"description", p.description()},
                            {"abi", std::to_string(p.abi_major()) + "." + std::to_string(p.abi_minor())},
                            {"agents", nlohmann::json::array()}};
        for (const auto& a : p.agents()) {
            nlohmann::json params = nlohmann::json::array();
            for (const auto& prm : a.params)
                params.push_back({{"name", prm.name},
                                  {"description", prm.description},
                                  {"default", prm.default_value ? nlohmann::json(*prm.default_value) : nlohmann::json()},
                                  {"required", prm.required}});
            j["agents"].push_back(
                {{"name", a.name}, {"description", a.description}, {"callbacks", callbacks(a.callbacks)}, {"params", params}});
        }
        j["codecs"] = nlohmann::json::array();
        for (const auto& c : p.codecs())
            j["codecs"].push_back({{"name", c.name}, {"description", c.description}});
        j["aggregators"] = nlohmann::json::array();
        for (const auto& a : p.aggregators())
            j["aggregators"].push_back({{"name", a.name}, {"description", a.description}});
        j["key_functions"] = nlohmann::json::array();
        for (const auto& k : p.key_functions())
            j["key_functions"].push_back({{"name", k.name}, {"description", k.description}});
        j["predicates"] = nlohmann::json::array();
        for (const auto& k : p.predicates())
            j["predicates"].push_back({{"name", k.name}, {"description", k.description}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << "plugin  " << p.name() << " " << p.version() << "\n"
              << "file    " << file.string() << "\n"
              << "abi     " << p.abi_major() << "." << p.abi_minor() << " (host " << MPH_ABI_VERSION_MAJOR << "."
              << MPH_ABI_VERSION_MINOR << ")\n";
    if (!p.description().empty()) std::cout << "about   " << p.description() << "\n";
    std::cout << "agents  " << p.agents().size() << "\n";
    for (const auto& a : p.agents()) {
        std::cout << "\n  " << a.name;
        if (!a.description.empty()) std::cout << " — " << a.description;
        std::cout << "\n    callbacks:";
        for (const auto& c : callbacks(a.callbacks)) std::cout << " " << c;
        std::cout << "\n";
        for (const auto& prm : a.params) {
            std::cout << "    param " << prm.name;
            if (prm.required) std::cout << " (required)";
            if (prm.default_value) std::cout << " [default: " << *prm.default_value << "]";
            if (!prm.description.empty()) std::cout << ": " << prm.description;
            std::cout << "\n";
        }
    }
    // Codecs and aggregators (ABI 1.2): what a table or topic can name in YAML.
    auto list = [](const char* title, const auto& items, const char* yaml_key) {
        if (items.empty()) return;
        std::cout << "\n" << title << " " << items.size() << "\n";
        for (const auto& item : items) {
            std::cout << "  " << item.name;
            if (!item.description.empty()) std::cout << " — " << item.description;
            std::cout << "  (" << yaml_key << item.name << "})\n";
        }
    };
    const std::string codec_ref = "value: {plugin: " + p.name() + ", codec: ";
    const std::string aggregate_ref = "aggregate: {plugin: " + p.name() + ", name: ";
    list("codecs ", p.codecs(), codec_ref.c_str());
    list("aggregators", p.aggregators(), aggregate_ref.c_str());
    const std::string group_by_ref = "group_by: {plugin: " + p.name() + ", function: ";
    list("key functions", p.key_functions(), group_by_ref.c_str());
    const std::string filter_ref = "filter: {plugin: " + p.name() + ", predicate: ";
    list("predicates ", p.predicates(), filter_ref.c_str());
    return 0;
}

}  // namespace mephisto::cli
