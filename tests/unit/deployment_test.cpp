// Deployment manifests (deploy/deployment): signed with Ed25519 and refused once altered or signed by another key;
// parsed from the topic with every name a plain file name and every size and count bounded; key files.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "deploy/deployment.hpp"
#include "temp_dir.hpp"

using namespace mephisto;
using nlohmann::json;

namespace {

Manifest sample() {
    Manifest m;
    m.name = "shop";
    m.version = 42;
    m.file = "app: {id: shop}\n";
    DeployedPlugin p;
    p.name = "stamp.so";
    p.size = 3;
    p.sha256 = sha256_hex("abc");
    p.chunks = {sha256_hex("abc")};
    m.plugins = {p};
    return m;
}

}  // namespace

TEST_CASE("deployment: SHA-256 is the standard one") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("deployment: a signed manifest verifies, and altered in any part or signed by another key it does not") {
    const auto [pk, sk] = new_key_pair();
    const auto [other_pk, other_sk] = new_key_pair();
    Manifest m = sample();
    sign(m, sk);
    CHECK(verify(m, pk));
    auto round = Manifest::from_json(m.to_json());
    REQUIRE(round);
    CHECK(verify(*round, pk));  // what travels through the topic still verifies

    for (auto alter : std::vector<std::function<void(Manifest&)>>{
             [](Manifest& x) { x.file += "workers: 8\n"; }, [](Manifest& x) { x.version += 1; },
             [](Manifest& x) { x.deleted = true; }, [](Manifest& x) { x.plugins[0].sha256 = sha256_hex("abd"); },
             [](Manifest& x) { x.name = "shop2"; }}) {
        Manifest altered = m;
        alter(altered);
        const auto st = verify(altered, pk);
        REQUIRE(!st);
        CHECK(st.error().find("altered after signing") != std::string::npos);
    }
    const auto foreign = verify(m, other_pk);
    REQUIRE(!foreign);
    CHECK(foreign.error().find("not by the trusted key") != std::string::npos);
    Manifest unsigned_one = sample();
    CHECK(!verify(unsigned_one, pk));
    Manifest resigned = m;
    sign(resigned, other_sk);  // a valid signature, of the wrong signer
    CHECK(!verify(resigned, pk));
}

TEST_CASE("deployment: a manifest from the topic is bounded and names only plain files") {
    const auto [pk, sk] = new_key_pair();
    Manifest m = sample();
    sign(m, sk);
    const json good = json::parse(m.to_json());
    auto refused = [&](const std::function<void(json&)>& change, const std::string& why) {
        json j = good;
        change(j);
        const auto parsed = Manifest::from_json(j.dump());
        REQUIRE_MESSAGE(!parsed, j.dump());
        CHECK_MESSAGE(parsed.error().find(why) != std::string::npos, parsed.error());
    };
    refused([](json& j) { j["name"] = "../etc"; }, "pipeline name");
    refused([](json& j) { j["name"] = ".hidden"; }, "pipeline name");
    refused([](json& j) { j["plugins"][0]["name"] = "../../bin/evil.so"; }, "plugin file name");
    refused([](json& j) { j["plugins"][0]["name"] = "stamp.txt"; }, "plugin file name");
    refused([](json& j) { j["plugins"][0]["size"] = 5'000'000; }, "chunks do not add up");
    refused([](json& j) { j["plugins"][0]["size"] = uint64_t{1} << 40; }, "larger than allowed");
    refused([](json& j) { j["plugins"][0]["sha256"] = "zz"; }, "malformed SHA-256");
    refused([](json& j) { j["file"] = std::string(300 * 1024, 'x'); }, "larger than");
    refused([](json& j) { j.erase("signature"); }, "malformed manifest");
    refused([](json& j) {
        for (int i = 0; i < 20; ++i) j["plugins"].push_back(j["plugins"][0]);
    }, "at most 16 plugins");
    CHECK(!Manifest::from_json("[1,2"));
    CHECK(!Manifest::from_json(std::string(600, '[')));
    CHECK(Manifest::from_json(good.dump()));
}

TEST_CASE("deployment: key files, the secret one readable by its owner alone") {
    mephisto::test::TempDir dir;
    REQUIRE(write_key_pair(dir.path() / "k", dir.path() / "k.pub"));
    struct stat st {};
    REQUIRE(::stat((dir.path() / "k").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    const auto sk = read_secret_key(dir.path() / "k");
    const auto pk = read_public_key(dir.path() / "k.pub");
    REQUIRE(sk);
    REQUIRE(pk);
    Manifest m = sample();
    sign(m, sk.value());
    CHECK(verify(m, pk.value()));
    CHECK(!write_key_pair(dir.path() / "k", dir.path() / "k2.pub"));  // never overwrites a secret key
    CHECK(!read_public_key(dir.path() / "k"));                        // a secret key is no public key
    CHECK(!read_secret_key(dir.path() / "nothing"));
}
