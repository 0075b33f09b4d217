// The plugin loader: a private copy, RTLD_NOW|RTLD_LOCAL, one entry symbol, version negotiation, descriptor
// checks, init, and on unload a check that the image is really gone.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <optional>
#include <thread>
#include <fstream>
#include <mutex>
#include <set>

#include "common/call_slots.hpp"
#include "common/crash_report.hpp"
#include "common/duration.hpp"
#include "common/logging.hpp"
#include "common/trusted_path.hpp"
#include "plugin/plugin.hpp"

#include <boost/uuid/detail/sha1.hpp>

namespace mephisto {
namespace {

std::atomic<uint64_t> g_copy_counter{0};

std::string version_string(uint32_t major, uint32_t minor) {
    return std::to_string(major) + "." + std::to_string(minor);
}

// A new folder for one private copy of a plugin image, <TMPDIR>/mephisto-<uid>/<pid>-XXXXXX, closed to other
// users: a copy that someone else could replace between the copy and dlopen would run their code. mkdtemp makes
// it new and empty (nothing planted in it beforehand), in a parent that only this user can change.
Result<std::filesystem::path> copy_dir() {
    const char* tmp = std::getenv("TMPDIR");
    const std::filesystem::path user_dir =
        std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / ("mephisto-" + std::to_string(geteuid()));
    if (auto st = ensure_private_dir(user_dir); !st) return make_error(st.error());
    std::string pattern = (user_dir / (std::to_string(getpid()) + "-XXXXXX")).string();
    if (!mkdtemp(pattern.data())) return make_error("cannot create a folder in " + user_dir.string() + ": " + std::strerror(errno));
    return std::filesystem::path(pattern);
}

std::string cstr(const char* s) { return s ? s : ""; }


}  // namespace

// The SHA-1 of a file, in hex: identifies which build of a plugin is loaded (GET /plugins).
std::string file_sha1(const std::filesystem::path& file) {
    boost::uuids::detail::sha1 sha;
    std::ifstream in(file, std::ios::binary);
    if (!in) return {};  // unreadable: no identity (a reload then leaves it alone)
    char buffer[64 * 1024];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) sha.process_bytes(buffer, static_cast<size_t>(in.gcount()));
    boost::uuids::detail::sha1::digest_type digest;
    sha.get_digest(digest);
    char hex[41];
    for (int i = 0; i < 5; ++i) std::snprintf(hex + 8 * i, 9, "%08x", digest[i]);
    return std::string(hex, 40);
}

const AgentInfo* Plugin::find_agent(std::string_view name) const {
    for (const auto& a : agents_)
        if (a.name == name) return &a;
    return nullptr;
}

const CodecInfo* Plugin::find_codec(std::string_view name) const {
    for (const auto& c : codecs_)
        if (c.name == name) return &c;
    return nullptr;
}

const AggregatorInfo* Plugin::find_aggregator(std::string_view name) const {
    for (const auto& a : aggregators_)
        if (a.name == name) return &a;
    return nullptr;
}

const PredicateInfo* Plugin::find_predicate(std::string_view name) const {
    for (const auto& p : predicates_)
        if (p.name == name) return &p;
    return nullptr;
}

const KeyFunctionInfo* Plugin::find_key_function(std::string_view name) const {
    for (const auto& k : key_functions_)
        if (k.name == name) return &k;
    return nullptr;
}

Plugin::~Plugin() {
    auto st = unload();
    if (!st) logger("loader")->warn("{}", st.error());
    call_slots::names_freed();  // its name and SHA-1 may have been copied into the calls in progress
}

