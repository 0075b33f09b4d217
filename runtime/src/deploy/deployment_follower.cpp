// A host following the deployments topic (deploy/deployment_follower.hpp).
#include "deploy/deployment_follower.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/thread_name.hpp"
#include "common/wall_clock.hpp"
#include "kafka/topic_admin.hpp"

namespace mephisto {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxCachedChunkBytes = 512ull << 20;  // chunks read and not yet written, over all plugins
constexpr size_t kRefusalsKept = 20;
constexpr const char* kStateFile = ".deployments.json";

// `bytes` as `dir/name`: written beside as `.name.partial` (mode `mode`), flushed, then renamed over it, so a
// watcher sees the old file or the new one, never a part. Unchanged content is not rewritten.
Status replace_file(const fs::path& dir, const std::string& name, std::string_view bytes, fs::perms mode) {
    const fs::path target = dir / name;
    std::error_code ec;
    if (fs::exists(target, ec) && fs::file_size(target, ec) == bytes.size()) {
        std::ifstream in(target, std::ios::binary);
        std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (old == bytes) return {};
    }
    const fs::path partial = dir / ("." + name + ".partial");
    {
        std::ofstream out(partial, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out.flush()) return make_error("cannot write " + partial.string());
    }
    fs::permissions(partial, mode, ec);
    fs::rename(partial, target, ec);
    if (ec) return make_error("cannot rename " + partial.string() + " to " + target.string() + ": " + ec.message());
    return {};
}

}  // namespace

Result<std::unique_ptr<DeploymentFollower>> DeploymentFollower::start(DeploymentFollowerOptions options) {
    std::error_code ec;
    if (!fs::is_directory(options.dir, ec))
        return make_error("--deployments: " + options.dir.string() + " is not a directory (run a pipelines directory)");
    std::unique_ptr<DeploymentFollower> f(new DeploymentFollower(std::move(options)));
    f->load_state();
    // The follower's threads (its own and librdkafka's) take no signal: the host's signal handling stays as it is.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    auto restore = [&] { pthread_sigmask(SIG_SETMASK, &previous, nullptr); };
    const std::map<std::string, std::string> common = {{"bootstrap.servers", f->o_.bootstrap},
                                                       {"client.id", "mephisto-deployments"}};
    const std::map<std::string, std::string> consumer_conf = {
        {"group.id", "mephisto-deployments-" + f->o_.host_id},  // never joined nor committed: assign() only
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"}};
    const std::map<std::string, std::string> producer_conf = {{"acks", "all"}, {"linger.ms", "5"}};
    auto cconf = make_conf({&common, &consumer_conf});
    auto pconf = make_conf({&common, &producer_conf});
    if (!cconf || !pconf) {
        restore();
        return make_error("--deployments: " + (cconf ? pconf.error() : cconf.error()));
    }
    route_logs(cconf->get());
    route_logs(pconf->get());
    auto consumer = make_client(RD_KAFKA_CONSUMER, std::move(*cconf));
    auto producer = make_client(RD_KAFKA_PRODUCER, std::move(*pconf));
    if (!consumer || !producer) {
        restore();
        return make_error("--deployments: " + (consumer ? producer.error() : consumer.error()));
    }
    f->consumer_ = std::move(*consumer);
    f->producer_ = std::move(*producer);
    TopicAdmin admin(f->producer_.get(), nullptr, f->o_.log);
    if (auto st = admin.ensure(kDeploymentsTopic, 1); !st) {
        restore();
        return make_error("--deployments: " + st.error());
    }
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kDeploymentsTopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    const rd_kafka_resp_err_t err = rd_kafka_assign(f->consumer_.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        restore();
        return make_error(std::string("--deployments: assign: ") + rd_kafka_err2str(err));
    }
    f->thread_ = std::thread([p = f.get()] {
        name_this_thread("deployments");
        p->follow();
    });
    restore();
    f->o_.log->info("following deployments on {} ({}), into {}", kDeploymentsTopic, f->o_.bootstrap, f->o_.dir.string());
    return f;
}

DeploymentFollower::~DeploymentFollower() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (producer_) rd_kafka_flush(producer_.get(), 2000);
    if (consumer_) {
        rd_kafka_assign(consumer_.get(), nullptr);
        rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
}

void DeploymentFollower::follow() {
    while (!stop_) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 200);
        rd_kafka_poll(producer_.get(), 0);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!caught_up_) {
                caught_up_ = true;
                for (auto& [name, manifest] : pending_) apply(manifest);
                pending_.clear();
                // Shipped plugins of pipelines undeployed before: nothing runs them now.
                for (const auto& [name, deleted] : deleted_) {
                    std::error_code ec;
                    if (deleted && !fs::exists(o_.dir / (name + ".yaml"), ec)) fs::remove_all(o_.dir / "plugins.d" / name, ec);
                }
                publish_status();
            }
        } else if (m->err) {
            o_.log->warn("deployments: {}", rd_kafka_message_errstr(m));
        } else if (m->key) {
            const std::string key(static_cast<const char*>(m->key), m->key_len);
            const std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
            if (key.rfind("chunk/", 0) == 0) {
                const std::string sha = key.substr(6);
                if (sha256_hex(value) != sha) {
                    o_.log->warn("deployments: chunk {} does not match its hash; ignored", sha.substr(0, 16));
                } else if (std::lock_guard lock(chunks_mutex_); !chunks_.count(sha)) {
                    if (chunk_bytes_ + value.size() > kMaxCachedChunkBytes) {  // bounded: the oldest go
                        chunks_.clear();
                        chunk_bytes_ = 0;
                    }
                    chunk_bytes_ += value.size();
                    chunks_.emplace(sha, std::string(value));
                }
            } else if (key.rfind("pipeline/", 0) == 0) {
                on_manifest(key, value);
            }  // status/<host>: another host's report
        }
        rd_kafka_message_destroy(m);
    }
}

