// `mephisto deploy`, `undeploy`, `deployments` and `deploy keygen`: a pipeline and its plugins to every host that
// follows the deployments topic, signed with the deployer's Ed25519 key (deploy/deployment.hpp).
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cli/commands.hpp"
#include "common/wall_clock.hpp"
#include "deploy/deployment.hpp"
#include "kafka/client_config.hpp"
#include "kafka/topic_admin.hpp"

namespace mephisto::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::optional<std::string> read_file(const fs::path& file, size_t limit, std::string& why) {
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec) {
        why = file.string() + ": " + ec.message();
        return std::nullopt;
    }
    if (size > limit) {
        why = file.string() + " is larger than " + std::to_string(limit) + " bytes";
        return std::nullopt;
    }
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return bytes;
}

struct Delivery {
    int ok = 0, failed = 0;
    std::string error;
};

// A producer that waits for every record: the records of a deployment reach the topic, or the command fails.
class Publisher {
public:
    explicit Publisher(const std::string& bootstrap) {
        const std::map<std::string, std::string> conf = {{"bootstrap.servers", bootstrap}, {"acks", "all"},
                                                         {"enable.idempotence", "true"},
                                                         {"message.max.bytes", "2000000"},
                                                         {"client.id", "mephisto-deploy"}};
        auto c = make_conf({&conf});
        if (!c) throw std::runtime_error(c.error());
        rd_kafka_conf_set_opaque(c->get(), &delivery_);
        rd_kafka_conf_set_dr_msg_cb(c->get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
            auto* d = static_cast<Delivery*>(opaque);
            if (m->err) {
                ++d->failed;
                d->error = rd_kafka_err2str(m->err);
            } else {
                ++d->ok;
            }
        });
        auto p = make_client(RD_KAFKA_PRODUCER, std::move(*c));
        if (!p) throw std::runtime_error(p.error());
        producer_ = std::move(*p);
        TopicAdmin admin(producer_.get(), nullptr, spdlog::default_logger());
        if (auto st = admin.ensure(kDeploymentsTopic, 1); !st) throw std::runtime_error(st.error());
    }
    void send(const std::string& key, std::string_view value) {
        while (true) {
            const auto err = rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(kDeploymentsTopic), RD_KAFKA_V_PARTITION(0),
                                               RD_KAFKA_V_KEY(key.data(), key.size()),
                                               RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (err) throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
                ++sent_;
                return;
            }
            rd_kafka_poll(producer_.get(), 100);
        }
    }
    // Waits for every record; throws when one failed.
    void finish() {
        rd_kafka_flush(producer_.get(), 60'000);
        if (delivery_.failed || delivery_.ok != sent_)
            throw std::runtime_error("not every record reached " + std::string(kDeploymentsTopic) +
                                     (delivery_.error.empty() ? "" : ": " + delivery_.error));
    }

private:
    Delivery delivery_;
    int sent_ = 0;
    KafkaPtr producer_;
};

// Every record of the topic: the latest value of each key, in the order last written.
std::vector<std::pair<std::string, std::string>> read_topic(const std::string& bootstrap) {
    const std::map<std::string, std::string> conf = {{"bootstrap.servers", bootstrap}, {"group.id", "mephisto-deployments-cli"},
                                                     {"enable.auto.commit", "false"}, {"enable.partition.eof", "true"},
                                                     {"client.id", "mephisto-deployments"}};
    auto c = make_conf({&conf});
    if (!c) throw std::runtime_error(c.error());
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*c));
    if (!consumer) throw std::runtime_error(consumer.error());
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kDeploymentsTopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(consumer->get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    std::map<std::string, std::pair<int64_t, std::string>> latest;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool done = false;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer->get(), 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) done = true;
        else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) done = true;  // nothing deployed yet
        else if (!m->err && m->key)
            latest[std::string(static_cast<const char*>(m->key), m->key_len)] = {
                m->offset, std::string(static_cast<const char*>(m->payload), m->payload ? m->len : 0)};
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(consumer->get(), nullptr);
    rd_kafka_destroy_flags(consumer->release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (!done) throw std::runtime_error("could not read " + std::string(kDeploymentsTopic) + " to its end");
    std::vector<std::pair<int64_t, std::pair<std::string, std::string>>> ordered;
    for (auto& [key, v] : latest) ordered.push_back({v.first, {key, std::move(v.second)}});
    std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [offset, kv] : ordered) out.push_back(std::move(kv));
    return out;
}

