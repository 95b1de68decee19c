// Parsers for dfc.conf and dfs.conf.
#include "shared/config/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <set>

#include "shared/util/fd.h"
#include "shared/util/names.h"

namespace dfs {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Removes a comment: '#' at the start or after white space.
std::string_view StripComment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line[i - 1]))))
      return line.substr(0, i);
  }
  return line;
}

// Splits off the first white-space separated token.
std::string_view NextToken(std::string_view* rest) {
  std::string_view s = Trim(*rest);
  size_t end = 0;
  while (end < s.size() && !std::isspace(static_cast<unsigned char>(s[end]))) ++end;
  std::string_view tok = s.substr(0, end);
  *rest = Trim(s.substr(end));
  return tok;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

class LineError {
 public:
  explicit LineError(std::string_view origin) : origin_(origin) {}
  Status operator()(int line, const std::string& what) const {
    return Status::Invalid(std::string(origin_) + ":" + std::to_string(line) + ": " + what);
  }
  Status operator()(const std::string& what) const {
    return Status::Invalid(std::string(origin_) + ": " + what);
  }

 private:
  std::string_view origin_;
};

// Calls fn(line_number, content) for every line that is not blank or a comment.
template <typename Fn>
Status ForEachLine(std::string_view text, Fn&& fn) {
  int number = 0;
  while (!text.empty() || number == 0) {
    ++number;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    line = Trim(StripComment(line));
    if (!line.empty()) DFS_RETURN_IF_ERROR(fn(number, line));
    if (text.empty()) break;
  }
  return Status::Ok();
}

Status ValidateUsername(std::string_view user) {
  DFS_RETURN_IF_ERROR(ValidateName(user));
  if (user.front() == '.') return Status::Invalid("a username cannot start with '.'");
  return Status::Ok();
}

}  // namespace

Result<ServerAddress> ParseHostPort(std::string_view text) {
  ServerAddress addr;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1 || close + 1 >= text.size() ||
        text[close + 1] != ':')
      return Status::Invalid("expected [IPv6]:PORT, got '" + std::string(text) + "'");
    addr.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return Status::Invalid("expected HOST:PORT, got '" + std::string(text) + "'");
    addr.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    // "::1:80" or "fe80::1": which colon ends the host is a guess.
    if (addr.host.find(':') != std::string::npos)
      return Status::Invalid("an IPv6 address needs brackets ([IPv6]:PORT), got '" +
                             std::string(text) + "'");
  }
  // No host name or address has brackets; one that did would not survive
  // being written back as HOST:PORT or [IPv6]:PORT (the known-servers file).
  if (addr.host.find_first_of("[]") != std::string::npos)
    return Status::Invalid("bad host '" + addr.host + "'");
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return Status::Invalid("bad port '" + std::string(port_text) + "' (1-65535)");
  addr.port = static_cast<uint16_t>(port);
  return addr;
}

