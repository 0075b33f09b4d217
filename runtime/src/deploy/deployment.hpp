#pragma once
// A deployment: a pipeline file and its plugins, published to the compacted topic `mephisto-__deployments`, which
// every host started with --deployments follows (Kafka Connect keeps connector configs in a topic the same way;
// Mephisto ships the plugins too). On the topic:
//   key "pipeline/<name>"      the manifest, JSON: the pipeline file's text, each plugin's name, size, SHA-256 and
//                              the SHA-256 of each of its chunks, a version (refused when not newer than what a
//                              host applied), `deleted` for an undeploy, and an Ed25519 signature over all of it;
//   key "chunk/<sha256>"       a piece of a plugin (at most kChunkBytes), content-addressed;
//   key "status/<host id>"     what a host applied and refused, and why (informational, unsigned).
// A host accepts a manifest only when it is signed by the key it trusts; chunks are checked against the hashes
// the signed manifest lists, so nothing unsigned reaches a disk. Everything read is hostile until verified: sizes
// and counts are bounded, and names are plain file names (no path).
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mephisto {

inline constexpr const char* kDeploymentsTopic = "mephisto-__deployments";
inline constexpr size_t kChunkBytes = 512 * 1024;             // under the brokers' default message size limit
inline constexpr size_t kMaxPluginBytes = 64ull << 20;        // one plugin
inline constexpr size_t kMaxPluginsPerDeployment = 16;
inline constexpr size_t kMaxManifestBytes = 512 * 1024;       // the pipeline file's text is inside
inline constexpr size_t kMaxDeployedFileBytes = 256 * 1024;   // the pipeline file

// An Ed25519 key pair's halves, as libsodium holds them.
using PublicKey = std::array<unsigned char, 32>;
using SecretKey = std::array<unsigned char, 64>;

struct DeployedPlugin {
    std::string name;  // "<plugin>.so": a plain file name
    uint64_t size = 0;
    std::string sha256;               // hex, of the whole file
    std::vector<std::string> chunks;  // hex SHA-256 of each chunk, in order
};

struct Manifest {
    std::string name;      // the pipeline: its file is <name>.yaml, its shipped plugins under plugins.d/<name>/
    uint64_t version = 0;  // increasing (the deployer's clock in ms): a host refuses one not newer than it applied
    bool deleted = false;  // an undeploy
    std::string file;      // the pipeline file's text (empty when deleted)
    std::vector<DeployedPlugin> plugins;
    std::string signer;     // hex public key
    std::string signature;  // hex Ed25519 signature of signed_payload()

    // The bytes signed: the manifest as canonical JSON (sorted keys), without the signature.
    std::string signed_payload() const;
    std::string to_json() const;
    // Parses and bounds-checks a manifest read from the topic (not its signature: verify()).
    static Result<Manifest> from_json(std::string_view text);
};

// Whether `name` may name a deployed pipeline: letters, digits, '_', '-' and '.', 1 to 100 of them, not starting
// with '.'.
bool valid_deployment_name(std::string_view name);
// Whether `name` may name a shipped plugin file: as above, ending in ".so".
bool valid_plugin_file_name(std::string_view name);

std::string sha256_hex(std::string_view bytes);
std::string to_hex(const unsigned char* bytes, size_t size);

// Ed25519 (libsodium): a new key pair; signing a manifest (sets signer and signature); checking that it is signed
// by `trusted` and untouched since.
std::pair<PublicKey, SecretKey> new_key_pair();
void sign(Manifest& manifest, const SecretKey& key);
Status verify(const Manifest& manifest, const PublicKey& trusted);

// Key files: the secret key as 128 hex digits (written 0600), the public key as 64 hex digits.
Status write_key_pair(const std::filesystem::path& secret_file, const std::filesystem::path& public_file);
Result<SecretKey> read_secret_key(const std::filesystem::path& file);
Result<PublicKey> read_public_key(const std::filesystem::path& file);

// The record keys of the topic.
std::string manifest_key(const std::string& name);
std::string chunk_key(const std::string& sha256);
std::string status_key(const std::string& host);

}  // namespace mephisto
