// The Debian package: `cmake --build build --target package` builds it, `dpkg -i` installs it on this machine
// (the test runs as root; it refuses to touch a mephisto package installed by someone else), and then: the files
// are where they belong, `mephisto --version` runs, the system user exists, `systemd-analyze verify` accepts the
// unit without a word, and the unit's command, run as its user, says READY=1 on $NOTIFY_SOCKET and processes the
// example pipeline's events. `dpkg --purge` then leaves nothing behind (and runs whatever happens to the test).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "notify_socket.hpp"

using namespace mephisto::test;
namespace fs = std::filesystem;

namespace {

// Runs `command`; without `status`, it must succeed.
std::string run(const std::string& command, int* status = nullptr) {
    std::string out;
    const int s = shell(command + " 2>&1", out);
    if (status) {
        *status = s;
        return out;
    }
    INFO(command << "\n" << out);
    REQUIRE(s == 0);
    return out;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Purges the package however the test ends.
struct Installed {
    ~Installed() {
        std::string ignored;
        shell("dpkg --purge mephisto >/dev/null 2>&1", ignored);
    }
};

}  // namespace

TEST_CASE("the Debian package builds, installs its files, user and service, runs as the service would, and purges") {
    REQUIRE_MESSAGE(::getuid() == 0, "dpkg -i needs root");
    int status = 0;
    run("dpkg-query -W -f='${Status}' mephisto", &status);
    REQUIRE_MESSAGE(status != 0, "a mephisto package is installed on this machine already; this test installs and "
                                 "purges its own, so it leaves that one alone");

    run("cmake --build '" MEPHISTO_BUILD_DIR "' --target package");
    const fs::path deb = fs::path(MEPHISTO_BUILD_DIR) / "packages" / ("mephisto_" MEPHISTO_VERSION "_amd64.deb");
    REQUIRE(fs::exists(deb));
    const std::string control = run("dpkg-deb -I '" + deb.string() + "'");
    CHECK(control.find("Depends: adduser") != std::string::npos);
    CHECK(control.find("librdkafka1") != std::string::npos);  // from the binary (dpkg-shlibdeps)

    Installed installed;
    run("dpkg -i '" + deb.string() + "'");
    for (const char* file : {"/usr/bin/mephisto", "/usr/lib/systemd/system/mephisto.service", "/etc/default/mephisto",
                             "/etc/mephisto/pipelines.d/hello_world.yaml", "/usr/lib/mephisto/plugins/hello_world.so",
                             "/usr/include/mephisto/mephisto.h", "/usr/lib/cmake/Mephisto/MephistoConfig.cmake",
                             "/usr/share/pkgconfig/mephisto.pc", "/usr/share/doc/mephisto/README.md"})
        CHECK_MESSAGE(fs::exists(file), file);
    CHECK(run("/usr/bin/mephisto --version") == "mephisto " MEPHISTO_VERSION " (plugin ABI 1.4)\n");
    const passwd* user = ::getpwnam("mephisto");
    REQUIRE(user);
    struct stat state {};
    REQUIRE(::stat("/var/lib/mephisto", &state) == 0);
    CHECK(state.st_uid == user->pw_uid);
    CHECK(run("/usr/bin/mephisto validate /etc/mephisto/pipelines.d/hello_world.yaml").find(": ok (app hello_world") !=
          std::string::npos);

    // The unit: systemd's own check says nothing (it warns on stdout/stderr, exit code 0, for what it ignores).
    const std::string verify = run("systemd-analyze verify /usr/lib/systemd/system/mephisto.service");
    CHECK_MESSAGE(verify.empty(), verify);
    const std::string unit = read_file("/usr/lib/systemd/system/mephisto.service");
    for (const char* line : {"Type=notify", "User=mephisto", "ExecStart=/usr/bin/mephisto run /etc/mephisto/pipelines.d",
                             "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict"})
        CHECK_MESSAGE(unit.find(line) != std::string::npos, line);

    // The unit's command, as its user, in its working directory, with $NOTIFY_SOCKET as systemd sets it (on the
    // test's broker rather than the example's embedded one, and any free admin port: MEPHISTO_OPTS' job).
    Broker broker;
    broker.create_topic("greetings", 4);
    TempDir dir;
    fs::permissions(dir.path(), fs::perms(0755));
    const fs::path socket = dir.path() / "notify.sock";
    NotifySocket systemd(socket);
    fs::permissions(socket, fs::perms(0666));
    const fs::path log = dir.path() / "service.log";
    // Its temporary files (plugin copies) in the test's directory, as PrivateTmp= keeps them out of /tmp.
    fs::create_directories(dir.path() / "tmp");
    fs::permissions(dir.path() / "tmp", fs::perms(01777));
    const std::string pid = run("cd /var/lib/mephisto && TMPDIR='" + (dir.path() / "tmp").string() + "' NOTIFY_SOCKET='" + socket.string() +
                                "' setpriv --reuid=mephisto --regid=mephisto --init-groups /usr/bin/mephisto run "
                                "/etc/mephisto/pipelines.d --broker kafka://" + broker.bootstrap() +
                                " --admin 127.0.0.1:0 > '" + log.string() + "' 2>&1 & echo $!");
    const pid_t service = std::stoi(pid);
    const auto ready = systemd.await("READY=1", 60s);
    INFO(read_file(log));
    REQUIRE(ready);
    CHECK(ready->sender == service);
    produce(broker.bootstrap(), "greetings", {{"k", "hello from the package", {}, -1}});
    CHECK(await([&] { return read_file(log).find("hello from the package") != std::string::npos; }, 60s));
    REQUIRE(::kill(service, SIGTERM) == 0);
    CHECK(systemd.await("STOPPING=1", 30s));
    CHECK(await([&] { return ::kill(service, 0) != 0; }, 60s));

    run("dpkg --purge mephisto");
    for (const char* gone : {"/usr/bin/mephisto", "/etc/mephisto", "/etc/default/mephisto", "/var/lib/mephisto",
                             "/usr/lib/systemd/system/mephisto.service", "/usr/include/mephisto"})
        CHECK_MESSAGE(!fs::exists(gone), gone);
}
