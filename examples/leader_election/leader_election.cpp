// Faust's leader election playbook: every host runs the same pipeline, but the timer `publish` is declared
// `on_leader: true`, so only the host that leads the app's consumer group fires it. The group gives partition 0
// of the one-partition topic <app>-__leader to exactly one member; when that host stops or dies, a rebalance
// gives it to another, whose timer takes over. Every host's `say` agent logs the greetings it receives.
#include <unistd.h>

#include <string>

#include <mephisto/mephisto.hpp>

namespace {

std::string host_name() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return std::string(name) + "/" + std::to_string(::getpid());
}

}  // namespace

struct Publish {
    long count = 0;
    void on_timer(mephisto::Context& ctx, std::string_view, int64_t) {
        const std::string greeting = "greeting " + std::to_string(++count) + " from the leader " + host_name();
        ctx.send("greetings", {.value = greeting, .key = std::string_view("leader")});
    }
};

struct Say {
    void on_event(mephisto::Context& ctx, const mephisto::Event& greeting) { ctx.log_info(greeting.value()); }
};

MEPHISTO_PLUGIN("leader_election", "1.0.0", mephisto::description("Faust's leader election: one host greets"),
                mephisto::agent<Publish>("publish", "sends a greeting naming this host (a leader timer)"),
                mephisto::agent<Say>("say", "logs every greeting"));
