#pragma once
// A loaded and checked plugin image, and the loader that says no, and says why (STYLE.md, "Redis modules",
// "librdkafka"). The host reads the plugin's descriptors only up to the size the plugin declared and keeps
// zero-filled copies, so a plugin built against an older minor never has members read past its struct.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "mephisto/mephisto.h"

namespace mephisto {

struct ParamInfo {
    std::string name, description;
    std::optional<std::string> default_value;
    bool required = false;
};

// The host's copy of one agent descriptor: callbacks plus owned strings.
struct AgentInfo {
    std::string name, description;
    std::vector<ParamInfo> params;
    mph_agent_descriptor callbacks{};  // zero-filled past the plugin's struct_size; name/params not used
};

// The host's copies of a codec and an aggregator descriptor (since ABI 1.2).
struct CodecInfo {
    std::string name, description;
    mph_codec_descriptor callbacks{};  // zero-filled past the plugin's struct_size; name/description not used
};
struct AggregatorInfo {
    std::string name, description;
    mph_aggregator_descriptor callbacks{};
};
struct KeyFunctionInfo {
    std::string name, description;
    mph_key_fn_descriptor callbacks{};
};
struct PredicateInfo {  // since ABI 1.3
    std::string name, description;
    mph_predicate_descriptor callbacks{};
};

class Plugin {
public:
    ~Plugin();
    Plugin(const Plugin&) = delete;
    Plugin& operator=(const Plugin&) = delete;

    const std::string& name() const { return name_; }
    const std::string& version() const { return version_; }
    const std::string& description() const { return description_; }
    const std::filesystem::path& path() const { return path_; }  // the file the user gave
    const std::string& sha1() const { return sha1_; }  // of the loaded file, hex
    std::chrono::system_clock::time_point loaded_at() const { return loaded_at_; }
    uint32_t abi_major() const { return abi_major_; }
    uint32_t abi_minor() const { return abi_minor_; }
    const std::vector<AgentInfo>& agents() const { return agents_; }
    const AgentInfo* find_agent(std::string_view name) const;
    const std::vector<CodecInfo>& codecs() const { return codecs_; }
    const CodecInfo* find_codec(std::string_view name) const;
    const std::vector<AggregatorInfo>& aggregators() const { return aggregators_; }
    const AggregatorInfo* find_aggregator(std::string_view name) const;
    const std::vector<KeyFunctionInfo>& key_functions() const { return key_functions_; }
    const KeyFunctionInfo* find_key_function(std::string_view name) const;
    const std::vector<PredicateInfo>& predicates() const { return predicates_; }
    const PredicateInfo* find_predicate(std::string_view name) const;

    // Calls fini, closes the image and checks that the dynamic loader really unmapped it (a C++ plugin
    // built without -fno-gnu-unique stays mapped forever). Idempotent; the destructor calls it.
    Status unload();

private:
    friend Result<std::shared_ptr<Plugin>> load_plugin_here(const std::filesystem::path&, const mph_host_api*,
                                                            std::atomic<const char*>*);
    Plugin() = default;

    std::filesystem::path path_;
    std::string image_name_;  // the private copy's path, as the dynamic loader knows it
    void* handle_ = nullptr;
    void (*fini_)(void) = nullptr;
    std::string name_, version_, description_;
    uint32_t abi_major_ = 0, abi_minor_ = 0;
    std::string sha1_;
    std::chrono::system_clock::time_point loaded_at_;
    std::vector<AgentInfo> agents_;
    std::vector<CodecInfo> codecs_;
    std::vector<AggregatorInfo> aggregators_;
    std::vector<KeyFunctionInfo> key_functions_;
    std::vector<PredicateInfo> predicates_;
};

// The SHA-1 of a file, in hex (the identity of a plugin build: GET /plugins, and what a reload compares).
std::string file_sha1(const std::filesystem::path& file);

// How long loading a plugin may take (its constructors, entry function and init) unless the pipeline file
// says otherwise (`plugins: {load_timeout: 30s}`).
inline constexpr std::chrono::milliseconds kDefaultPluginLoadTimeout{10'000};

// Loads a private copy of `path` (dlopen caches images by path, so a rebuilt file under the same name would
// otherwise return the old image), checks the ABI and descriptors and calls init. On refusal the error reads
// "<path>: <reason>" and nothing stays loaded. The load runs on a thread of its own: one that does not return
// within `timeout` is refused, naming the step that hung, and left behind (a thread cannot be stopped inside
// a plugin); if it ever returns, what it loaded is unloaded. THREAD: any; `api` must outlive the plugin.
Result<std::shared_ptr<Plugin>> load_plugin(const std::filesystem::path& path, const mph_host_api* api,
                                            std::chrono::milliseconds timeout = kDefaultPluginLoadTimeout);
// The same on the calling thread, without a timeout; `step`, when given, is kept up to date with what runs.
Result<std::shared_ptr<Plugin>> load_plugin_here(const std::filesystem::path& path, const mph_host_api* api,
                                                 std::atomic<const char*>* step = nullptr);
// True once a plugin's constructors hung inside dlopen: the dynamic loader's lock is held for good, so no
// image can be loaded or unloaded in this process any more (a restart is the remedy). THREAD: any.
bool dynamic_loader_wedged();

// The smallest struct_size the host accepts for each 1.0 struct (all members that 1.0 defines).
inline constexpr size_t kPluginDescriptorMinSize = offsetof(mph_plugin_descriptor, fini) + sizeof(void (*)(void));
inline constexpr size_t kAgentDescriptorMinSize =
    offsetof(mph_agent_descriptor, on_revoked) + sizeof(mph_agent_descriptor::on_revoked);
inline constexpr size_t kParamSpecMinSize = offsetof(mph_param_spec, required) + sizeof(bool);
// ... and for the 1.2 structs.
inline constexpr size_t kCodecDescriptorMinSize =
    offsetof(mph_codec_descriptor, to_json) + sizeof(mph_codec_descriptor::to_json);
inline constexpr size_t kAggregatorDescriptorMinSize =
    offsetof(mph_aggregator_descriptor, merge) + sizeof(mph_aggregator_descriptor::merge);
inline constexpr size_t kKeyFunctionDescriptorMinSize =
    offsetof(mph_key_fn_descriptor, key) + sizeof(mph_key_fn_descriptor::key);
inline constexpr size_t kPredicateDescriptorMinSize =
    offsetof(mph_predicate_descriptor, keep) + sizeof(mph_predicate_descriptor::keep);

}  // namespace mephisto
