#include "common/trusted_path.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace mephisto {
namespace {

namespace fs = std::filesystem;

std::string user_name(uid_t uid) {
    passwd entry{};
    passwd* found = nullptr;
    char buffer[1024];
    std::string text = "uid " + std::to_string(uid);
    if (getpwuid_r(uid, &entry, buffer, sizeof buffer, &found) == 0 && found) text += std::string(" (") + found->pw_name + ")";
    return text;
}

std::string octal(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

bool trusted_owner(uid_t uid) { return uid == 0 || uid == geteuid(); }

// The file and each directory above it, as `path` names them (stat follows links: a linked directory is judged
// by what it points at, and the resolved path is checked on its own afterwards). Errors start with `named`.
Status check_chain(const fs::path& path, std::string_view what, const std::string& named) {
    const std::string refused = named + ": refused: ";
    auto by = [](mode_t mode) { return std::string((mode & S_IWOTH) ? "every user" : "its group"); };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return make_error(named + ": cannot open: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return make_error(named + ": not a regular file");
    if (!trusted_owner(st.st_uid))
        return make_error(refused + "the " + std::string(what) + " " + path.string() + " is owned by " +
                          user_name(st.st_uid) + ", neither root nor this host's user (" + user_name(geteuid()) +
                          "); fix: chown " + std::to_string(geteuid()) + " " + path.string());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return make_error(refused + "the " + std::string(what) + " " + path.string() + " is writable by " + by(st.st_mode) +
                          " (mode " + octal(st.st_mode) + "); fix: chmod go-w " + path.string());
    for (fs::path dir = path.parent_path();; dir = dir.parent_path()) {
        if (::stat(dir.c_str(), &st) != 0)
            return make_error(refused + "cannot check its directory " + dir.string() + ": " + std::strerror(errno));
        if (!trusted_owner(st.st_uid))
            return make_error(refused + "its directory " + dir.string() + " is owned by " + user_name(st.st_uid) +
                              ", neither root nor this host's user, who could replace the " + std::string(what) +
                              "; fix: chown " + std::to_string(geteuid()) + " " + dir.string() +
                              ", or move the " + std::string(what) + " elsewhere");
        // A sticky directory (like /tmp) may be shared: others cannot rename or remove what they do not own.
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            return make_error(refused + "its directory " + dir.string() + " is writable by " + by(st.st_mode) + " (mode " +
                              octal(st.st_mode) + "), who could replace the " + std::string(what) + "; fix: chmod go-w " +
                              dir.string());
        if (dir == dir.root_path() || dir.empty()) break;
    }
    return {};
}

}  // namespace

Status check_trusted_file(const fs::path& file, std::string_view what) {
    std::error_code ec;
    const fs::path given = fs::absolute(file, ec).lexically_normal();
    if (ec) return make_error(file.string() + ": " + ec.message());
    if (auto st = check_chain(given, what, file.string()); !st) return st;
    const fs::path resolved = fs::canonical(given, ec);
    if (ec) return make_error(file.string() + ": " + ec.message());
    if (resolved != given)
        if (auto st = check_chain(resolved, what, file.string() + " (" + resolved.string() + ")"); !st) return st;
    return {};
}

Status ensure_private_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return make_error("cannot create " + dir.string() + ": " + std::strerror(errno));
    // Opened without following a link, then judged and fixed through the descriptor: no race with a rename.
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return make_error(dir.string() + " is not a directory of this host's (" + std::strerror(errno) +
                          "): someone put something else there; remove it, or set TMPDIR to a directory of your own");
    struct stat st {};
    Status result;
    if (::fstat(fd, &st) != 0) {
        result = make_error("cannot check " + dir.string() + ": " + std::strerror(errno));
    } else if (st.st_uid != geteuid()) {
        result = make_error(dir.string() + " is owned by " + user_name(st.st_uid) + ", not by this host's user: " +
                            "someone else made it; remove it, or set TMPDIR to a directory of your own");
    } else if ((st.st_mode & 077) && ::fchmod(fd, 0700) != 0) {  // ours, left open by an older version: close it
        result = make_error("cannot close " + dir.string() + " to other users: " + std::strerror(errno));
    }
    ::close(fd);
    return result;
}

}  // namespace mephisto
