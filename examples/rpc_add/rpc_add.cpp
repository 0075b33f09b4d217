// Agents as services (Faust's agent.ask / agent.cast). `adding` answers "A B" with A + B: when a request was
// sent with ask, ctx.reply() sends the sum back to whoever asked, on whichever host; when it was cast (or sent
// with `mephisto send`), nobody waits and it just logs. `summing` asks `adding` about every pair it reads and
// emits "A + B = SUM" when the answer comes back in on_reply. The host keeps each pair uncommitted until its
// answer (or the timeout) has been through on_reply, so a crash in between asks again after recovery.
#include <charconv>
#include <string>
#include <unordered_map>

#include <mephisto/mephisto.hpp>

namespace {

// "A B" as two integers; throws mephisto::Error (the pipeline's error policy then applies) otherwise.
std::pair<long long, long long> parse_pair(std::string_view text) {
    long long a = 0, b = 0;
    const char* end = text.data() + text.size();
    auto [after_a, ea] = std::from_chars(text.data(), end, a);
    const char* start_b = after_a;
    while (start_b < end && *start_b == ' ') ++start_b;
    auto [after_b, eb] = std::from_chars(start_b, end, b);
    if (ea != std::errc() || eb != std::errc() || start_b == after_a || after_b != end)
        throw mephisto::Error("expected two integers \"A B\", got \"" + std::string(text) + "\"");
    return {a, b};
}

}  // namespace

struct Adding {
    void on_event(mephisto::Context& ctx, const mephisto::Event& request) {
        const auto [a, b] = parse_pair(request.value());
        const std::string sum = std::to_string(a + b);
        if (!ctx.reply(sum)) ctx.log_info("cast: ", a, " + ", b, " = ", sum);  // nobody asked
    }
};

struct Summing {
    std::chrono::milliseconds timeout{5000};
    std::unordered_map<uint64_t, std::string> questions;  // request id -> the pair it asked about

    explicit Summing(mephisto::Context& ctx) : timeout(ctx.param_as<int64_t>("timeout_ms")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& pair) {
        parse_pair(pair.value());  // a malformed pair is refused here, not by the agent asked
        const uint64_t request = ctx.ask("adding", pair.value(), pair.key(), timeout);
        questions.emplace(request, std::string(pair.value()));
    }

    void on_reply(mephisto::Context& ctx, const mephisto::Reply& reply) {
        auto question = questions.extract(reply.request());
        if (question.empty()) {  // asked by this instance's predecessor (a restart or a swap): the pair is unknown
            ctx.log_warn("an answer to request ", reply.request(), ", asked before this instance started, is dropped");
            return;
        }
        const std::string pair = question.mapped();
        if (reply.timed_out()) {
            ctx.log_warn("asked adding about ", pair, ": no answer within ", timeout.count(), " ms");
            return;
        }
        const auto [a, b] = parse_pair(pair);
        const std::string line = std::to_string(a) + " + " + std::to_string(b) + " = " + std::string(reply.value());
        ctx.log_info("asked: ", line);
        ctx.emit(line);
    }
};

MEPHISTO_PLUGIN("rpc_add", "1.0.0", mephisto::description("agents asking agents: an adder and its client"),
                mephisto::agent<Adding>("adding", "answers \"A B\" with A + B (ask), or logs it (cast)"),
                mephisto::agent<Summing>("summing", "asks adding about every pair and emits the answer",
                                         {{.name = "timeout_ms", .description = "how long to wait for an answer",
                                           .default_value = "5000"}}));