bool IsFingerprint(std::string_view text) {
  static constexpr std::string_view kPrefix = "SHA256:";
  if (text.substr(0, kPrefix.size()) != kPrefix || text.size() != kPrefix.size() + 43) return false;
  return std::all_of(text.begin() + kPrefix.size(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view suffix(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  int shift = 0;
  if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M")
    shift = 20;
  else if (suffix == "G")
    shift = 30;
  else if (suffix == "T")
    shift = 40;
  else if (!suffix.empty())
    ec = std::errc::invalid_argument;
  if (ec != std::errc() || ptr == text.data() || (shift > 0 && value > (UINT64_MAX >> shift)))
    return Status::Invalid("bad size '" + std::string(text) +
                           "' (bytes, or a number with K, M, G or T)");
  return value << shift;
}

Result<ClientConfig> ParseClientConfig(std::string_view text, std::string_view origin) {
  ClientConfig cfg;
  LineError err(origin);
  bool have_user = false, have_password = false;
  std::set<std::string> names;
  std::vector<std::pair<int, std::pair<std::string, std::string>>> pins;  // line, name, print
  Status s = ForEachLine(text, [&](int number, std::string_view line) -> Status {
    std::string_view rest = line;
    std::string_view key = NextToken(&rest);
    if (!key.empty() && key.back() == ':') key.remove_suffix(1);
    if (EqualsNoCase(key, "Server")) {
      std::string_view name = NextToken(&rest);
      std::string_view hostport = NextToken(&rest);
      if (name.empty() || hostport.empty() || !rest.empty())
        return err(number, "expected 'Server NAME HOST:PORT'");
      auto addr = ParseHostPort(hostport);
      if (!addr.ok()) return err(number, addr.status().message());
      if (!names.insert(std::string(name)).second)
        return err(number, "duplicate server name '" + std::string(name) + "'");
      addr->name = std::string(name);
      cfg.servers.push_back(std::move(*addr));
    } else if (EqualsNoCase(key, "Username")) {
      if (have_user) return err(number, "Username given twice");
      std::string_view user = NextToken(&rest);
      if (user.empty() || !rest.empty()) return err(number, "expected 'Username: NAME'");
      if (Status v = ValidateUsername(user); !v.ok())
        return err(number, "bad username: " + v.message());
      cfg.username = std::string(user);
      have_user = true;
    } else if (EqualsNoCase(key, "Password")) {
      if (have_password) return err(number, "Password given twice");
      if (rest.empty()) return err(number, "expected 'Password: SECRET'");
      cfg.password = std::string(rest);
      have_password = true;
    } else if (EqualsNoCase(key, "Fingerprint")) {
      std::string_view name = NextToken(&rest);
      std::string_view print = NextToken(&rest);
      if (name.empty() || print.empty() || !rest.empty())
        return err(number, "expected 'Fingerprint NAME SHA256:...'");
      if (!IsFingerprint(print))
        return err(number, "bad fingerprint '" + std::string(print) +
                               "' (expected SHA256: and 43 base64 characters, as "
                               "'dfs_server --fingerprint DIR' prints)");
      pins.push_back({number, {std::string(name), std::string(print)}});
    } else if (EqualsNoCase(key, "KnownServers")) {
      if (!cfg.known_servers.empty()) return err(number, "KnownServers given twice");
      if (rest.empty()) return err(number, "expected 'KnownServers PATH'");
      cfg.known_servers = std::string(rest);
    } else {
      return err(number,
                 "unknown key '" + std::string(key) +
                     "' (expected Server, Username, Password, Fingerprint or KnownServers)");
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  for (const auto& [number, pin] : pins) {
    const std::string& name = pin.first;  // clang 14 cannot capture a structured binding
    auto it = std::find_if(cfg.servers.begin(), cfg.servers.end(),
                           [&](const ServerAddress& a) { return a.name == name; });
    if (it == cfg.servers.end())
      return err(number, "Fingerprint for unknown server '" + pin.first + "'");
    if (!it->fingerprint.empty())
      return err(number, "Fingerprint of '" + pin.first + "' given twice");
    it->fingerprint = pin.second;
  }
  if (cfg.servers.empty()) return err("no 'Server NAME HOST:PORT' line");
  if (cfg.servers.size() > 64) return err("at most 64 servers");
  if (!have_user) return err("missing 'Username:' line");
  if (!have_password) return err("missing 'Password:' line");
  return cfg;
}

Result<ServerConfig> ParseServerConfig(std::string_view text, std::string_view origin) {
  ServerConfig cfg;
  LineError err(origin);
  Status s = ForEachLine(text, [&](int number, std::string_view line) -> Status {
    std::string_view rest = line;
    std::string_view user = NextToken(&rest);
    std::string_view password = NextToken(&rest);
    std::string_view option = NextToken(&rest);
    if (user.empty() || password.empty() || !rest.empty())
      return err(number, "expected 'USERNAME PASSWORD [quota=SIZE]'");
    if (Status v = ValidateUsername(user); !v.ok())
      return err(number, "bad username: " + v.message());
    if (!cfg.users.emplace(std::string(user), std::string(password)).second)
      return err(number, "user '" + std::string(user) + "' listed twice");
    if (!option.empty()) {
      if (option.substr(0, 6) != "quota=")
        return err(number, "unknown option '" + std::string(option) + "' (expected quota=SIZE)");
      auto size = ParseSize(option.substr(6));
      if (!size.ok()) return err(number, size.status().message());
      cfg.quotas[std::string(user)] = *size;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (cfg.users.empty()) return err("no users (expected 'USERNAME PASSWORD' lines)");
  return cfg;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FromErrno(errno, "cannot open " + path);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "cannot read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return Status::TooLarge(path + ": file too large");
  }
  return out;
}

Result<ClientConfig> LoadClientConfig(const std::string& path) {
  DFS_ASSIGN_OR_RETURN(auto text, ReadSmallFile(path));
  return ParseClientConfig(text, path);
}

Result<ServerConfig> LoadServerConfig(const std::string& path) {
  DFS_ASSIGN_OR_RETURN(auto text, ReadSmallFile(path));
  return ParseServerConfig(text, path);
}

}  // namespace dfs
