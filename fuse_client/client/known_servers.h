// Which TLS key each server is expected to present. A key pinned in dfc.conf
// (Fingerprint NAME SHA256:...) is the only one accepted for that server.
// Otherwise the first key seen for a server address is remembered in the
// known-servers file (trust on first use, as ssh's known_hosts) and every
// later connection must present the same key.
//
// File format, one line per server address, '#' comments:
//   HOST:PORT SHA256:<base64> [NAME]        ("[v6]:PORT" for IPv6)
// The default file is $XDG_CONFIG_HOME/dfs/known_servers, else
// $HOME/.config/dfs/known_servers. Processes sharing the file lock it while
// they read and append (flock), so two first connections agree; so do two
// threads of one process (each opens the file, and flock locks an open file).
#pragma once

#include <map>
#include <string>

#include "shared/config/config.h"
#include "shared/util/mutex.h"
#include "shared/util/status.h"
#include "shared/util/thread_annotations.h"

namespace dfs::client {

class KnownServers {
 public:
  // `path` "" picks the default above.
  explicit KnownServers(std::string path);
  KnownServers(const KnownServers&) = delete;
  KnownServers& operator=(const KnownServers&) = delete;

  // OK when `fingerprint` is the key expected of `addr` (remembering it on
  // first sight, with a log line). kUntrusted naming the server, both
  // fingerprints and what to do, when it is not. A file that cannot be read
  // or written is logged and the key is accepted for this process only.
  // Thread-safe.
  Status Check(const ServerAddress& addr, const std::string& fingerprint) EXCLUDES(mu_);

  const std::string& path() const { return path_; }

 private:
  // Remembers `fingerprint` as accepted for `key` in this process.
  void Accept(const std::string& key, const std::string& fingerprint) EXCLUDES(mu_);

  const std::string path_;
  // Guards accepted_; leaf lock, never held across I/O (the file has its
  // flock, taken without mu_ held).
  Mutex mu_;
  // "HOST:PORT" -> fingerprint, this process
  std::map<std::string, std::string> accepted_ GUARDED_BY(mu_);
};

// "HOST:PORT", or "[HOST]:PORT" for an IPv6 address.
std::string AddressKey(const ServerAddress& addr);
// The default known-servers path (see above); "" when neither variable is set.
std::string DefaultKnownServersPath();

}  // namespace dfs::client
