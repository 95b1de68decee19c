// Configuration files, compatible with the classic DFS assignment.
//
// dfc.conf (client):
//   Server DFS1 127.0.0.1:10001      one line per server, in placement order
//   Username: Alice                  "Username Alice" works too
//   Password: SimplePassword         the rest of the line, trimmed
//   Fingerprint DFS1 SHA256:...      optional: pins the TLS key of DFS1
//   KnownServers /path/file          optional: where first-seen keys are
//                                    remembered (default ~/.config/dfs/known_servers)
// dfs.conf (server): one "username password [quota=SIZE]" line per user;
// SIZE is bytes with an optional K, M, G or T suffix (powers of 1024).
// In both, '#' at the start of a line or after white space starts a comment.
// Errors name the file and the line: "dfc.conf:3: unknown key 'Port'".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shared/util/status.h"

namespace dfs {

struct ServerAddress {
  std::string name;  // "DFS1"
  std::string host;  // "127.0.0.1", "localhost", "::1"
  uint16_t port = 0;
  std::string fingerprint;  // "SHA256:<base64>" when pinned in dfc.conf, else ""
};

struct ClientConfig {
  std::vector<ServerAddress> servers;  // index i holds server i+1 of the placement
  std::string username;
  std::string password;
  std::string known_servers;  // KnownServers path, "" for the default
};

struct ServerConfig {
  // username -> secret: the password, or "$dfs2$<64 hex>" (this server's
  // verifier, so the server never learns the password; see crypto.h).
  std::map<std::string, std::string> users;
  std::map<std::string, uint64_t> quotas;  // users with a quota=SIZE
};

// "SHA256:" + 43 base64 characters (a SHA-256 digest as ssh prints it).
bool IsFingerprint(std::string_view text);
// "10G" -> 10 << 30. kInvalidArgument for anything else.
Result<uint64_t> ParseSize(std::string_view text);

// `origin` names the source in error messages (usually the file path).
Result<ClientConfig> ParseClientConfig(std::string_view text, std::string_view origin);
Result<ServerConfig> ParseServerConfig(std::string_view text, std::string_view origin);

// Read and parse a file. A missing or unreadable file is kNotFound/kPermission
// with the path in the message.
Result<ClientConfig> LoadClientConfig(const std::string& path);
Result<ServerConfig> LoadServerConfig(const std::string& path);

// "host:port" or "[v6]:port" -> address. Used by the parser and by tools.
// kInvalidArgument for a host with ':' outside brackets or with '[' or ']'
// inside, so that an address prints back ("[v6]:port") as it was parsed.
Result<ServerAddress> ParseHostPort(std::string_view text);

// Reads a whole small file (at most `max_bytes`).
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 1 << 20);

}  // namespace dfs
