// The known-servers file (see known_servers.h).
#include "fuse_client/client/known_servers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "shared/util/fd.h"
#include "shared/util/file_io.h"
#include "shared/util/log.h"

namespace dfs::client {
namespace {

spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> logger = Logger("net");
  return *logger;
}

// The fingerprint recorded for `key` in the file's text, or "".
std::string Lookup(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string address, print;
    if (!(fields >> address >> print) || address.empty() || address[0] == '#') continue;
    if (address == key) return print;
  }
  return "";
}

// Reads the whole (small) file from an open fd.
Result<std::string> ReadAll(int fd) {
  std::string text;
  char buf[8192];
  for (uint64_t off = 0;;) {
    DFS_ASSIGN_OR_RETURN(size_t n, PreadFull(fd, buf, sizeof buf, off, "read known servers"));
    text.append(buf, n);
    off += n;
    if (n < sizeof buf) return text;
    if (text.size() > (4u << 20)) return Status::TooLarge("known-servers file too large");
  }
}

}  // namespace

std::string AddressKey(const ServerAddress& addr) {
  const bool v6 = addr.host.find(':') != std::string::npos;
  return (v6 ? "[" + addr.host + "]" : addr.host) + ":" + std::to_string(addr.port);
}

std::string DefaultKnownServersPath() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg == '/')
    return std::string(xdg) + "/dfs/known_servers";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.config/dfs/known_servers";
  return "";
}

KnownServers::KnownServers(std::string path)
    : path_(path.empty() ? DefaultKnownServersPath() : std::move(path)) {}

Status KnownServers::Check(const ServerAddress& addr, const std::string& fingerprint) {
  const std::string key = AddressKey(addr);
  const std::string who = addr.name + " (" + key + ")";
  if (!addr.fingerprint.empty()) {
    if (addr.fingerprint == fingerprint) return Status::Ok();
    return Status::Untrusted(who + " presented the key " + fingerprint + ", but dfc.conf pins " +
                             addr.fingerprint +
                             ". Refusing to connect: someone may be impersonating the server. If "
                             "its key was replaced on purpose, update the Fingerprint line (the "
                             "server prints its key with 'dfs_server --fingerprint DIR').");
  }
  {
    MutexLock lock(&mu_);
    if (auto it = accepted_.find(key); it != accepted_.end() && it->second == fingerprint)
      return Status::Ok();
  }
  // The file, under its flock and without mu_: flock(2) waits for other
  // processes (and for threads of this one, which open the file themselves).
  if (path_.empty()) {
    Log().warn("{}: no known-servers file (HOME is not set): accepting key {} for now", who,
               fingerprint);
    Accept(key, fingerprint);
    return Status::Ok();
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd || ::flock(fd.get(), LOCK_EX) != 0) {
    Log().warn("{}: cannot use the known-servers file {}: {}; accepting key {} for now", who, path_,
               std::strerror(errno), fingerprint);
    Accept(key, fingerprint);
    return Status::Ok();
  }
  auto text = ReadAll(fd.get());
  if (!text.ok()) {
    Log().warn("{}: {}: {}; accepting key {} for now", who, path_, text.status().message(),
               fingerprint);
    Accept(key, fingerprint);
    return Status::Ok();
  }
  const std::string known = Lookup(*text, key);
  if (known.empty()) {
    std::string line = key + " " + fingerprint + " " + addr.name + "\n";
    if (!text->empty() && text->back() != '\n') line.insert(0, "\n");
    Status wrote = WriteAll(fd.get(), line.data(), line.size(), "append to " + path_);
    if (wrote.ok() && ::fsync(fd.get()) != 0) wrote = FromErrno(errno, "fsync " + path_);
    if (wrote.ok())
      Log().warn("{}: first connection: remembering its key {} in {}", who, fingerprint, path_);
    else
      Log().warn("{}: {}; accepting key {} for now", who, wrote.message(), fingerprint);
    Accept(key, fingerprint);
    return Status::Ok();
  }
  if (known != fingerprint)
    return Status::Untrusted(
        who + " presented the key " + fingerprint + ", but " + known +
        " is the key remembered for it in " + path_ +
        ". Refusing to connect: someone may be impersonating the server. If its key was "
        "replaced on purpose, delete the line for " +
        key +
        " from that file, or pin the new "
        "key with 'Fingerprint " +
        addr.name + " " + fingerprint + "' in dfc.conf.");
  Accept(key, fingerprint);
  return Status::Ok();
}

void KnownServers::Accept(const std::string& key, const std::string& fingerprint) {
  MutexLock lock(&mu_);
  accepted_[key] = fingerprint;
}

}  // namespace dfs::client
