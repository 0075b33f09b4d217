#pragma once
// Files the host runs or obeys (plugins, pipeline files) must be beyond the reach of other users, as sshd's
// StrictModes demands of authorized_keys: a user who can replace a plugin, or the directory entry that names
// it, gets their code run as the host's user (root, often). Checked at startup and at every reload.
#include <filesystem>
#include <string_view>

#include "common/result.hpp"

namespace mephisto {

// Refuses `file` (what: "plugin", "pipeline file") unless it is a regular file owned by root or by this
// process's effective user and not writable by group or others, and every directory from its parent up to /
// is owned by root or by this user and not writable by group or others. A directory with the sticky bit may be
// writable by others (like /tmp): nobody else can rename or remove what this user or root owns in it. A
// symbolic link is checked twice: the path as given, then the path it resolves to. The error names the path
// at fault and the command that fixes it.
Status check_trusted_file(const std::filesystem::path& file, std::string_view what);

// Creates `dir` (mode 0700) if needed and makes sure it is a directory, not a link, owned by this user, and
// closed to everyone else (an open one of this user's is closed): where the host makes the folders for files
// it is about to load (the plugins' private copies).
Status ensure_private_dir(const std::filesystem::path& dir);

}  // namespace mephisto
