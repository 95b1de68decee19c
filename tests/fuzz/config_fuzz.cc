// Fuzz target: the configuration parsers (shared/config/config.h).
// Input: byte 0 picks the parser (0 dfc.conf, 1 dfs.conf, 2 HOST:PORT,
// 3 SIZE, 4 fingerprint; modulo 5), the rest is the text.
// Properties: whatever a parser accepts satisfies the documented limits, and
// printing it back as a file (or as "host:port", or in bytes) and parsing
// that gives the same value. Errors are kInvalidArgument and name the origin.
#include <charconv>
#include <string>
#include <string_view>

#include "shared/config/config.h"
#include "shared/util/names.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

constexpr std::string_view kOrigin = "fuzz.conf";

bool SameAddress(const ServerAddress& a, const ServerAddress& b) {
  return a.name == b.name && a.host == b.host && a.port == b.port && a.fingerprint == b.fingerprint;
}

// As the client spells an address for its known-servers file
// (fuse_client/client/known_servers.cc AddressKey): IPv6 in brackets.
std::string HostPort(const ServerAddress& a) {
  const bool v6 = a.host.find(':') != std::string::npos;
  return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

void CheckError(const Status& s) {
  FUZZ_CHECK(s.code() == Code::kInvalidArgument);
  FUZZ_CHECK(s.message().compare(0, kOrigin.size(), kOrigin) == 0);
}

void CheckUsername(const std::string& user) {
  FUZZ_CHECK_OK(ValidateName(user));
  FUZZ_CHECK(user.front() != '.');
}

void CheckClient(std::string_view text) {
  Result<ClientConfig> cfg = ParseClientConfig(text, kOrigin);
  if (!cfg.ok()) return CheckError(cfg.status());
  FUZZ_CHECK(!cfg->servers.empty() && cfg->servers.size() <= 64);
  for (size_t i = 0; i < cfg->servers.size(); ++i) {
    const ServerAddress& a = cfg->servers[i];
    FUZZ_CHECK(!a.name.empty() && !a.host.empty() && a.port != 0);
    FUZZ_CHECK(a.fingerprint.empty() || IsFingerprint(a.fingerprint));
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(cfg->servers[j].name != a.name);
  }
  CheckUsername(cfg->username);
  FUZZ_CHECK(!cfg->password.empty());
  FUZZ_CHECK(cfg->password.find('\n') == std::string::npos);

  std::string file;
  for (const ServerAddress& a : cfg->servers) file += "Server " + a.name + " " + HostPort(a) + "\n";
  file += "Username: " + cfg->username + "\nPassword: " + cfg->password + "\n";
  for (const ServerAddress& a : cfg->servers)
    if (!a.fingerprint.empty()) file += "Fingerprint " + a.name + " " + a.fingerprint + "\n";
  if (!cfg->known_servers.empty()) file += "KnownServers " + cfg->known_servers + "\n";
  Result<ClientConfig> again = ParseClientConfig(file, kOrigin);
  FUZZ_CHECK_OK(again.status());
  FUZZ_CHECK(again->servers.size() == cfg->servers.size());
  for (size_t i = 0; i < cfg->servers.size(); ++i)
    FUZZ_CHECK(SameAddress(again->servers[i], cfg->servers[i]));
  FUZZ_CHECK(again->username == cfg->username);
  FUZZ_CHECK(again->password == cfg->password);
  FUZZ_CHECK(again->known_servers == cfg->known_servers);
}

void CheckServer(std::string_view text) {
  Result<ServerConfig> cfg = ParseServerConfig(text, kOrigin);
  if (!cfg.ok()) return CheckError(cfg.status());
  FUZZ_CHECK(!cfg->users.empty());
  std::string file;
  for (const auto& [user, secret] : cfg->users) {
    CheckUsername(user);
    FUZZ_CHECK(!secret.empty());
    file += user + " " + secret;
    if (auto q = cfg->quotas.find(user); q != cfg->quotas.end())
      file += " quota=" + std::to_string(q->second);
    file += "\n";
  }
  for (const auto& [user, quota] : cfg->quotas) FUZZ_CHECK(cfg->users.count(user) == 1);
  Result<ServerConfig> again = ParseServerConfig(file, kOrigin);
  FUZZ_CHECK_OK(again.status());
  FUZZ_CHECK(again->users == cfg->users);
  FUZZ_CHECK(again->quotas == cfg->quotas);
}

void CheckHostPort(std::string_view text) {
  Result<ServerAddress> a = ParseHostPort(text);
  if (!a.ok()) {
    FUZZ_CHECK(a.status().code() == Code::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(!a->host.empty() && a->port != 0);
  Result<ServerAddress> again = ParseHostPort(HostPort(*a));
  FUZZ_CHECK_OK(again.status());
  FUZZ_CHECK(SameAddress(*again, *a));
}

void CheckSize(std::string_view text) {
  Result<uint64_t> size = ParseSize(text);
  if (!size.ok()) {
    FUZZ_CHECK(size.status().code() == Code::kInvalidArgument);
    return;
  }
  Result<uint64_t> again = ParseSize(std::to_string(*size));
  FUZZ_CHECK_OK(again.status());
  FUZZ_CHECK(*again == *size);
  // A suffix multiplies by its power of 1024.
  if (text.size() > 1 && (text.back() == 'K' || text.back() == 'M' || text.back() == 'G' ||
                          text.back() == 'T' || text.back() == 'k')) {
    uint64_t number = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, number);
    FUZZ_CHECK(ec == std::errc() && ptr == text.data() + text.size() - 1);
    const int shift = text.back() == 'M'   ? 20
                      : text.back() == 'G' ? 30
                      : text.back() == 'T' ? 40
                                           : 10;
    FUZZ_CHECK((number << shift) == *size && (*size >> shift) == number);
  }
}

void CheckFingerprint(std::string_view text) {
  if (!IsFingerprint(text)) return;
  FUZZ_CHECK(text.size() == 7 + 43);
  FUZZ_CHECK(text.substr(0, 7) == "SHA256:");
  FUZZ_CHECK(!fuzz::HasControlByte(text));
  FUZZ_CHECK(text.find_first_of(" \t#") == std::string_view::npos);
}

}  // namespace
}  // namespace dfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view text = dfs::fuzz::AsView(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      dfs::CheckClient(text);
      break;
    case 1:
      dfs::CheckServer(text);
      break;
    case 2:
      dfs::CheckHostPort(text);
      break;
    case 3:
      dfs::CheckSize(text);
      break;
    default:
      dfs::CheckFingerprint(text);
      break;
  }
  return 0;
}