void DeploymentFollower::on_manifest(const std::string& key, std::string_view value) {
    const std::string name = key.substr(9);
    auto manifest = Manifest::from_json(value);
    if (!manifest) return refuse(name, 0, manifest.error());
    if (manifest->name != name) return refuse(name, manifest->version, "recorded under another pipeline's key");
    if (!caught_up_) {
        // Only the latest verified one of each counts: a forged manifest written after a good one must not keep a
        // new host from applying the good one.
        if (auto st = verify(*manifest, o_.trusted); !st) return refuse(name, manifest->version, st.error());
        pending_[name] = std::move(*manifest);
        return;
    }
    apply(*manifest);
    publish_status();
}

void DeploymentFollower::apply(const Manifest& m) {
    if (auto st = verify(m, o_.trusted); !st) return refuse(m.name, m.version, st.error());
    if (auto it = applied_.find(m.name); it != applied_.end()) {
        if (m.version == it->second) return;  // applied already (a restart reads it again)
        if (m.version < it->second)
            return refuse(m.name, m.version, "older than the version applied here (" + std::to_string(it->second) + ")");
    }
    std::error_code ec;
    if (m.deleted) {
        fs::remove(o_.dir / (m.name + ".yaml"), ec);
        o_.log->info("deployment {} version {}: undeployed, {}.yaml removed", m.name, m.version, m.name);
    } else {
        // Every plugin whole and matching before anything is written.
        std::lock_guard lock(chunks_mutex_);
        for (const auto& p : m.plugins)
            for (const auto& c : p.chunks)
                if (!chunks_.count(c))
                    return refuse(m.name, m.version, "plugin " + p.name + ": chunk " + c.substr(0, 16) + " is missing");
        for (const auto& p : m.plugins)
            if (auto st = write_plugin(m, p); !st) return refuse(m.name, m.version, st.error());
        if (auto st = replace_file(o_.dir, m.name + ".yaml", m.file, fs::perms(0644)); !st)
            return refuse(m.name, m.version, st.error());
        o_.log->info("deployment {} version {}: applied ({} plugin(s))", m.name, m.version, m.plugins.size());
    }
    applied_[m.name] = m.version;
    deleted_[m.name] = m.deleted;
    save_state();
}

