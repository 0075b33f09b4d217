#include "supervisor/crash_ledger.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/json_bounds.hpp"

namespace mephisto::crash_ledger {
namespace {

using nlohmann::json;
constexpr size_t kMaxFileBytes = 4 * 1024 * 1024;

}  // namespace

Result<std::vector<PoisonRecord>> read(const std::filesystem::path& file) {
    std::vector<PoisonRecord> out;
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return out;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) return make_error("cannot read " + file.string() + ": " + ec.message());
    if (size > kMaxFileBytes) return make_error(file.string() + " is larger than " + std::to_string(kMaxFileBytes) + " bytes");
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    try {
        const json doc = parse_json_bounded(text.str());
        for (const auto& r : doc.at("records")) {
            PoisonRecord p;
            p.pipeline = r.at("pipeline").get<std::string>();
            p.agent = r.at("agent").get<std::string>();
            p.topic = r.at("topic").get<std::string>();
            p.partition = r.at("partition").get<int32_t>();
            p.offset = r.at("offset").get<int64_t>();
            p.crashes = r.at("crashes").get<int>();
            p.fault = r.value("fault", "");
            p.plugin = r.value("plugin", "");
            p.sha1 = r.value("sha1", "");
            p.last_crash_ms = r.value("last_crash_ms", int64_t{0});
            out.push_back(std::move(p));
        }
    } catch (const std::exception& e) {
        return make_error(file.string() + " is not a crash ledger: " + e.what());
    }
    return out;
}

Result<PoisonRecord> add_crash(const std::filesystem::path& file, const call_slots::CallInProgress& call,
                               const std::string& fault, int64_t now_ms) {
    auto records = read(file);
    if (!records) return make_error(records.error());
    auto it = std::find_if(records->begin(), records->end(), [&](const PoisonRecord& r) {
        return r.pipeline == call.pipeline && r.agent == call.agent && r.topic == call.topic &&
               r.partition == call.partition && r.offset == call.offset;
    });
    if (it == records->end()) {
        PoisonRecord r;
        r.pipeline = call.pipeline;
        r.agent = call.agent;
        r.topic = call.topic;
        r.partition = call.partition;
        r.offset = call.offset;
        records->push_back(std::move(r));
        it = std::prev(records->end());
    }
    it->crashes++;
    it->fault = fault;
    it->plugin = call.plugin;
    it->sha1 = call.sha1;
    it->last_crash_ms = now_ms;
    const PoisonRecord result = *it;
    if (records->size() > kMaxRecords) {
        std::sort(records->begin(), records->end(),
                  [](const PoisonRecord& a, const PoisonRecord& b) { return a.last_crash_ms > b.last_crash_ms; });
        records->resize(kMaxRecords);
    }
    json list = json::array();
    for (const auto& r : *records)
        list.push_back({{"pipeline", r.pipeline}, {"agent", r.agent}, {"topic", r.topic}, {"partition", r.partition},
                        {"offset", r.offset}, {"crashes", r.crashes}, {"fault", r.fault}, {"plugin", r.plugin},
                        {"sha1", r.sha1}, {"last_crash_ms", r.last_crash_ms}});
    const std::string text = json{{"records", list}}.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
    const auto temp = file.string() + ".new";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return make_error("cannot write " + temp + ": " + strerror(errno));
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written || ::rename(temp.c_str(), file.c_str()) != 0)
        return make_error("cannot write " + file.string() + ": " + strerror(errno));
    return result;
}

}  // namespace mephisto::crash_ledger
