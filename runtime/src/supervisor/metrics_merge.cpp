#include "supervisor/metrics_merge.hpp"

#include <map>
#include <string_view>

namespace mephisto {
namespace {

struct Family {
    std::string help, type;  // the lines, as written
    std::vector<std::string_view> samples;
};

// The metric name a "# HELP name ..." or "# TYPE name ..." line is about.
std::string_view described(std::string_view line) {
    line.remove_prefix(7);
    return line.substr(0, line.find(' '));
}

}  // namespace

std::string merge_expositions(const std::vector<std::string>& expositions) {
    std::vector<std::string> order;
    std::map<std::string, Family, std::less<>> families;
    for (const std::string& text : expositions) {
        Family* current = nullptr;
        size_t at = 0;
        while (at < text.size()) {
            size_t end = text.find('\n', at);
            if (end == std::string::npos) end = text.size();
            const std::string_view line(text.data() + at, end - at);
            at = end + 1;
            if (line.empty()) continue;
            const bool help = line.rfind("# HELP ", 0) == 0, type = line.rfind("# TYPE ", 0) == 0;
            if (help || type) {
                const std::string name(described(line));
                auto [it, added] = families.try_emplace(name);
                if (added) order.push_back(name);
                current = &it->second;
                std::string& kept = help ? current->help : current->type;
                if (kept.empty()) kept = std::string(line);
            } else if (line.front() == '#') {
                continue;  // another comment
            } else if (current) {
                current->samples.push_back(line);
            }
        }
    }
    std::string out;
    for (const auto& name : order) {
        const Family& f = families.at(name);
        if (f.samples.empty()) continue;
        if (!f.help.empty()) out.append(f.help).push_back('\n');
        if (!f.type.empty()) out.append(f.type).push_back('\n');
        for (const auto& sample : f.samples) out.append(sample).push_back('\n');
    }
    return out;
}

}  // namespace mephisto