Status Plugin::unload() {
    if (!handle_) return {};
    // dlclose would wait forever for the lock a hung constructor holds: the image stays mapped instead.
    if (dynamic_loader_wedged()) return make_error(path_.string() + ": not unloaded: the dynamic loader is locked");
    {
        PluginCallRecord unloading;
        unloading.plugin = name_.c_str();
        unloading.sha1 = sha1_.c_str();
        unloading.callback = "fini and its destructors, while unloading";
        PluginCall in_plugin(unloading);
        if (fini_) fini_();
        fini_ = nullptr;
        dlclose(handle_);
    }
    handle_ = nullptr;
    // RTLD_NOLOAD finds the image by the name it was loaded under without loading anything.
    if (void* still = dlopen(image_name_.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
        dlclose(still);
        return make_error(path_.string() +
                          ": the image stayed mapped after dlclose; a C++ plugin must be built with "
                          "-fno-gnu-unique and hidden visibility (use mephisto_add_plugin)");
    }
    return {};
}

namespace {
std::atomic<bool> g_loader_wedged{false};
const char* const kInConstructors = "its constructors (in dlopen)";
}  // namespace

bool dynamic_loader_wedged() { return g_loader_wedged.load(); }

Result<std::shared_ptr<Plugin>> load_plugin(const std::filesystem::path& path, const mph_host_api* api,
                                            std::chrono::milliseconds timeout) {
    struct Job {
        std::mutex mu;
        std::condition_variable cv;
        std::optional<Result<std::shared_ptr<Plugin>>> result;
        std::atomic<const char*> step{"checking the file"};
    };
    auto job = std::make_shared<Job>();
    std::thread([job, path, api] {
        crash_report::prepare_thread();
        auto result = load_plugin_here(path, api, &job->step);
        std::lock_guard lock(job->mu);
        job->result.emplace(std::move(result));  // if nobody waits any more, the plugin unloads with the job
        job->cv.notify_all();
    }).detach();
    std::unique_lock lock(job->mu);
    if (job->cv.wait_for(lock, timeout, [&] { return job->result.has_value(); })) return std::move(*job->result);
    const char* step = job->step.load();
    std::string reason = path.string() + ": refused: " + step + " did not return within " +
                         format_duration(std::chrono::duration_cast<Millis>(timeout)) +
                         " (plugins.load_timeout); loading must not block";
    if (step == kInConstructors) {
        g_loader_wedged = true;
        reason += "; it holds the dynamic loader's lock, so no plugin can be loaded or unloaded until the host restarts";
    } else {
        reason += "; its thread is left behind, and what it loads, should it return, is unloaded";
    }
    logger("loader")->error("{}", reason);
    return make_error(reason);
}

Result<std::shared_ptr<Plugin>> load_plugin_here(const std::filesystem::path& path, const mph_host_api* api,
                                                 std::atomic<const char*>* step) {
    const std::string where = path.string() + ": ";
    auto at = [step](const char* now) {
        if (step) step->store(now);
    };

    // Nobody but root and this host's user may be able to change the file or the directories above it
    // (sshd's StrictModes): else they could have their code run as this host's user.
    if (auto trusted = check_trusted_file(path, "plugin"); !trusted) return make_error(trusted.error());
    {
        std::ifstream in(path, std::ios::binary);
        char magic[4] = {};
        if (!in.read(magic, 4) || std::memcmp(magic, "\x7f" "ELF", 4) != 0)
            return make_error(where + "not an ELF shared object");
    }

    // Each load copies into a folder of its own, so loads never wait for one another (a hung one included).
    auto dir = copy_dir();
    if (!dir) return make_error(where + dir.error());
    auto copy = *dir / (std::to_string(g_copy_counter.fetch_add(1)) + "-" + path.filename().string());
    std::error_code ec;
    std::filesystem::copy_file(path, copy, std::filesystem::copy_options::none, ec);
    if (ec) return make_error(where + "cannot make a private copy at " + copy.string() + ": " + ec.message());

    const std::string sha1 = file_sha1(copy);  // of the bytes loaded, not of a file that may change meanwhile
    // What runs from here on is the plugin's (its constructors, entry, init): a crash or an exit names it.
    PluginCallRecord loading;
    loading.plugin = path.c_str();
    loading.sha1 = sha1.c_str();
    loading.callback = "its constructors, while loading";
    std::optional<PluginCall> in_plugin(std::in_place, loading);
    at(kInConstructors);
    void* handle = dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
    at("checking it");
    // The mapping keeps the image alive; the name stays known to the dynamic loader for the unload check.
    std::filesystem::remove(copy, ec);
    std::filesystem::remove(*dir, ec);  // nothing is left behind in the temp folder
    if (!handle) {
        std::string err = cstr(dlerror());
        // dlerror names the private copy; the user knows the original file.
        if (auto pos = err.find(copy.string()); pos != std::string::npos) err.replace(pos, copy.string().size(), path.string());
        return make_error(where + "cannot load: " + err);
    }

    auto plugin = std::shared_ptr<Plugin>(new Plugin());
    plugin->path_ = path;
    plugin->image_name_ = copy.string();
    plugin->sha1_ = sha1;
    plugin->loaded_at_ = std::chrono::system_clock::now();
    plugin->handle_ = handle;
    // From here on a refusal unloads through the destructor; fini is set only after init succeeded.

    auto entry = reinterpret_cast<mph_entry_fn>(dlsym(handle, MPH_ENTRY_SYMBOL));
    if (!entry)
        return make_error(where + "no entry symbol '" MPH_ENTRY_SYMBOL
                                  "' (export it with MPH_EXPORT, or build with mephisto_add_plugin)");

    char errbuf[512] = {};
    loading.callback = "its entry function";
    in_plugin.emplace(loading);
    at("its entry function");
    const mph_plugin_descriptor* raw = entry(MPH_ABI_VERSION_MAJOR, MPH_ABI_VERSION_MINOR, api, errbuf, sizeof errbuf);
    errbuf[sizeof errbuf - 1] = '\0';
    if (!raw)
        return make_error(where + "the plugin refused to load: " + (errbuf[0] ? errbuf : "no reason given"));
    if (raw->struct_size < kPluginDescriptorMinSize)
        return make_error(where + "plugin descriptor too short: struct_size " + std::to_string(raw->struct_size) +
                          ", ABI 1.0 needs at least " + std::to_string(kPluginDescriptorMinSize) + " bytes");

    mph_plugin_descriptor d{};
    std::memcpy(&d, raw, std::min(raw->struct_size, sizeof d));
    const std::string host_version = version_string(MPH_ABI_VERSION_MAJOR, MPH_ABI_VERSION_MINOR);
    const std::string plugin_version = version_string(d.abi_major, d.abi_minor);
    if (d.abi_major != MPH_ABI_VERSION_MAJOR)
        return make_error(where + "built for ABI " + plugin_version + ", this host implements ABI " + host_version +
                          ": a different major version is incompatible; rebuild the plugin against this SDK");
    if (d.abi_minor > MPH_ABI_VERSION_MINOR)
        return make_error(where + "built for ABI " + plugin_version + ", newer than this host's ABI " + host_version +
                          ": upgrade the host or rebuild the plugin against ABI " + host_version);
    if (!d.name || !*d.name) return make_error(where + "plugin descriptor has no name");
    if (d.agent_count > 0 && !d.agents) return make_error(where + "plugin descriptor lists agents but gives no array");

    plugin->name_ = d.name;
    plugin->version_ = cstr(d.version);
    plugin->description_ = cstr(d.description);
    plugin->abi_major_ = d.abi_major;
    plugin->abi_minor_ = d.abi_minor;

    std::set<std::string> names;
    for (size_t i = 0; i < d.agent_count; ++i) {
        const mph_agent_descriptor* a = d.agents[i];
        const std::string which = "agent #" + std::to_string(i);
        if (!a) return make_error(where + which + " is NULL");
        if (a->struct_size < kAgentDescriptorMinSize)
            return make_error(where + which + " descriptor too short: struct_size " + std::to_string(a->struct_size) +
                              ", ABI 1.0 needs at least " + std::to_string(kAgentDescriptorMinSize) + " bytes");
        AgentInfo info;
        std::memcpy(&info.callbacks, a, std::min(a->struct_size, sizeof info.callbacks));
        if (!info.callbacks.name || !*info.callbacks.name) return make_error(where + which + " has no name");
        info.name = info.callbacks.name;
        info.description = cstr(info.callbacks.description);
        if (!names.insert(info.name).second) return make_error(where + "agent '" + info.name + "' is declared twice");
        if (!info.callbacks.on_event && !info.callbacks.on_batch && !info.callbacks.on_timer)
            return make_error(where + "agent '" + info.name + "' has none of on_event, on_batch, on_timer");
        if (info.callbacks.param_count > 0 && !info.callbacks.params)
            return make_error(where + "agent '" + info.name + "' lists params but gives no array");
        for (size_t p = 0; p < info.callbacks.param_count; ++p) {
            const mph_param_spec* ps = info.callbacks.params[p];
            if (!ps || ps->struct_size < kParamSpecMinSize || !ps->name)
                return make_error(where + "agent '" + info.name + "' param #" + std::to_string(p) + " is malformed");
            info.params.push_back(ParamInfo{ps->name, cstr(ps->description),
                                            ps->default_value ? std::optional<std::string>(ps->default_value) : std::nullopt,
                                            ps->required});
        }
        info.callbacks.name = nullptr;  // the strings are owned by the image; the host keeps its own copies
        info.callbacks.description = nullptr;
        info.callbacks.params = nullptr;
        plugin->agents_.push_back(std::move(info));
    }

    // Codecs and aggregators (1.2): the host keeps zero-filled copies, as for agents.
    if (d.codec_count > 0 && !d.codecs) return make_error(where + "plugin descriptor lists codecs but gives no array");
    for (size_t i = 0; i < d.codec_count; ++i) {
        const mph_codec_descriptor* c = d.codecs[i];
        const std::string which = "codec #" + std::to_string(i);
        if (!c || c->struct_size < kCodecDescriptorMinSize)
            return make_error(where + which + " is NULL or shorter than ABI 1.2's " +
                              std::to_string(kCodecDescriptorMinSize) + " bytes");
        CodecInfo info;
        std::memcpy(&info.callbacks, c, std::min(c->struct_size, sizeof info.callbacks));
        if (!info.callbacks.name || !*info.callbacks.name) return make_error(where + which + " has no name");
        info.name = info.callbacks.name;
        info.description = cstr(info.callbacks.description);
        if (plugin->find_codec(info.name)) return make_error(where + "codec '" + info.name + "' is declared twice");
        info.callbacks.name = info.callbacks.description = nullptr;
        plugin->codecs_.push_back(std::move(info));
    }
    if (d.aggregator_count > 0 && !d.aggregators)
        return make_error(where + "plugin descriptor lists aggregators but gives no array");
    for (size_t i = 0; i < d.aggregator_count; ++i) {
        const mph_aggregator_descriptor* a = d.aggregators[i];
        const std::string which = "aggregator #" + std::to_string(i);
        if (!a || a->struct_size < kAggregatorDescriptorMinSize)
            return make_error(where + which + " is NULL or shorter than ABI 1.2's " +
                              std::to_string(kAggregatorDescriptorMinSize) + " bytes");
        AggregatorInfo info;
        std::memcpy(&info.callbacks, a, std::min(a->struct_size, sizeof info.callbacks));
        if (!info.callbacks.name || !*info.callbacks.name) return make_error(where + which + " has no name");
        info.name = info.callbacks.name;
        info.description = cstr(info.callbacks.description);
        if (!info.callbacks.merge) return make_error(where + "aggregator '" + info.name + "' has no merge");
        if (plugin->find_aggregator(info.name))
            return make_error(where + "aggregator '" + info.name + "' is declared twice");
        info.callbacks.name = info.callbacks.description = nullptr;
        plugin->aggregators_.push_back(std::move(info));
    }
    if (d.key_function_count > 0 && !d.key_functions)
        return make_error(where + "plugin descriptor lists key functions but gives no array");
    for (size_t i = 0; i < d.key_function_count; ++i) {
        const mph_key_fn_descriptor* k = d.key_functions[i];
        const std::string which = "key function #" + std::to_string(i);
        if (!k || k->struct_size < kKeyFunctionDescriptorMinSize)
            return make_error(where + which + " is NULL or shorter than ABI 1.2's " +
                              std::to_string(kKeyFunctionDescriptorMinSize) + " bytes");
        KeyFunctionInfo info;
        std::memcpy(&info.callbacks, k, std::min(k->struct_size, sizeof info.callbacks));
        if (!info.callbacks.name || !*info.callbacks.name) return make_error(where + which + " has no name");
        info.name = info.callbacks.name;
        info.description = cstr(info.callbacks.description);
        if (!info.callbacks.key) return make_error(where + "key function '" + info.name + "' has no key callback");
        if (plugin->find_key_function(info.name))
            return make_error(where + "key function '" + info.name + "' is declared twice");
        info.callbacks.name = info.callbacks.description = nullptr;
        plugin->key_functions_.push_back(std::move(info));
    }
    if (d.predicate_count > 0 && !d.predicates)
        return make_error(where + "plugin descriptor lists predicates but gives no array");
    for (size_t i = 0; i < d.predicate_count; ++i) {
        const mph_predicate_descriptor* p = d.predicates[i];
        const std::string which = "predicate #" + std::to_string(i);
        if (!p || p->struct_size < kPredicateDescriptorMinSize)
            return make_error(where + which + " is NULL or shorter than ABI 1.3's " +
                              std::to_string(kPredicateDescriptorMinSize) + " bytes");
        PredicateInfo info;
        std::memcpy(&info.callbacks, p, std::min(p->struct_size, sizeof info.callbacks));
        if (!info.callbacks.name || !*info.callbacks.name) return make_error(where + which + " has no name");
        info.name = info.callbacks.name;
        info.description = cstr(info.callbacks.description);
        if (!info.callbacks.keep) return make_error(where + "predicate '" + info.name + "' has no keep callback");
        if (plugin->find_predicate(info.name))
            return make_error(where + "predicate '" + info.name + "' is declared twice");
        info.callbacks.name = info.callbacks.description = nullptr;
        plugin->predicates_.push_back(std::move(info));
    }
    if (plugin->agents_.empty() && plugin->codecs_.empty() && plugin->aggregators_.empty() &&
        plugin->key_functions_.empty() && plugin->predicates_.empty())
        return make_error(where + "the plugin provides no agents, codecs, aggregators, key functions or predicates");

    if (d.init) {
        char initbuf[512] = {};
        loading.callback = "init";
        in_plugin.emplace(loading);
        at("init");
        mph_status s = d.init(initbuf, sizeof initbuf);
        initbuf[sizeof initbuf - 1] = '\0';
        if (s != MPH_OK)
            return make_error(where + "init failed: " + (initbuf[0] ? initbuf : "no reason given") + " (status " +
                              std::to_string(s) + ")");
    }
    plugin->fini_ = d.fini;
    return plugin;
}

}  // namespace mephisto
