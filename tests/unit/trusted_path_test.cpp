// Plugins and pipeline files beyond other users' reach (common/trusted_path.hpp; sshd's StrictModes).
// Ownership cases need root to hand files to another user (uid 65534, nobody); the tests run as root.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/trusted_path.hpp"
#include "temp_dir.hpp"

using namespace mephisto;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kNobody = 65534;

// <tmp>/d/plugin.so, both 0755 and this user's.
struct Tree {
    test::TempDir tmp;
    fs::path dir = tmp.path() / "d";
    fs::path file = dir / "plugin.so";
    Tree() {
        fs::create_directories(dir);
        std::ofstream(file) << "x";
        ::chmod(tmp.path().c_str(), 0755);
        ::chmod(dir.c_str(), 0755);
        ::chmod(file.c_str(), 0755);
    }
};

std::string refusal(const fs::path& file) {
    auto st = check_trusted_file(file, "plugin");
    REQUIRE_FALSE(st.ok());
    return st.error();
}

}  // namespace

TEST_CASE("trusted path: a file of this user's in closed directories is accepted") {
    Tree t;
    auto st = check_trusted_file(t.file, "plugin");
    CHECK_MESSAGE(st.ok(), (st.ok() ? "" : st.error()));
}

TEST_CASE("trusted path: a file its group or every user may write is refused with chmod go-w") {
    Tree t;
    ::chmod(t.file.c_str(), 0775);
    CHECK(refusal(t.file) == t.file.string() + ": refused: the plugin " + t.file.string() +
                                 " is writable by its group (mode 0775); fix: chmod go-w " + t.file.string());
    ::chmod(t.file.c_str(), 0757);
    CHECK(refusal(t.file).find("is writable by every user (mode 0757)") != std::string::npos);
}

TEST_CASE("trusted path: any directory up to / that others may write is refused, naming it") {
    Tree t;
    ::chmod(t.tmp.path().c_str(), 0777);  // the grandparent
    CHECK(refusal(t.file) == t.file.string() + ": refused: its directory " + t.tmp.path().string() +
                                 " is writable by every user (mode 0777), who could replace the plugin; fix: chmod go-w " +
                                 t.tmp.path().string());
    ::chmod(t.tmp.path().c_str(), 0755);
    ::chmod(t.dir.c_str(), 0775);
    CHECK(refusal(t.file).find("its directory " + t.dir.string() + " is writable by its group") != std::string::npos);
}

TEST_CASE("trusted path: a sticky directory may be shared, not its files with other owners") {
    Tree t;
    ::chmod(t.dir.c_str(), 01777);
    CHECK(check_trusted_file(t.file, "plugin").ok());
    if (::geteuid() != 0) return;  // handing a file to another user takes root
    REQUIRE(::chown(t.file.c_str(), kNobody, kNobody) == 0);
    CHECK(refusal(t.file).find("the plugin " + t.file.string() + " is owned by uid 65534") != std::string::npos);
}

TEST_CASE("trusted path: a directory owned by another user is refused") {
    Tree t;
    if (::geteuid() != 0) return;
    REQUIRE(::chown(t.dir.c_str(), kNobody, kNobody) == 0);
    CHECK(refusal(t.file).find("its directory " + t.dir.string() + " is owned by uid 65534") != std::string::npos);
}

TEST_CASE("trusted path: a link is judged as given and as resolved") {
    Tree t;
    const fs::path open_dir = t.tmp.path() / "open";
    fs::create_directories(open_dir);
    ::chmod(open_dir.c_str(), 0777);
    // A link in a closed directory to a file in an open one: the file could be replaced where it lives.
    fs::rename(t.file, open_dir / "real.so");
    fs::create_symlink(open_dir / "real.so", t.file);
    CHECK(refusal(t.file).find("its directory " + open_dir.string() + " is writable by every user") != std::string::npos);
    // A link in an open directory to a file in a closed one: the link itself could be replaced.
    fs::remove(t.file);
    fs::rename(open_dir / "real.so", t.file);
    fs::create_symlink(t.file, open_dir / "link.so");
    CHECK(refusal(open_dir / "link.so").find("its directory " + open_dir.string()) != std::string::npos);
}

TEST_CASE("trusted path: what is not a regular file, or is not there, says so") {
    Tree t;
    CHECK(refusal(t.dir) == t.dir.string() + ": not a regular file");
    CHECK(refusal(t.dir / "nope.so") == (t.dir / "nope.so").string() + ": cannot open: No such file or directory");
}

TEST_CASE("private dir: made 0700, an open one of this user's is closed, a link or another user's is refused") {
    test::TempDir tmp;
    const fs::path dir = tmp.path() / "private";
    REQUIRE(ensure_private_dir(dir).ok());
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    ::chmod(dir.c_str(), 0777);
    REQUIRE(ensure_private_dir(dir).ok());
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);

    const fs::path link = tmp.path() / "link";
    fs::create_directory_symlink(dir, link);
    auto refused = ensure_private_dir(link);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().find("is not a directory of this host's") != std::string::npos);
    if (::geteuid() != 0) return;
    REQUIRE(::chown(dir.c_str(), kNobody, kNobody) == 0);
    refused = ensure_private_dir(dir);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().find("is owned by uid 65534") != std::string::npos);
}