int publish(const DeployOptions& o, Manifest& m, const std::vector<std::pair<DeployedPlugin, std::string>>& plugins) {
    auto key = read_secret_key(o.key);
    if (!key) {
        std::cerr << "deploy: " << key.error() << "\n";
        return 2;
    }
    m.version = static_cast<uint64_t>(wall_ms());
    sign(m, *key);
    try {
        Publisher out(o.broker);
        size_t chunks = 0;
        for (const auto& [plugin, bytes] : plugins)  // the chunks first: a host reads them before the manifest
            for (size_t i = 0; i < plugin.chunks.size(); ++i, ++chunks)
                out.send(chunk_key(plugin.chunks[i]), std::string_view(bytes).substr(i * kChunkBytes, kChunkBytes));
        if (o.print) {  // for PUT /pipelines/NAME: the chunks are on the topic, the manifest goes to stdout
            out.finish();
            std::cout << m.to_json() << "\n";
            return 0;
        }
        out.send(manifest_key(m.name), m.to_json());
        out.finish();
        std::cout << (m.deleted ? "undeployed " : "deployed ") << m.name << " version " << m.version;
        if (!m.deleted) std::cout << ": " << m.plugins.size() << " plugin(s) in " << chunks << " chunk(s)";
        std::cout << ", signed by " << m.signer.substr(0, 16) << "...\n";
    } catch (const std::exception& e) {
        std::cerr << "deploy: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace

int deploy_keygen(const fs::path& secret, const fs::path& public_key) {
    if (auto st = write_key_pair(secret, public_key); !st) {
        std::cerr << "deploy keygen: " << st.error() << "\n";
        return 1;
    }
    std::cout << "secret key " << secret.string() << " (keep it with whoever deploys), public key " << public_key.string()
              << " (give it to every host: mephisto run DIR --deployments BROKER --trust " << public_key.string() << ")\n";
    return 0;
}

int deploy(const DeployOptions& o) {
    Manifest m;
    m.name = o.name.empty() ? o.file.stem().string() : o.name;
    if (!valid_deployment_name(m.name)) {
        std::cerr << "deploy: '" << m.name << "' is not a pipeline name (letters, digits, '_', '-', '.')\n";
        return 2;
    }
    std::string why;
    auto text = read_file(o.file, kMaxDeployedFileBytes, why);
    if (!text) {
        std::cerr << "deploy: " << why << "\n";
        return 2;
    }
    m.file = *text;
    // Shipped plugins land in plugins.d/<name>/ beside the pipeline file on every host: the file must look there.
    if (!o.plugins.empty()) {
        std::string dir;
        try {
            const YAML::Node root = YAML::Load(m.file);
            if (root["plugins"] && root["plugins"]["dir"]) dir = root["plugins"]["dir"].as<std::string>();
        } catch (const std::exception& e) {
            std::cerr << "deploy: " << o.file.string() << ": " << e.what() << "\n";
            return 2;
        }
        const std::string expected = "plugins.d/" + m.name;
        if (dir != expected && dir != expected + "/") {
            std::cerr << "deploy: " << o.file.string() << " ships plugins, so its plugins.dir must be " << expected
                      << " (where every host puts them), found '" << dir << "'\n";
            return 2;
        }
    }
    if (o.plugins.size() > kMaxPluginsPerDeployment) {
        std::cerr << "deploy: at most " << kMaxPluginsPerDeployment << " plugins\n";
        return 2;
    }
    std::vector<std::pair<DeployedPlugin, std::string>> plugins;
    for (const auto& file : o.plugins) {
        auto bytes = read_file(file, kMaxPluginBytes, why);
        if (!bytes) {
            std::cerr << "deploy: " << why << "\n";
            return 2;
        }
        DeployedPlugin p;
        p.name = file.filename().string();
        if (!valid_plugin_file_name(p.name)) {
            std::cerr << "deploy: " << file.string() << ": a plugin's file name is letters, digits, '_', '-', '.', ending .so\n";
            return 2;
        }
        p.size = bytes->size();
        p.sha256 = sha256_hex(*bytes);
        for (size_t at = 0; at < bytes->size(); at += kChunkBytes)
            p.chunks.push_back(sha256_hex(std::string_view(*bytes).substr(at, kChunkBytes)));
        m.plugins.push_back(p);
        plugins.emplace_back(std::move(p), std::move(*bytes));
    }
    return publish(o, m, plugins);
}

int undeploy(const DeployOptions& o) {
    Manifest m;
    m.name = o.name;
    m.deleted = true;
    if (!valid_deployment_name(m.name)) {
        std::cerr << "undeploy: '" << m.name << "' is not a pipeline name\n";
        return 2;
    }
    return publish(o, m, {});
}

int deployments(const DeployOptions& o) {
    std::vector<std::pair<std::string, std::string>> records;
    try {
        records = read_topic(o.broker);
    } catch (const std::exception& e) {
        std::cerr << "deployments: " << e.what() << "\n";
        return 1;
    }
    json out{{"deployments", json::array()}, {"hosts", json::array()}};
    for (const auto& [key, value] : records) {
        if (key.rfind("pipeline/", 0) == 0) {
            auto m = Manifest::from_json(value);
            if (!m) out["deployments"].push_back({{"pipeline", key.substr(9)}, {"error", m.error()}});
            else out["deployments"].push_back({{"pipeline", m->name}, {"version", m->version}, {"deleted", m->deleted},
                                               {"plugins", m->plugins.size()}, {"signer", m->signer}});
        } else if (key.rfind("status/", 0) == 0) {
            const json status = json::parse(value, nullptr, false);
            if (status.is_object()) out["hosts"].push_back(status);
        }
    }
    if (o.json) {
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::cout << "deployed:\n";
    for (const auto& d : out["deployments"]) {
        if (d.contains("error")) {
            std::cout << "  " << d["pipeline"].get<std::string>() << ": unreadable: " << d["error"].get<std::string>() << "\n";
            continue;
        }
        std::cout << "  " << d["pipeline"].get<std::string>() << " version " << d["version"].get<uint64_t>()
                  << (d["deleted"].get<bool>() ? " (undeployed)" : "") << ", " << d["plugins"].get<size_t>()
                  << " plugin(s), signed by " << d["signer"].get<std::string>().substr(0, 16) << "...\n";
    }
    for (const auto& h : out["hosts"]) {
        std::cout << "host " << h.value("host", std::string("?")) << " (" << h.value("dir", std::string()) << "):\n";
        for (const auto& a : h.value("applied", json::array()))
            std::cout << "  applied " << a.value("pipeline", std::string()) << " version " << a.value("version", uint64_t{0})
                      << (a.value("deleted", false) ? " (undeployed)" : "") << "\n";
        for (const auto& r : h.value("refused", json::array()))
            std::cout << "  REFUSED " << r.value("pipeline", std::string()) << " version " << r.value("version", uint64_t{0})
                      << ": " << r.value("why", std::string()) << "\n";
    }
    return 0;
}

}  // namespace mephisto::cli
