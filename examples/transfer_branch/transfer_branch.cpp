// The `branch` agent routes each money transfer by amount, like a Faust branch on a Record field:
//   amount < tiny_below   -> tiny_transfers
//   amount < small_below  -> small_transfers
//   otherwise             -> large_transfers
// The value goes out unchanged and keyed by account, so one account's transfers stay in order downstream.
#include <mephisto/mephisto.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace {

class Branch {
public:
    explicit Branch(mephisto::Context& ctx)
        : tiny_below_(ctx.param_as<double>("tiny_below")), small_below_(ctx.param_as<double>("small_below")) {
        // Thrown here, a bad configuration fails create with the reason instead of misrouting every transfer.
        if (!(tiny_below_ < small_below_))
            throw mephisto::Error("tiny_below (" + std::to_string(tiny_below_) + ") must be less than small_below (" +
                                  std::to_string(small_below_) + ")");
    }

    void on_event(mephisto::Context& ctx, const mephisto::Event& event) {
        // `transfers` is declared `value: json`, so the host drops undecodable values before we are called.
        // A transfer that decodes but lacks a field is still a bad message: the thrown Error becomes FATAL
        // plus its text, and the YAML's on_error sends the event to the dead-letter topic.
        const auto transfer = nlohmann::json::parse(event.value(), nullptr, /*allow_exceptions=*/false);
        if (!transfer.is_object())
            throw mephisto::Error("transfer is not a JSON object: " + std::string(event.value()));
        const auto account = transfer.find("account");
        if (account == transfer.end() || !account->is_string())
            throw mephisto::Error("transfer has no string \"account\": " + std::string(event.value()));
        const auto amount = transfer.find("amount");
        if (amount == transfer.end() || !amount->is_number())
            throw mephisto::Error("transfer has no numeric \"amount\": " + std::string(event.value()));

        ctx.send(destination(amount->get<double>()), event.value(), account->get_ref<const std::string&>());
    }

private:
    std::string_view destination(double amount) const {
        if (amount < tiny_below_) return "tiny_transfers";
        if (amount < small_below_) return "small_transfers";
        return "large_transfers";
    }

    double tiny_below_;
    double small_below_;
};

} // namespace

MEPHISTO_PLUGIN("transfer_branch", "1.0.0", mephisto::description("routes money transfers by amount"),
                mephisto::agent<Branch>("branch", "sends each transfer to tiny_, small_ or large_transfers by amount",
                                        {
                                            {.name = "tiny_below",
                                             .description = "amounts below this go to tiny_transfers",
                                             .default_value = "100"},
                                            {.name = "small_below",
                                             .description = "other amounts below this go to small_transfers",
                                             .default_value = "10000"},
                                        }));
