// Deploying to a whole cluster through the topic mephisto-__deployments: three hosts, each `mephisto run DIR
// --deployments BROKER --trust KEY.pub` on an empty directory. `mephisto deploy` of a pipeline and its plugin
// reaches all three, which share its partitions; a new plugin version rolled out the same way is swapped on all
// three with no rebalance; a manifest altered after signing, and one signed by another key, are refused on every
// host and change nothing; `mephisto undeploy` stops the pipeline everywhere; `mephisto deployments` says what each
// host applied and refused; PUT /pipelines/NAME on one host's admin API publishes a manifest signed elsewhere.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace mephisto::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kReloadBuilds = MEPHISTO_RELOAD_PLUGIN_DIR;  // stamp_v1.so, stamp_v2.so
const std::vector<std::string> kHosts = {"alpha", "beta", "gamma"};

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

struct Cluster {
    Broker broker;
    TempDir dir;
    std::map<std::string, std::unique_ptr<HostProcess>> hosts;
    std::map<std::string, std::string> admin;

    Cluster() {
        broker.create_topic("in", 4);
        broker.create_topic("out", 4);
        broker.create_topic("mephisto-__deployments", 1);
        REQUIRE(cli({"deploy", "keygen", "--secret", path("deployer.key").string(), "--public", path("deployer.pub").string()}) == 0);
        for (const auto& id : kHosts) {
            fs::create_directories(path(id));
            hosts[id] = start_host(path(id), broker.bootstrap(), path(id + ".log"),
                                   {"--deployments", broker.bootstrap(), "--trust", path("deployer.pub").string(),
                                    "--host-id", id},
                                   false);
            admin[id] = admin_address(*hosts[id]);
        }
        for (const auto& id : kHosts) REQUIRE(hosts[id]->await_log("following deployments on", 30s));
    }
    fs::path path(const std::string& name) const { return dir.path() / name; }
    int cli(const std::vector<std::string>& args, std::string* out = nullptr) const {
        std::string text;
        const int status = run_cli(args, dir, text).value_or(-1);
        if (out) *out = text;
        INFO(text);
        return status;
    }
    int deploy(const fs::path& plugin, const std::string& key = "deployer.key") const {
        return cli({"deploy", path("shop.yaml").string(), plugin.string(), "--broker", broker.bootstrap(), "--key",
                    path(key).string()});
    }
    // The shop pipeline as the host's supervisor lists it; null when it does not run there.
    json shop(const std::string& id) const {
        const HttpReply r = http_get(admin.at(id), "/pipelines");
        if (r.status != 200) return nullptr;
        const json list = json::parse(r.body, nullptr, false);
        if (!list.is_array()) return nullptr;
        for (const auto& p : list)
            if (p.value("app", std::string()) == "shop" && p.contains("partitions")) return p;
        return nullptr;
    }
    // Every host runs shop, and the three hold its four partitions between them.
    bool shop_shared() const {
        size_t partitions = 0;
        for (const auto& id : kHosts) {
            const json p = shop(id);
            if (p.is_null() || p["state"] != "running" || p["partitions"].empty()) return false;
            partitions += p["partitions"].size();
        }
        return partitions == 4;
    }
    json deployments() const {
        std::string out;
        if (cli({"deployments", "--broker", broker.bootstrap(), "--json"}, &out) != 0) return nullptr;
        const auto start = out.find('{');
        return start == std::string::npos ? nullptr : json::parse(out.substr(start), nullptr, false);
    }
    // What host `id` last reported refusing.
    std::vector<std::string> refusals(const std::string& id) const {
        std::vector<std::string> out;
        const json d = deployments();
        if (!d.is_object()) return out;
        for (const auto& h : d["hosts"])
            if (h["host"] == id)
                for (const auto& r : h["refused"]) out.push_back(r["why"]);
        return out;
    }
};

}  // namespace

