#include "server/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/error.h"
#include "common/log.h"

namespace spawnd::server {

namespace {

// The buffer size getpw*_r / getgr*_r want, from sysconf, grown on ERANGE by the callers.
std::size_t initial_buffer_size(int name) {
  const long n = ::sysconf(name);
  return n > 0 ? static_cast<std::size_t>(n) : 4096;
}

}  // namespace

Credentials resolve_credentials(const std::string& user, const std::string& group) {
  Credentials who;
  if (user.empty()) return who;

  std::vector<char> buf(initial_buffer_size(_SC_GETPW_R_SIZE_MAX));
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE) buf.resize(buf.size() * 2);
  if (rc != 0) throw Error(rc, "--user " + user + ": looking up the user");
  if (!found) throw ConfigError("--user " + user + ": no such user");
  who.user = user;
  who.uid = pw.pw_uid;
  who.gid = pw.pw_gid;

  std::vector<char> gbuf(initial_buffer_size(_SC_GETGR_R_SIZE_MAX));
  ::group gr{};
  ::group* gfound = nullptr;
  if (!group.empty()) {
    while ((rc = ::getgrnam_r(group.c_str(), &gr, gbuf.data(), gbuf.size(), &gfound)) == ERANGE)
      gbuf.resize(gbuf.size() * 2);
    if (rc != 0) throw Error(rc, "--group " + group + ": looking up the group");
    if (!gfound) throw ConfigError("--group " + group + ": no such group");
    who.gid = gr.gr_gid;
    who.group = group;
  } else {
    while ((rc = ::getgrgid_r(who.gid, &gr, gbuf.data(), gbuf.size(), &gfound)) == ERANGE)
      gbuf.resize(gbuf.size() * 2);
    // A primary group without a name in the group database is allowed (it happens in containers): log its number.
    who.group = gfound ? std::string(gr.gr_name) : std::to_string(who.gid);
  }
  return who;
}

void drop_privileges(const Credentials& who) {
  if (who.user.empty()) {
    if (::geteuid() == 0)
      SPAWND_LOG_WARN("running as root without --user: spawnd and every handler it starts run as root; give --user "
                      "NAME to switch to an unprivileged user once the listening socket is taken");
    return;
  }
  const std::string what = "--user " + who.user + " (uid " + std::to_string(who.uid) + ", gid " +
                           std::to_string(who.gid) + ")";
  if (::getuid() == who.uid && ::geteuid() == who.uid && ::getgid() == who.gid && ::getegid() == who.gid) {
    SPAWND_LOG_INFO("already running as %s: nothing to switch", what.c_str());
    return;
  }
  // Groups first: once the user id is no longer 0, changing them is no longer allowed.
  if (::initgroups(who.user.c_str(), who.gid) != 0)
    throw Error(errno, what + ": initgroups (spawnd must start as root to switch user)");
  if (::setresgid(who.gid, who.gid, who.gid) != 0) throw Error(errno, what + ": setresgid");
  if (::setresuid(who.uid, who.uid, who.uid) != 0) throw Error(errno, what + ": setresuid");

  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0)
    throw Error(errno, what + ": getresuid");
  if (ruid != who.uid || euid != who.uid || suid != who.uid || rgid != who.gid || egid != who.gid || sgid != who.gid)
    throw Error(EPERM, what + ": an id was left behind after the switch");
  // The check that matters: there is no way back. (For --user root there never was one to close.)
  if (who.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
    throw Error(EPERM, what + ": setuid(0) still succeeds after the switch");
  if (who.uid == 0) {
    SPAWND_LOG_WARN("--user %s is uid 0: spawnd and every handler it starts run as root", who.user.c_str());
    return;
  }
  SPAWND_LOG_INFO("running as user %s (uid %u), group %s (gid %u)", who.user.c_str(), static_cast<unsigned>(who.uid),
                  who.group.c_str(), static_cast<unsigned>(who.gid));
}

}  // namespace spawnd::server
