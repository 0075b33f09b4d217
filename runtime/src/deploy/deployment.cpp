// Deployments on the topic: manifests, their signatures, key files (deploy/deployment.hpp).
#include "deploy/deployment.hpp"

#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "common/json_bounds.hpp"

namespace mephisto {
namespace {

using nlohmann::json;

void init_sodium() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    });
}

bool is_hex(std::string_view s, size_t size) {
    return s.size() == size && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool from_hex(std::string_view hex, unsigned char* out, size_t size) {
    if (!is_hex(hex, size * 2)) return false;
    for (size_t i = 0; i < size; ++i) out[i] = static_cast<unsigned char>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
    return true;
}

json unsigned_json(const Manifest& m) {
    json plugins = json::array();
    for (const auto& p : m.plugins)
        plugins.push_back({{"name", p.name}, {"size", p.size}, {"sha256", p.sha256}, {"chunks", p.chunks}});
    return {{"name", m.name}, {"version", m.version}, {"deleted", m.deleted}, {"file", m.file},
            {"plugins", plugins}, {"signer", m.signer}};
}

std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

}  // namespace

bool valid_deployment_name(std::string_view name) {
    if (name.empty() || name.size() > 100 || name.front() == '.') return false;
    return name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
           std::string_view::npos;
}

bool valid_plugin_file_name(std::string_view name) {
    return valid_deployment_name(name) && name.size() > 3 && name.substr(name.size() - 3) == ".so";
}

std::string to_hex(const unsigned char* bytes, size_t size) {
    static const char digits[] = "0123456789abcdef";
    std::string out(size * 2, '0');
    for (size_t i = 0; i < size; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    return out;
}

std::string sha256_hex(std::string_view bytes) {
    init_sodium();
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return to_hex(digest, sizeof digest);
}

std::string Manifest::signed_payload() const { return unsigned_json(*this).dump(); }  // std::map: sorted keys

std::string Manifest::to_json() const {
    json j = unsigned_json(*this);
    j["signature"] = signature;
    return j.dump();
}

Result<Manifest> Manifest::from_json(std::string_view text) {
    if (text.size() > kMaxManifestBytes) return make_error("a manifest larger than " + std::to_string(kMaxManifestBytes) + " bytes");
    if (auto deep = json_depth_error(text)) return make_error("manifest: " + *deep);
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return make_error("the manifest is not a JSON object");
    Manifest m;
    try {
        m.name = j.at("name").get<std::string>();
        m.version = j.at("version").get<uint64_t>();
        m.deleted = j.at("deleted").get<bool>();
        m.file = j.at("file").get<std::string>();
        m.signer = j.at("signer").get<std::string>();
        m.signature = j.at("signature").get<std::string>();
        const json& plugins = j.at("plugins");
        if (!plugins.is_array() || plugins.size() > kMaxPluginsPerDeployment)
            return make_error("a manifest ships at most " + std::to_string(kMaxPluginsPerDeployment) + " plugins");
        for (const auto& p : plugins) {
            DeployedPlugin d;
            d.name = p.at("name").get<std::string>();
            d.size = p.at("size").get<uint64_t>();
            d.sha256 = p.at("sha256").get<std::string>();
            d.chunks = p.at("chunks").get<std::vector<std::string>>();
            if (!valid_plugin_file_name(d.name)) return make_error("plugin file name '" + d.name + "' refused");
            if (d.size > kMaxPluginBytes) return make_error("plugin " + d.name + " is larger than allowed");
            if (!is_hex(d.sha256, 64)) return make_error("plugin " + d.name + ": a malformed SHA-256");
            if (d.chunks.size() != (d.size + kChunkBytes - 1) / kChunkBytes)
                return make_error("plugin " + d.name + ": its chunks do not add up to its size");
            for (const auto& c : d.chunks)
                if (!is_hex(c, 64)) return make_error("plugin " + d.name + ": a malformed chunk hash");
            m.plugins.push_back(std::move(d));
        }
    } catch (const std::exception& e) {
        return make_error(std::string("a malformed manifest: ") + e.what());
    }
    if (!valid_deployment_name(m.name)) return make_error("pipeline name '" + m.name + "' refused");
    if (m.file.size() > kMaxDeployedFileBytes) return make_error("the pipeline file is larger than allowed");
    return m;
}

std::pair<PublicKey, SecretKey> new_key_pair() {
    init_sodium();
    PublicKey pk{};
    SecretKey sk{};
    crypto_sign_keypair(pk.data(), sk.data());
    return {pk, sk};
}

void sign(Manifest& m, const SecretKey& key) {
    init_sodium();
    PublicKey pk{};
    crypto_sign_ed25519_sk_to_pk(pk.data(), key.data());
    m.signer = to_hex(pk.data(), pk.size());
    const std::string payload = m.signed_payload();
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), key.data());
    m.signature = to_hex(sig, sizeof sig);
}

Status verify(const Manifest& m, const PublicKey& trusted) {
    init_sodium();
    if (m.signature.empty()) return make_error("unsigned");
    unsigned char sig[crypto_sign_BYTES];
    if (!from_hex(m.signature, sig, sizeof sig)) return make_error("a malformed signature");
    if (m.signer != to_hex(trusted.data(), trusted.size()))
        return make_error("signed by " + m.signer.substr(0, 16) + "..., not by the trusted key");
    const std::string payload = m.signed_payload();
    if (crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(payload.data()), payload.size(),
                                    trusted.data()) != 0)
        return make_error("the signature does not match its content (altered after signing)");
    return {};
}

Status write_key_pair(const std::filesystem::path& secret_file, const std::filesystem::path& public_file) {
    const auto [pk, sk] = new_key_pair();
    std::error_code ec;
    if (std::filesystem::exists(secret_file, ec)) return make_error(secret_file.string() + " exists already");
    {
        const mode_t old = ::umask(077);  // the secret key readable by its owner alone, from the start
        std::ofstream out(secret_file);
        out << to_hex(sk.data(), sk.size()) << "\n";
        ::umask(old);
        if (!out.flush()) return make_error("cannot write " + secret_file.string());
    }
    std::ofstream pub(public_file);
    pub << to_hex(pk.data(), pk.size()) << "\n";
    if (!pub.flush()) return make_error("cannot write " + public_file.string());
    return {};
}

Result<SecretKey> read_secret_key(const std::filesystem::path& file) {
    SecretKey key{};
    if (!from_hex(read_text(file), key.data(), key.size()))
        return make_error(file.string() + ": not a secret key (128 hex digits, as `mephisto deploy keygen` writes)");
    return key;
}

Result<PublicKey> read_public_key(const std::filesystem::path& file) {
    PublicKey key{};
    if (!from_hex(read_text(file), key.data(), key.size()))
        return make_error(file.string() + ": not a public key (64 hex digits, as `mephisto deploy keygen` writes)");
    return key;
}

std::string manifest_key(const std::string& name) { return "pipeline/" + name; }
std::string chunk_key(const std::string& sha256) { return "chunk/" + sha256; }
std::string status_key(const std::string& host) { return "status/" + host; }

}  // namespace mephisto