TEST_CASE("a pipeline and its plugin deployed through the topic reach three hosts: roll-out, forgery, undeploy") {
    Cluster c;
    fs::create_directories(c.path("release"));
    fs::copy_file(kReloadBuilds / "stamp_v1.so", c.path("release/stamp.so"));
    std::ofstream(c.path("shop.yaml")) << "app: {id: shop}\n"
                                           "plugins: {dir: plugins.d/shop}\n"
                                           "consumer: {session.timeout.ms: 4000, heartbeat.interval.ms: 300}\n"
                                           "topics: {in: {partitions: 4}, out: {partitions: 4}}\n"
                                           "agents:\n  stamp: {plugin: stamp, from: in, sinks: [out]}\n";

    // A deploy reaches all three: the file and the plugin written on each, the pipeline run by each.
    REQUIRE(c.deploy(c.path("release/stamp.so")) == 0);
    REQUIRE(await([&] { return c.shop_shared(); }, 90s));
    for (const auto& id : kHosts) {
        CHECK(read_file(c.path(id) / "shop.yaml") == read_file(c.path("shop.yaml")));
        CHECK(fs::exists(c.path(id) / "plugins.d" / "shop" / "stamp.so"));
    }
    produce_sequence(c.broker.bootstrap(), "in", 0, 40, 8);
    TopicReader out(c.broker.bootstrap(), "out", 4);
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 40; }, 60s));
    for (const auto& r : out.records()) CHECK(r.value->rfind("v1:", 0) == 0);

    // A new plugin version, rolled out the same way: swapped on all three, no rebalance anywhere.
    std::map<std::string, json> before;
    for (const auto& id : kHosts) before[id] = c.shop(id);
    fs::copy_file(kReloadBuilds / "stamp_v2.so", c.path("release/stamp.so"), fs::copy_options::overwrite_existing);
    REQUIRE(c.deploy(c.path("release/stamp.so")) == 0);
    for (const auto& id : kHosts) REQUIRE(c.hosts[id]->await_log("plugin stamp swapped", 60s));
    produce_sequence(c.broker.bootstrap(), "in", 40, 40, 8);
    REQUIRE(out.read_until([](const std::vector<Record>& r) { return r.size() >= 80; }, 60s));
    int v2 = 0;
    for (size_t i = 40; i < out.records().size(); ++i) v2 += out.records()[i].value->rfind("v2:", 0) == 0 ? 1 : 0;
    CHECK(v2 == 40);
    for (const auto& id : kHosts) {
        const json now = c.shop(id);
        CHECK_MESSAGE(now["rebalances"] == before[id]["rebalances"], id);  // the swap moved no partition
        CHECK(now["partitions"].size() == before[id]["partitions"].size());
    }

    // A manifest altered after signing (another pipeline file under the same signature, a newer version) and one
    // signed by a key the hosts do not trust: refused everywhere, nothing written, the pipeline untouched.
    TopicReader topic(c.broker.bootstrap(), "mephisto-__deployments", 1);
    REQUIRE(topic.read_to_end(30s));
    json manifest;
    for (const auto& r : topic.records())
        if (r.key && *r.key == "pipeline/shop") manifest = json::parse(*r.value);
    REQUIRE(manifest.is_object());
    manifest["file"] = manifest["file"].get<std::string>() + "workers: 8\n";
    manifest["version"] = manifest["version"].get<uint64_t>() + 1;
    produce(c.broker.bootstrap(), "mephisto-__deployments", {{"pipeline/shop", manifest.dump(), {}, 0}});
    REQUIRE(c.cli({"deploy", "keygen", "--secret", c.path("intruder.key").string(), "--public",
                   c.path("intruder.pub").string()}) == 0);
    REQUIRE(c.deploy(c.path("release/stamp.so"), "intruder.key") == 0);  // the topic takes it; no host will
    for (const auto& id : kHosts) {
        REQUIRE(await([&] {
            const auto why = c.refusals(id);
            auto has = [&](const std::string& text) {
                return std::any_of(why.begin(), why.end(), [&](const std::string& w) { return w.find(text) != std::string::npos; });
            };
            return has("altered after signing") && has("not by the trusted key");
        }, 30s));
        CHECK(read_file(c.path(id) / "shop.yaml") == read_file(c.path("shop.yaml")));
        CHECK(c.hosts[id]->count_in_log("plugin stamp swapped") == 1);
        CHECK(c.shop(id)["rebalances"] == before[id]["rebalances"]);
    }

    // PUT /pipelines/NAME on one host's admin API, with a manifest the deployer signed (deploy --print): published
    // for all three. The same manifest altered is refused there with the reason, and nothing is published.
    std::string printed;
    REQUIRE(c.cli({"deploy", c.path("shop.yaml").string(), "--broker", c.broker.bootstrap(), "--key",
                   c.path("deployer.key").string(), "--print"}, &printed) == 0);
    const std::string signed_manifest = printed.substr(printed.rfind("\n{") + 1);
    const uint64_t put_version = json::parse(signed_manifest)["version"];
    auto put = [&](const std::string& body) {
        return http_raw(c.admin["beta"], "PUT /pipelines/shop HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    };
    json tampered = json::parse(signed_manifest);
    tampered["file"] = tampered["file"].get<std::string>() + "workers: 8\n";
    const HttpReply refused_put = put(tampered.dump());
    CHECK(refused_put.status == 422);
    CHECK(refused_put.body.find("altered after signing") != std::string::npos);
    const HttpReply accepted = put(signed_manifest);
    CHECK(accepted.status == 202);
    for (const auto& id : kHosts)
        REQUIRE(await([&] {
            const json d = c.deployments();
            if (!d.is_object()) return false;
            for (const auto& h : d["hosts"])
                if (h["host"] == id)
                    for (const auto& a : h["applied"])
                        if (a["pipeline"] == "shop" && a["version"] == put_version) return true;
            return false;
        }, 30s));
    for (const auto& id : kHosts) CHECK(read_file(c.path(id) / "shop.yaml") == read_file(c.path("shop.yaml")));

    // Undeploy: the pipeline stops on all three, its file gone.
    REQUIRE(c.cli({"undeploy", "shop", "--broker", c.broker.bootstrap(), "--key", c.path("deployer.key").string()}) == 0);
    for (const auto& id : kHosts) {
        REQUIRE(await([&] { return c.shop(id).is_null(); }, 60s));
        CHECK(!fs::exists(c.path(id) / "shop.yaml"));
    }
    std::string listing;
    REQUIRE(c.cli({"deployments", "--broker", c.broker.bootstrap()}, &listing) == 0);
    MESSAGE(listing);
    CHECK(listing.find("shop version") != std::string::npos);
    CHECK(listing.find("(undeployed)") != std::string::npos);
    for (const auto& id : kHosts) CHECK(listing.find("host " + id) != std::string::npos);
    CHECK(listing.find("REFUSED shop") != std::string::npos);
    for (const auto& id : kHosts) {
        const auto code = c.hosts[id]->stop(SIGTERM, 30s);
        CHECK_MESSAGE(code == 0, id << " exited " << (code ? std::to_string(*code) : "late") << "; its log:\n"
                                    << c.hosts[id]->log());
    }
}
