// The dead-letter queue (engine/dead_letter_queue.hpp).
#include "engine/dead_letter_queue.hpp"

#include <fmt/format.h>

#include "engine/event_bytes.hpp"

namespace mephisto {
namespace {

bool too_large(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

void add_header(rd_kafka_headers_t* headers, const char* name, const std::string& value) {
    rd_kafka_header_add(headers, name, -1, value.data(), static_cast<ssize_t>(value.size()));
}

}  // namespace

bool DeadLetterQueue::send(std::unique_ptr<DeadLetter> letter, std::string& why) {
    const std::string& topic = letter->topic;
    const EventBytes event = bytes_of(letter->event);
    for (; letter->level <= 2; ++letter->level) {
        rd_kafka_headers_t* headers = letter->level < 2 ? copy_headers(letter->event) : nullptr;
        if (!headers) headers = rd_kafka_headers_new(5);
        add_header(headers, "mephisto.error", letter->error);
        add_header(headers, "mephisto.agent", letter->agent);
        add_header(headers, "mephisto.source", letter->source);
        for (const auto& [name, value] : letter->headers) add_header(headers, name.c_str(), value);
        if (letter->level >= 1)
            add_header(headers, "mephisto.value-dropped",
                       std::to_string(event.value_len) + " bytes, too large to dead-letter (" + letter->refusal +
                           "); the event stays at " + letter->source);
        if (letter->level >= 2)
            add_header(headers, "mephisto.key-dropped",
                       std::to_string(event.key_len) + " bytes of key and the event's headers, too large as well");
        const void* key = letter->level < 2 ? event.key : nullptr;
        const size_t key_len = letter->level < 2 ? event.key_len : 0;
        const void* value = letter->level == 0 ? event.value : nullptr;
        const size_t value_len = letter->level == 0 ? event.value_len : 0;
        const std::string note =
            letter->level == 0 ? "" : fmt::format(", without its {} ({})", letter->level == 1 ? "value" : "value, key and headers",
                                                  letter->refusal);
        const std::string logged = fmt::format("dead-lettered {} to {} after {} attempt(s){}: {}", letter->source, topic,
                                               letter->attempts, note, letter->error);
        // The letter's share of its event: the offset commits only once the broker took the letter. The delivery
        // report owns the letter from the moment it is produced (it may come before produce returns).
        InFlight* f = letter->event;
        f->pending.fetch_add(1, std::memory_order_relaxed);
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
        DeadLetter* tag = letter.release();
        if (producer_->produce(topic, key, key_len, value, value_len, headers, MPH_PARTITION_ANY, event.timestamp_ms,
                               static_cast<DeliveryTag*>(tag), &why, &code) == MPH_OK) {
            tag->log->warn("{}", logged);
            return true;
        }
        letter.reset(tag);
        f->pending.fetch_sub(1, std::memory_order_relaxed);
        if (!too_large(code)) return false;
        letter->refusal = rd_kafka_err2str(code);
    }
    why = "even its coordinates alone are too large to produce (" + letter->refusal + ")";
    return false;
}

void DeadLetterQueue::on_delivery(DeadLetter* raw, rd_kafka_resp_err_t err) {
    std::unique_ptr<DeadLetter> letter(raw);
    InFlight* event = letter->event;
    if (!err) {
        finish(event);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {  // shutdown
        finish(event, 0);
        return;
    }
    const std::string& topic = letter->topic;
    if (too_large(err) && letter->level < 2) {
        // The broker's limit is below the producer's: the next level goes, with its own share of the event,
        // before this letter lets go of its share.
        letter->log->warn("the broker refused the dead letter of {} to {}: {}; sending it without its {}",
                                 letter->source, topic, rd_kafka_err2str(err),
                                 letter->level == 0 ? "value" : "key and headers");
        auto next = std::make_unique<DeadLetter>(*letter);
        next->level++;
        next->refusal = rd_kafka_err2str(err);
        std::string why;
        if (send(std::move(next), why)) {
            finish(event);
            return;
        }
        fail_("cannot dead-letter " + letter->source + " to " + topic + ": " + why);
        finish(event, 0);
        return;
    }
    fail_("cannot dead-letter " + letter->source + " to " + topic + ": " + rd_kafka_err2str(err) +
         "; the event stays uncommitted");
    finish(event, 0);
}

}  // namespace mephisto
