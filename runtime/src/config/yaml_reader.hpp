#pragma once
// Typed values from the YAML nodes of a pipeline file, each refusal naming file, line and column and what was
// expected (RELIABILITY.md 38). For the config loader: it throws ConfigFailure, which load_config_text turns
// into a Result at its edge.
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/duration.hpp"
#include "config/config.hpp"

namespace mephisto::yaml_reader {

struct ConfigFailure {
    Mark mark;
    std::string message;
};

class Reader {
public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    Mark mark_of(const YAML::Node& node) const {
        auto m = node.Mark();
        if (m.is_null()) return Mark{file_, 1, 1};
        return Mark{file_, m.line + 1, m.column + 1};
    }

    [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
        throw ConfigFailure{mark_of(node), message};
    }

    static std::string kind(const YAML::Node& n) {
        switch (n.Type()) {
            case YAML::NodeType::Map: return "a mapping";
            case YAML::NodeType::Sequence: return "a list";
            case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
            case YAML::NodeType::Null: return "nothing";
            default: return "an undefined value";
        }
    }

    void expect_map(const YAML::Node& n, const std::string& what) const {
        if (!n.IsMap()) fail(n, what + " must be a mapping, found " + kind(n));
    }

    // Checks that every key of mapping `n` is in `allowed` and appears once; returns the keys in order.
    std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& n, const std::string& what,
                                                            const std::vector<std::string>& allowed = {}) const {
        expect_map(n, what);
        std::vector<std::pair<std::string, YAML::Node>> out;
        std::set<std::string> seen;
        for (auto it = n.begin(); it != n.end(); ++it) {
            if (!it->first.IsScalar()) fail(it->first, "keys of " + what + " must be plain names");
            std::string key = it->first.Scalar();
            if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                std::string list;
                for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
                fail(it->first, "unknown key '" + key + "' in " + what + " (expected one of: " + list + ")");
            }
            if (!seen.insert(key).second) fail(it->first, "duplicate key '" + key + "' in " + what);
            out.emplace_back(key, it->second);
        }
        return out;
    }

    std::string string(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar() || n.Scalar().empty()) fail(n, what + " must be a non-empty string, found " + kind(n));
        return n.Scalar();
    }

    std::string name(const YAML::Node& n, const std::string& what) const {
        std::string s = string(n, what);
        for (char c : s)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
                fail(n, what + " '" + s + "' may only contain letters, digits, '_', '-' and '.'");
        return s;
    }

    long long integer(const YAML::Node& n, const std::string& what, long long min, long long max) const {
        long long v = 0;
        if (!n.IsScalar()) fail(n, what + " must be an integer, found " + kind(n));
        try {
            size_t used = 0;
            v = std::stoll(n.Scalar(), &used);
            if (used != n.Scalar().size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            fail(n, what + " must be an integer, found " + kind(n));
        }
        if (v < min || v > max)
            fail(n, what + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                        ", found " + n.Scalar());
        return v;
    }

    Millis duration(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar()) fail(n, what + " must be a duration such as 10s, found " + kind(n));
        auto d = parse_duration(n.Scalar());
        if (!d) fail(n, what + ": " + d.error());
        return *d;
    }

    bool boolean(const YAML::Node& n, const std::string& what) const {
        if (n.IsScalar()) {
            const auto& s = n.Scalar();
            if (s == "true" || s == "yes" || s == "on") return true;
            if (s == "false" || s == "no" || s == "off") return false;
        }
        fail(n, what + " must be true or false, found " + kind(n));
    }

    // A name or a list of names.
    std::vector<std::string> names(const YAML::Node& n, const std::string& what) const {
        std::vector<std::string> out;
        if (n.IsScalar()) {
            out.push_back(name(n, what));
        } else if (n.IsSequence()) {
            std::set<std::string> seen;
            for (const auto& item : n) {
                auto v = name(item, what);
                if (!seen.insert(v).second) fail(item, "'" + v + "' is listed twice in " + what);
                out.push_back(v);
            }
        } else {
            fail(n, what + " must be a name or a list of names, found " + kind(n));
        }
        return out;
    }

    // A mapping of scalars to strings (params, librdkafka properties).
    std::map<std::string, std::string> scalar_map(const YAML::Node& n, const std::string& what) const {
        std::map<std::string, std::string> out;
        for (auto& [key, value] : entries(n, what)) {
            if (!value.IsScalar()) fail(value, what + "." + key + " must be a single value, found " + kind(value));
            out[key] = value.Scalar();
        }
        return out;
    }

    template <typename E>
    E choice(const YAML::Node& n, const std::string& what, const std::vector<std::pair<std::string, E>>& options) const {
        if (n.IsScalar())
            for (const auto& [text, value] : options)
                if (n.Scalar() == text) return value;
        std::string list;
        for (const auto& o : options) list += (list.empty() ? "" : ", ") + o.first;
        fail(n, what + " must be one of: " + list + "; found " + kind(n));
    }

    const std::string& file() const { return file_; }

private:
    std::string file_;
};

}  // namespace mephisto::yaml_reader