Status DeploymentFollower::write_plugin(const Manifest& m, const DeployedPlugin& p) {
    std::string bytes;
    bytes.reserve(p.size);
    for (const auto& c : p.chunks) bytes += chunks_.at(c);
    if (bytes.size() != p.size || sha256_hex(bytes) != p.sha256)
        return make_error("plugin " + p.name + ": its chunks do not make the file the manifest names");
    const fs::path dir = o_.dir / "plugins.d" / m.name;
    std::error_code ec;
    fs::create_directories(dir, ec);
    // Not writable by others: the host refuses a plugin anyone else could replace.
    fs::permissions(o_.dir / "plugins.d", fs::perms(0755), ec);
    fs::permissions(dir, fs::perms(0755), ec);
    return replace_file(dir, p.name, bytes, fs::perms(0755));
}

Result<uint64_t> DeploymentFollower::publish(const std::string& name, std::string_view manifest_json) {
    auto m = Manifest::from_json(manifest_json);
    if (!m) return make_error(m.error());
    if (m->name != name) return make_error("the manifest is for pipeline " + m->name + ", not " + name);
    if (auto st = verify(*m, o_.trusted); !st) return make_error(st.error());
    {
        std::lock_guard lock(chunks_mutex_);
        for (const auto& p : m->plugins)
            for (const auto& c : p.chunks)
                if (!chunks_.count(c))
                    return make_error("plugin " + p.name + ": chunk " + c.substr(0, 16) +
                                      " is not on the topic (mephisto deploy --print publishes the chunks)");
    }
    const std::string key = manifest_key(name), value = m->to_json();
    if (rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(kDeploymentsTopic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
        return make_error("the manifest could not be sent");
    if (rd_kafka_flush(producer_.get(), 10'000)) return make_error("the broker did not take the manifest within 10 s");
    o_.log->info("deployment {} version {}: published through the admin API", name, m->version);
    return m->version;
}

void DeploymentFollower::refuse(const std::string& name, uint64_t version, const std::string& why) {
    o_.log->error("deployment {} version {} refused: {}; nothing of it was applied", name, version, why);
    refused_.push_back({name, version, why, wall_ms()});
    while (refused_.size() > kRefusalsKept) refused_.pop_front();
    if (caught_up_) publish_status();
}

void DeploymentFollower::load_state() {
    std::ifstream in(o_.dir / kStateFile);
    if (!in) return;
    std::stringstream text;
    text << in.rdbuf();
    const json j = json::parse(text.str(), nullptr, false);
    if (!j.is_object()) return;
    for (const auto& [name, entry] : j.items())
        if (entry.is_object() && entry.contains("version") && entry["version"].is_number_unsigned()) {
            applied_[name] = entry["version"].get<uint64_t>();
            deleted_[name] = entry.value("deleted", false);
        }
}

void DeploymentFollower::save_state() {
    json j = json::object();
    for (const auto& [name, version] : applied_) j[name] = {{"version", version}, {"deleted", deleted_[name]}};
    if (auto st = replace_file(o_.dir, kStateFile, j.dump(2), fs::perms(0644)); !st)
        o_.log->error("deployments: {}; a restart may apply older manifests again", st.error());
}

void DeploymentFollower::publish_status() {
    json applied = json::array(), refused = json::array();
    for (const auto& [name, version] : applied_)
        applied.push_back({{"pipeline", name}, {"version", version}, {"deleted", deleted_[name]}});
    for (const auto& r : refused_)
        refused.push_back({{"pipeline", r.name}, {"version", r.version}, {"why", r.why}, {"at_ms", r.at_ms}});
    const std::string key = status_key(o_.host_id);
    const std::string value = json{{"host", o_.host_id}, {"dir", o_.dir.string()}, {"at_ms", wall_ms()},
                                   {"applied", applied}, {"refused", refused}}.dump();
    if (rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(kDeploymentsTopic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
        o_.log->warn("deployments: this host's status could not be sent");
}

}  // namespace mephisto
