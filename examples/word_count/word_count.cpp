// Faust's word count, the canonical streaming benchmark, in Mephisto: sentences arrive on `sentences`, the
// `split` agent emits one event per lowercased word (key = value = the word) to `words`, and the `count`
// agent, fed through `group_by: key`, adds one to the word's entry in the host-owned int64 table
// `word_counts`. The hot path does no per-event logging: `count` logs a word only every 10 000th time.
#include <mephisto/mephisto.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace {

// ASCII letters and digits, plus every byte >= 0x80 so UTF-8 words stay whole (as in examples/word_split).
bool is_word_byte(unsigned char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

char lowercase(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

struct Split {
    std::string text;  // reused across events: no allocation per sentence once it has grown

    void on_event(mephisto::Context& ctx, const mephisto::Event& sentence) {
        const std::string_view value = sentence.value();
        text.assign(value.size(), '\0');
        for (size_t i = 0; i < value.size(); ++i) text[i] = lowercase(value[i]);
        const std::string_view lowered(text);
        size_t i = 0;
        while (i < lowered.size()) {
            while (i < lowered.size() && !is_word_byte(static_cast<unsigned char>(lowered[i]))) ++i;
            const size_t start = i;
            while (i < lowered.size() && is_word_byte(static_cast<unsigned char>(lowered[i]))) ++i;
            if (i == start) break;
            const std::string_view word = lowered.substr(start, i - start);
            ctx.emit(word, word);  // emit copies; an exception (full queue, no sink) becomes the verdict
        }
    }
};

struct Count {
    static constexpr int64_t kLogEvery = 10000;

    mephisto::Table counts;
    explicit Count(mephisto::Context& ctx) : counts(ctx.table("word_counts")) {}

    void on_event(mephisto::Context& ctx, const mephisto::Event& word) {
        const std::string_view key = word.key().value_or(word.value());
        const int64_t n = counts.add(key);
        if (n % kLogEvery == 0) ctx.log_info("word ", key, " counted ", n, " times");
    }
};

}  // namespace

MEPHISTO_PLUGIN("word_count", "1.0.0", mephisto::description("Faust's word count: split sentences, count words"),
                mephisto::agent<Split>("split", "emits one event per lowercased word, keyed by the word"),
                mephisto::agent<Count>("count", "counts words in the table word_counts (logs every 10000th)"));
