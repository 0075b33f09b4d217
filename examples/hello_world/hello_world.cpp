// Faust's quick start in Mephisto: the `greet` agent logs every greeting that arrives on `greetings`.
// It logs through the host, so the greeting appears in `mephisto run`'s output with the agent's name.
#include <mephisto/mephisto.hpp>

struct Greeter {
    void on_event(mephisto::Context& ctx, const mephisto::Event& greeting) { ctx.log_info(greeting.value()); }
};

MEPHISTO_PLUGIN("hello_world", "1.0.0", mephisto::description("Faust's quick start: log every greeting"),
                mephisto::agent<Greeter>("greet", "logs every greeting it receives"));
