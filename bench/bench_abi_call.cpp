// bench_abi_call: what one ABI call costs per event, without Kafka.
//
// Loads bench/plugins/passthrough.so the way the host does (mephisto::load_plugin with the host's function
// table), creates instances, and times `calls` calls through the descriptor's function pointers with one
// prepared mph_event:
//   baseline   — a local function with the same signature through a volatile function pointer (an indirect
//                call the compiler cannot inline or hoist): what any dispatch through a pointer costs;
//   on_event   — the plugin's `noop` agent: host -> plugin;
//   call_host  — the plugin's `call_host` agent, which calls api->partition(ctx): host -> plugin -> host;
//   param      — api->param(ctx, "name") from the host side (a std::map lookup), for orientation.
// The ABI's marginal cost per event is on_event - baseline. Median of R repetitions, ns per call.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/agent_context.hpp"
#include "plugin/plugin.hpp"

#ifndef MEPHISTO_BENCH_PLUGIN_DIR
#define MEPHISTO_BENCH_PLUGIN_DIR "build/bench/plugins"
#endif

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_abi_call: %s\n", what.c_str());
    std::exit(1);
}

mph_status local_noop(void* instance, mph_agent_ctx* ctx, const mph_event* ev) {
    (void)instance;
    (void)ctx;
    (void)ev;
    return MPH_OK;
}

using OnEvent = mph_status (*)(void*, mph_agent_ctx*, const mph_event*);

// ns per call of `fn` over `calls` calls; the verdicts are summed so no call can be dropped.
double time_calls(OnEvent volatile* slot, void* instance, mph_agent_ctx* ctx, const mph_event* ev, long calls) {
    long failures = 0;
    const auto t0 = Clock::now();
    for (long i = 0; i < calls; ++i) {
        OnEvent fn = *slot;  // re-read every call: a real dispatch loop loads the pointer from the descriptor
        failures += fn(instance, ctx, ev) != MPH_OK;
    }
    const auto t1 = Clock::now();
    if (failures) die("a call returned a verdict other than MPH_OK");
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(calls);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    long calls = 50'000'000;
    int reps = 5;
    std::string plugin_dir = MEPHISTO_BENCH_PLUGIN_DIR;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--calls" && i + 1 < argc) calls = std::max(1L, std::atol(argv[++i]));
        else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
        else if (a == "--plugin-dir" && i + 1 < argc) plugin_dir = argv[++i];
        else {
            std::printf("usage: bench_abi_call [--calls N (50000000)] [--reps R (5)] [--plugin-dir DIR]\n");
            return a == "-h" || a == "--help" ? 0 : 1;
        }
    }

    auto plugin = mephisto::load_plugin(std::string(plugin_dir) + "/passthrough.so", mephisto::host_api());
    if (!plugin) die(plugin.error());
    const mephisto::AgentInfo* noop = (*plugin)->find_agent("noop");
    const mephisto::AgentInfo* call_host = (*plugin)->find_agent("call_host");
    if (!noop || !call_host) die("passthrough.so lacks the noop or call_host agent");

    // A context as the host builds it for a lane (engine/task_manager.cpp, Pipeline::make_lane), with one param.
    mph_agent_ctx ctx;
    ctx.agent_name = "noop";
    ctx.partition = 3;
    ctx.params = {{"alpha", "1"}, {"name", "value"}, {"zeta", "2"}};
    void* noop_instance = nullptr;
    void* call_host_instance = nullptr;
    if (noop->callbacks.create && noop->callbacks.create(&ctx, &noop_instance) != MPH_OK) die("noop create failed");
    if (call_host->callbacks.create && call_host->callbacks.create(&ctx, &call_host_instance) != MPH_OK)
        die("call_host create failed");

    static const char value[100] = {'v'};
    static const char key[] = "k42";
    mph_event ev{};
    ev.struct_size = sizeof ev;
    ev.topic = "in";
    ev.partition = 3;
    ev.offset = 12345;
    ev.timestamp_ms = 1'700'000'000'000;
    ev.key = key;
    ev.key_len = sizeof key - 1;
    ev.value = value;
    ev.value_len = sizeof value;

    OnEvent volatile baseline_fn = local_noop;
    OnEvent volatile noop_fn = noop->callbacks.on_event;
    OnEvent volatile call_host_fn = call_host->callbacks.on_event;
    const mph_host_api* api = mephisto::host_api();

    std::vector<double> base, on_event, host_call, param;
    time_calls(&baseline_fn, nullptr, &ctx, &ev, calls / 10);  // warm-up
    time_calls(&noop_fn, noop_instance, &ctx, &ev, calls / 10);
    for (int r = 0; r < reps; ++r) {
        // Interleaved, so a noisy neighbour hits every variant alike.
        base.push_back(time_calls(&baseline_fn, nullptr, &ctx, &ev, calls));
        on_event.push_back(time_calls(&noop_fn, noop_instance, &ctx, &ev, calls));
        host_call.push_back(time_calls(&call_host_fn, call_host_instance, &ctx, &ev, calls));
        const long param_calls = std::max(1L, calls / 10);
        const char* volatile sink = nullptr;
        const auto t0 = Clock::now();
        for (long i = 0; i < param_calls; ++i) sink = api->param(&ctx, "name");
        const auto t1 = Clock::now();
        if (!sink) die("param lookup failed");
        param.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(param_calls));
    }
    if (noop->callbacks.destroy) noop->callbacks.destroy(noop_instance);
    if (call_host->callbacks.destroy) call_host->callbacks.destroy(call_host_instance);

    std::printf("\n## bench_abi_call\n\n");
    std::printf("%ld calls per repetition, %d repetitions (interleaved), median ns per call\n\n", calls, reps);
    std::printf("| call | ns/call (median) | runs |\n|:-----|-----------------:|:-----|\n");
    auto row = [](const char* name, const std::vector<double>& v) {
        std::string runs;
        for (double x : v) {
            char b[32];
            std::snprintf(b, sizeof b, "%s%.2f", runs.empty() ? "" : " ", x);
            runs += b;
        }
        std::printf("| %s | %.2f | %s |\n", name, median(v), runs.c_str());
    };
    row("baseline: local function via volatile pointer", base);
    row("on_event of plugin agent `noop` (host -> plugin)", on_event);
    row("on_event of `call_host` (host -> plugin -> api->partition)", host_call);
    row("api->param(ctx, \"name\") (3 params)", param);
    std::printf("\nABI marginal cost per event (on_event - baseline): %.2f ns\n", median(on_event) - median(base));
    std::printf("a call back into the host (call_host - on_event): %.2f ns\n", median(host_call) - median(on_event));
    return 0;
}
