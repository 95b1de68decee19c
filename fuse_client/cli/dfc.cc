// dfc commands. Messages follow the classic DFS assignment where it defines
// them ("File is incomplete.", "Invalid Username/Password. Please try again.").
// Names (the user's or a server's) and server messages are printed with
// control bytes escaped (names.h EscapeControl / Escaped): no name can drive
// the terminal or forge an output line.
#include "fuse_client/cli/dfc.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>

#include "shared/crypto/crypto.h"
#include "shared/protocol/auth.h"
#include "shared/util/fd.h"
#include "shared/util/mutex.h"
#include "shared/util/names.h"

namespace dfs::cli {
namespace {

using client::Client;
using client::ClusterStatus;
using client::ServerStatus;

// Prints a failed Status the way users should see it. `what` may hold a name.
int Fail(std::ostream& err, const std::string& what, const Status& s) {
  switch (s.code()) {
    case Code::kAuthFailed:
      err << kAuthFailedMessage << "\n";
      break;
    case Code::kIncomplete:
      err << client::kIncompleteMessage << "\n";
      break;
    default:
      err << EscapeControl(what) << ": " << EscapeControl(s.message()) << "\n";
  }
  return 1;
}

int Usage(std::ostream& err, const std::string& usage) {
  err << "usage: " << usage << "\n";
  return 2;
}

std::string Join(const std::string& dir, const std::string& name) {
  auto d = NormalizeDir(dir);
  return JoinName(d.ok() ? *d : dir, name);
}

std::string HumanBytes(uint64_t n);
std::string JsonString(std::string_view text);
std::string KindOf(uint32_t type);

// A progress line on stderr while a transfer runs: bytes, rate, time left.
// Drawn only on a terminal (and not with -q), every 200 ms from a thread of
// its own, and erased when the transfer ends. The counter counts `scale`
// times the bytes of `total` (a put sends every byte to each copy).
class ProgressLine {
 public:
  ProgressLine(std::ostream& err, bool show, std::string label, uint64_t total, int scale = 1)
      : err_(err), label_(std::move(label)), total_(total), scale_(scale > 0 ? scale : 1) {
    if (show && ::isatty(STDERR_FILENO) == 1 && &err == &std::cerr)
      thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressLine() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    stopped_.SignalAll();  // the line goes at once, not at the next tick
    if (thread_.joinable()) {
      thread_.join();
      err_ << "\r\033[K" << std::flush;
    }
  }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  std::atomic<uint64_t>* counter() { return &done_; }

 private:
  void Loop() {
    const auto start = std::chrono::steady_clock::now();
    for (bool first = true;; first = false) {
      {
        MutexLock lock(&mu_);
        const auto tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        while (!first && !stop_ && stopped_.WaitUntil(&mu_, tick)) {
        }
        if (stop_) break;
      }
      const uint64_t done =
          std::min(done_.load(std::memory_order_relaxed) / static_cast<uint64_t>(scale_), total_);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
      std::string line = "\r" + label_ + ": " + HumanBytes(done) + " of " + HumanBytes(total_);
      if (total_ > 0) line += " (" + std::to_string(done * 100 / total_) + "%)";
      line += ", " + HumanBytes(static_cast<uint64_t>(rate)) + "/s";
      if (rate > 0 && done < total_) {
        const auto left = static_cast<uint64_t>(static_cast<double>(total_ - done) / rate);
        char eta[32];
        std::snprintf(eta, sizeof eta, ", %llu:%02llu left",
                      static_cast<unsigned long long>(left / 60),
                      static_cast<unsigned long long>(left % 60));
        line += eta;
      }
      err_ << line << "\033[K" << std::flush;
    }
  }
  std::ostream& err_;
  const std::string label_;
  const uint64_t total_;
  const int scale_;
  std::atomic<uint64_t> done_{0};
  Mutex mu_;
  bool stop_ GUARDED_BY(mu_) = false;
  CondVar stopped_;
  std::thread thread_;
};

// "piece 1: DFS1, DFS2" per piece of `v`, for -v.
void PrintHolders(Client& c, const client::FileVersion& v, std::ostream& out) {
  for (int k = 1; k <= v.pieces(); ++k) {
    out << "  piece " << k << ":";
    const auto& holders = v.holders[static_cast<size_t>(k - 1)];
    if (holders.empty()) out << " (no copy reachable)";
    for (size_t i = 0; i < holders.size(); ++i)
      out << (i ? ", " : " ") << c.pool().name(holders[i]);
    out << "\n";
  }
}

// One entry of `list --json`.
std::string JsonEntry(Client& c, const client::Entry& e) {
  std::string o = "{\"name\": " + JsonString(e.name);
  if (e.is_dir) {
    o += ", \"type\": \"folder\"";
    if (e.folder) {
      char mode[16];
      std::snprintf(mode, sizeof mode, "%04o", e.folder->mode & 07777);
      o += std::string(", \"mode\": \"") + mode + "\"";
      o += ", \"mtime_ns\": " + std::to_string(e.folder->mtime_ns);
      o += ", \"uid\": " + std::to_string(e.folder->uid);
      o += ", \"gid\": " + std::to_string(e.folder->gid);
    }
    return o + "}";
  }
  const PieceHeader& h = e.file.newest;
  const uint32_t type = h.file_type();
  const char* kind = type == S_IFREG    ? "file"
                     : type == S_IFLNK  ? "symlink"
                     : type == S_IFIFO  ? "fifo"
                     : type == S_IFSOCK ? "socket"
                     : type == S_IFCHR  ? "char_device"
                                        : "block_device";
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", h.mode & 07777);
  o += std::string(", \"type\": \"") + kind + "\"";
  o += ", \"size\": " + std::to_string(e.file.size());
  o += std::string(", \"mode\": \"") + mode + "\"";
  o += ", \"mtime_ns\": " + std::to_string(h.mtime_ns);
  o += ", \"uid\": " + std::to_string(h.uid);
  o += ", \"gid\": " + std::to_string(h.gid);
  o += std::string(", \"complete\": ") + (e.file.complete() ? "true" : "false");
  if (type == S_IFLNK) {
    auto target = c.ReadSmall(e.file);
    if (target.ok()) o += ", \"target\": " + JsonString(*target);
  }
  return o + "}";
}

int List(Client& c, const std::vector<std::string>& words, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  bool json = false;
  for (const auto& w : words) {
    if (w == "--json")
      json = true;
    else
      args.push_back(w);
  }
  if (args.size() > 1 || (!args.empty() && args[0].rfind("--", 0) == 0))
    return Usage(err, "list [--json] [FOLDER/]");
  const std::string dir = args.empty() ? "" : args[0];
  auto listing = c.List(dir);
  if (!listing.ok()) return Fail(err, "list", listing.status());
  if (json) {
    // Schema (stable; fields are only ever added): README "dfc list --json".
    out << "{\"folder\": " << JsonString(dir) << ", \"entries\": [";
    for (size_t i = 0; i < listing->entries.size(); ++i)
      out << (i ? ",\n  " : "\n  ") << JsonEntry(c, listing->entries[i]);
    out << (listing->entries.empty() ? "" : "\n") << "]}\n";
    return 0;
  }
  for (const auto& e : listing->entries) {
    const std::string name = EscapeControl(e.name);
    if (e.is_dir) {
      out << name << "/\n";
    } else if (!e.file.complete()) {
      out << name << " [incomplete]\n";
    } else if (e.file.newest.file_type() == S_IFLNK) {
      auto target = c.ReadSmall(e.file);
      out << name << " -> "
          << (target.ok() ? EscapeControl(*target)
                          : "(unreadable: " + target.status().ToString() + ")")
          << "\n";
    } else {
      out << name << "\n";
    }
  }
  return 0;
}

std::string KindOf(uint32_t type) {
  switch (type) {
    case S_IFLNK:
      return "a symbolic link";
    case S_IFIFO:
      return "a fifo";
    case S_IFSOCK:
      return "a socket";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    default:
      return "a special file";
  }
}

int Put(Client& c, const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const CommandOptions& opts) {
  if (args.empty() || args.size() > 2) return Usage(err, "put LOCALFILE [FOLDER/]");
  const std::string& local = args[0];
  UniqueFd fd(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Fail(err, "put", FromErrno(errno, "cannot open " + Escaped(local)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    err << "put: " << Escaped(local) << " is not a regular file\n";
    return 1;
  }
  const std::string name = std::filesystem::path(local).filename().string();
  const std::string remote = Join(args.size() > 1 ? args[1] : "", name);
  client::FileAttrs attrs;
  attrs.mode = st.st_mode & 0777;
  attrs.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  auto r = [&] {
    ProgressLine progress(err, !opts.quiet, "put " + EscapeControl(remote),
                          static_cast<uint64_t>(st.st_size), c.scheme().copies);
    return c.Put(fd.get(), remote, attrs, std::nullopt, progress.counter());
  }();
  if (!r.ok()) return Fail(err, "put " + remote, r.status());
  if (r->degraded) {
    err << "warning: " << Escaped(remote)
        << " stored degraded (fewer than 2 copies of some pieces; "
        << "run 'dfc CONF heal' once all servers are back):";
    for (const auto& n : r->notes) err << "\n  " << EscapeControl(n);
    err << "\n";
  }
  if (!opts.quiet) out << "Uploaded " << EscapeControl(remote) << " (" << r->size << " bytes)\n";
  if (opts.verbose && r->version.exists) PrintHolders(c, r->version, out);
  return 0;
}

int Get(Client& c, const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const CommandOptions& opts) {
  std::vector<std::string> pos;
  std::string output;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-o" || args[i] == "--output") {
      if (i + 1 >= args.size()) return Usage(err, "get NAME [FOLDER/] [-o OUT]");
      output = args[++i];
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      err << "get: unknown option " << Escaped(args[i]) << "\n";
      return 2;
    } else {
      pos.push_back(args[i]);
    }
  }
  if (pos.empty() || pos.size() > 2) return Usage(err, "get NAME [FOLDER/] [-o OUT]");
  const std::string remote = Join(pos.size() > 1 ? pos[1] : "", pos[0]);
  auto entry = c.Stat(remote);
  if (!entry.ok()) return Fail(err, "get " + remote, entry.status());
  if (entry->is_dir) {
    err << "get: " << Escaped(remote) << " is a folder\n";
    return 1;
  }
  if (!entry->file.complete()) return Fail(err, "get", Status::Incomplete(""));
  if (const uint32_t type = entry->file.newest.file_type(); type != S_IFREG) {
    // Nothing to download: say what it is (ls -l or the mount shows it whole).
    err << "get: " << Escaped(remote) << " is " << KindOf(type);
    if (type == S_IFLNK) {
      auto target = c.ReadSmall(entry->file);
      if (target.ok()) err << " to " << Escaped(*target);
    }
    err << "; not downloaded\n";
    return 1;
  }
  if (output.empty()) output = std::filesystem::path(remote).filename().string();
  if (output == "-") {
    err << "get: writing to standard output is not supported; use -o FILE\n";
    return 2;
  }
  // Download next to the destination, then rename: no partial file on failure.
  std::filesystem::path dest(output);
  std::string tmpl = (dest.has_parent_path() ? dest.parent_path().string() + "/" : std::string()) +
                     "." + dest.filename().string() + ".dfc-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  UniqueFd fd(::mkostemp(buf.data(), O_CLOEXEC));
  if (!fd) return Fail(err, "get", FromErrno(errno, "cannot create " + Escaped(output)));
  const std::string tmp = buf.data();
  Status s;
  {
    ProgressLine progress(err, !opts.quiet, "get " + EscapeControl(remote), entry->file.size());
    s = c.Get(entry->file, fd.get(), progress.counter());
  }
  if (s.ok() && ::ftruncate(fd.get(), static_cast<off_t>(entry->file.size())) != 0)
    s = FromErrno(errno, "cannot write " + Escaped(output));
  // Permission bits only: a stored record never makes a setuid/setgid file.
  if (s.ok()) ::fchmod(fd.get(), entry->file.newest.mode & 0777);
  if (s.ok() && ::rename(tmp.c_str(), output.c_str()) != 0)
    s = FromErrno(errno, "cannot create " + Escaped(output));
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return Fail(err, "get " + remote, s);
  }
  if (!opts.quiet)
    out << "Downloaded " << EscapeControl(remote) << " to " << EscapeControl(output) << " ("
        << entry->file.size() << " bytes)\n";
  if (opts.verbose) PrintHolders(c, entry->file, out);
  return 0;
}

int Mkdir(Client& c, const std::vector<std::string>& args, std::ostream&, std::ostream& err) {
  if (args.size() != 1) return Usage(err, "mkdir FOLDER");
  Status s = c.Mkdir(args[0]);
  return s.ok() ? 0 : Fail(err, "mkdir " + args[0], s);
}

int Rm(Client& c, const std::vector<std::string>& args, std::ostream&, std::ostream& err) {
  if (args.empty() || args.size() > 2) return Usage(err, "rm NAME [FOLDER/]");
  const std::string remote = Join(args.size() > 1 ? args[1] : "", args[0]);
  Status s = c.Unlink(remote);
  return s.ok() ? 0 : Fail(err, "rm " + remote, s);
}

int Rmdir(Client& c, const std::vector<std::string>& args, std::ostream&, std::ostream& err) {
  if (args.size() != 1) return Usage(err, "rmdir FOLDER");
  Status s = c.Rmdir(args[0]);
  return s.ok() ? 0 : Fail(err, "rmdir " + args[0], s);
}

int Mv(Client& c, const std::vector<std::string>& args, std::ostream&, std::ostream& err) {
  if (args.size() != 2) return Usage(err, "mv FROM TO");
  Status s = c.Rename(args[0], args[1]);
  return s.ok() ? 0 : Fail(err, "mv", s);
}

// 1536 -> "1.5 KiB".
std::string HumanBytes(uint64_t n) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

// `text` as a JSON string literal.
std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

const char* StateName(int severity) {
  return severity == 0 ? "healthy" : severity == 1 ? "degraded" : "unreadable";
}

// The last `dfc heal` of this user's files on this cluster run from this
// machine, as dfc status shows it. Kept in $XDG_STATE_HOME/dfs (default
// ~/.local/state/dfs) as last-heal-USER-HASH (HASH: of the servers'
// addresses), one line: "dfs-last-heal 1 TIME_NS FILES COPIED UNREPAIRABLE
// CORRUPT_LEFT VERIFIED".
struct LastHeal {
  int64_t time_ns = 0;
  uint64_t files = 0, copied = 0, unrepairable = 0, corrupt_left = 0;
  bool verified = false;
};

std::string LastHealPath(const Client& c) {
  std::string dir;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg == '/')
    dir = std::string(xdg) + "/dfs";
  else if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/')
    dir = std::string(home) + "/.local/state/dfs";
  else
    return "";
  std::string servers;
  for (const auto& s : c.config().servers) servers += s.host + ":" + std::to_string(s.port) + " ";
  const Key h = Sha256(std::span(reinterpret_cast<const uint8_t*>(servers.data()), servers.size()));
  std::string user;
  for (char ch : c.config().username)
    user += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return dir + "/last-heal-" + user + "-" + ToHex(std::span(h.data(), 4));
}

void SaveLastHeal(const Client& c, const client::HealReport& r, bool verified) {
  const std::string path = LastHealPath(c);
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << "dfs-last-heal 1 " << now << " " << r.files_checked << " " << r.pieces_copied << " "
      << r.unrepairable << " " << r.corrupt_left << " " << (verified ? 1 : 0) << "\n";
    if (!f) return;
  }
  std::filesystem::rename(tmp, path, ec);
}

std::optional<LastHeal> LoadLastHeal(const Client& c) {
  const std::string path = LastHealPath(c);
  if (path.empty()) return std::nullopt;
  std::ifstream f(path);
  std::string magic;
  int version = 0, verified = 0;
  LastHeal h;
  if (!(f >> magic >> version >> h.time_ns >> h.files >> h.copied >> h.unrepairable >>
        h.corrupt_left >> verified) ||
      magic != "dfs-last-heal" || version != 1)
    return std::nullopt;
  h.verified = verified != 0;
  return h;
}

// "2026-11-22 03:50:12 UTC" of a time in ns since the epoch.
std::string UtcTime(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// dfc status (no name): the table of servers and the state of the files.
// Exit status: ClusterStatus::Severity() (0 healthy, 1 degraded, 2 unreadable).
int ClusterStatusCmd(Client& c, bool json, std::ostream& out, std::ostream& err) {
  auto r = c.GetClusterStatus();
  if (!r.ok()) return Fail(err, "status", r.status());
  const ClusterStatus& st = *r;
  const int severity = st.Severity();
  const std::optional<LastHeal> last = LoadLastHeal(c);
  if (json) {
    // Schema (stable; fields are only ever added): README "dfc status --json".
    out << "{\"state\":" << JsonString(StateName(severity)) << ",\"servers\":[";
    for (size_t i = 0; i < st.servers.size(); ++i) {
      const ServerStatus& s = st.servers[i];
      char rtt[32];
      std::snprintf(rtt, sizeof rtt, "%.3f", s.rtt_ms);
      out << (i ? "," : "") << "{\"name\":" << JsonString(s.name)
          << ",\"address\":" << JsonString(s.address) << ",\"up\":" << (s.up ? "true" : "false")
          << ",\"reason\":" << JsonString(s.reason) << ",\"rtt_ms\":" << rtt
          << ",\"version\":" << JsonString(s.version) << ",\"total_bytes\":" << s.total_bytes
          << ",\"avail_bytes\":" << s.avail_bytes << ",\"user_bytes\":" << s.user_bytes
          << ",\"hints_waiting\":" << s.hints_for << "}";
    }
    out << "],\"files\":" << st.files << ",\"folders\":" << st.folders
        << ",\"incomplete\":" << st.incomplete << ",\"degraded\":" << st.degraded
        << ",\"hints_waiting\":" << st.hints
        << ",\"all_listed\":" << (st.folders_unlisted ? "false" : "true") << ",\"last_heal\":";
    if (last) {
      out << "{\"time_ns\":" << last->time_ns << ",\"files_checked\":" << last->files
          << ",\"pieces_copied\":" << last->copied << ",\"unrepairable\":" << last->unrepairable
          << ",\"corrupt_left\":" << last->corrupt_left
          << ",\"verified\":" << (last->verified ? "true" : "false") << "}";
    } else {
      out << "null";
    }
    out << "}\n";
    return severity;
  }
  char line[256];
  std::snprintf(line, sizeof line, "%-8s %-22s %-18s %9s %-8s %10s %10s %6s\n", "SERVER", "ADDRESS",
                "STATE", "RTT", "VERSION", "FREE", "YOURS", "HINTS");
  out << line;
  for (const ServerStatus& s : st.servers) {
    char rtt[16] = "-";
    if (s.up) std::snprintf(rtt, sizeof rtt, "%.2f ms", s.rtt_ms);
    const std::string state = s.up ? "up" : "down: " + s.reason;
    std::snprintf(line, sizeof line, "%-8s %-22s %-18s %9s %-8s %10s %10s %6llu\n",
                  EscapeControl(s.name).c_str(), s.address.c_str(), state.c_str(), rtt,
                  s.up ? EscapeControl(s.version).c_str() : "-",
                  s.up ? HumanBytes(s.avail_bytes).c_str() : "-",
                  s.up ? HumanBytes(s.user_bytes).c_str() : "-",
                  static_cast<unsigned long long>(s.hints_for));
    out << line;
  }
  out << st.files << " files in " << st.folders << " folders: " << st.incomplete
      << " unreadable now, " << st.degraded << " with fewer copies than wanted; " << st.hints
      << " change(s) waiting for a server that missed them\n";
  if (st.folders_unlisted) out << "(some folders could not be listed: the counts are low)\n";
  if (last)
    out << "last heal from this machine: " << UtcTime(last->time_ns) << ", checked " << last->files
        << " files, copied " << last->copied << " pieces, " << last->unrepairable
        << " could not be rebuilt" << (last->verified ? ", every copy verified" : "") << "\n";
  else
    out << "last heal from this machine: none recorded\n";
  out << "state: " << StateName(severity)
      << (severity == 0   ? ""
          : severity == 1 ? " (dfc heal, or a running mount, repairs what the servers allow)"
                          : " (some files cannot be read until their servers are back)")
      << "\n";
  return severity;
}

int StatusCmd(Client& c, const std::vector<std::string>& args, std::ostream& out,
              std::ostream& err) {
  if (args.empty() || (args.size() == 1 && args[0] == "--json"))
    return ClusterStatusCmd(c, !args.empty(), out, err);
  if (args.size() > 2) return Usage(err, "status [--json] | status NAME [FOLDER/]");
  const std::string remote = Join(args.size() > 1 ? args[1] : "", args[0]);
  auto d = c.Describe(remote);
  if (!d.ok()) return Fail(err, "status " + remote, d.status());
  out << EscapeControl(remote) << ": " << EscapeControl(*d) << "\n";
  return 0;
}

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop = true; }

// dfc heal --watch: hands hints off as servers come back, until SIGINT or
// SIGTERM, for deployments without a mount (which does it by itself).
int HealWatch(Client& c, std::ostream& out) {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  out << "handing off what servers missed as they come back (Ctrl-C to stop)" << std::endl;
  while (!g_stop) {
    for (int s = 0; s < c.pool().size() && !g_stop; ++s) {
      client::HealReport r;
      auto handed = c.HandOff(s, &r);
      if (handed.ok() && *handed > 0)
        out << c.pool().name(s) << ": handed off " << *handed << " change(s): " << r.pieces_copied
            << " piece(s) copied, " << r.stale_removed << " stale cop(ies) removed, "
            << r.extra_removed << " extra cop(ies) dropped" << std::endl;
      for (const auto& n : r.notes) out << "  " << EscapeControl(n) << std::endl;
    }
    for (int i = 0; i < 30 && !g_stop; ++i) std::this_thread::sleep_for(Client::kHandOffPoll / 30);
  }
  return 0;
}

int Heal(Client& c, const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
         const CommandOptions& opts) {
  if (args.size() == 1 && args[0] == "--watch") return HealWatch(c, out);
  std::vector<std::string> rest;
  bool verify = false;
  bool json = false;
  for (const auto& a : args) {
    if (a == "--verify")
      verify = true;
    else if (a == "--json")
      json = true;
    else
      rest.push_back(a);
  }
  if (rest.size() > 1 || (!rest.empty() && rest[0].rfind("--", 0) == 0))
    return Usage(err, "heal [--verify] [--json] [FOLDER/] | heal --watch");
  // Progress on a terminal: files checked and pieces copied so far.
  const bool tty = !opts.quiet && ::isatty(STDERR_FILENO) == 1 && &err == &std::cerr;
  std::chrono::steady_clock::time_point shown{};  // the first file shows at once
  auto progress = [&](const client::HealReport& r) {
    const auto now = std::chrono::steady_clock::now();
    if (!tty || now - shown < std::chrono::milliseconds(200)) return;
    shown = now;
    err << "\rchecked " << r.files_checked << " files, copied " << r.pieces_copied << " pieces"
        << std::flush;
  };
  auto r = c.Heal(rest.empty() ? "" : rest[0], progress, verify);
  if (tty) err << "\r\033[K" << std::flush;
  if (!r.ok()) return Fail(err, "heal", r.status());
  if (rest.empty()) SaveLastHeal(c, *r, verify);  // the whole tree, not one folder
  const int rc = r->unrepairable == 0 && r->corrupt_left == 0 ? 0 : 1;
  if (json) {
    // Schema (stable; fields are only ever added): README "dfc heal --json".
    out << "{\"files_checked\": " << r->files_checked
        << ", \"hints_handed_off\": " << r->hints_handed_off
        << ", \"hints_pending\": " << r->hints_pending
        << ", \"pieces_copied\": " << r->pieces_copied
        << ", \"stale_removed\": " << r->stale_removed
        << ", \"extra_removed\": " << r->extra_removed << ", \"unrepairable\": " << r->unrepairable
        << ", \"verified\": " << (verify ? "true" : "false")
        << ", \"copies_verified\": " << r->copies_verified
        << ", \"corrupt_repaired\": " << r->corrupt_repaired
        << ", \"corrupt_left\": " << r->corrupt_left << ", \"notes\": [";
    for (size_t i = 0; i < r->notes.size(); ++i) out << (i ? ", " : "") << JsonString(r->notes[i]);
    out << "], \"exit\": " << rc << "}\n";
    return rc;
  }
  if (r->hints_handed_off > 0)
    out << "handed off " << r->hints_handed_off << " change(s) servers missed while down\n";
  out << "checked " << r->files_checked << " files, copied " << r->pieces_copied
      << " pieces, removed stale copies on " << r->stale_removed << " servers, " << r->unrepairable
      << " files cannot be rebuilt now\n";
  if (verify)
    out << "verified " << r->copies_verified << " piece copies; " << r->corrupt_repaired
        << " corrupt copies replaced, " << r->corrupt_left << " left\n";
  for (const auto& n : r->notes) out << "  " << EscapeControl(n) << "\n";
  return rc;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream ss(line);
  std::string w;
  while (ss >> w) words.push_back(w);
  return words;
}

}  // namespace

std::string CommandHelp() {
  return "commands:\n"
         "  list [--json] [FOLDER/]      list files (NAME [incomplete] = cannot be rebuilt now,\n"
         "                               NAME -> TARGET = a symbolic link)\n"
         "  get NAME [FOLDER/] [-o OUT]  download (default: NAME in the current folder)\n"
         "  put LOCALFILE [FOLDER/]      upload under the file's base name\n"
         "  mkdir FOLDER                 make a folder\n"
         "  rm NAME [FOLDER/]            delete a file\n"
         "  rmdir FOLDER                 delete an empty folder\n"
         "  mv FROM TO                   rename a file or folder\n"
         "  status [--json]              the servers, and files unreadable or short of copies\n"
         "                               (exit 0 healthy, 1 degraded, 2 some file unreadable)\n"
         "  status NAME [FOLDER/]        which pieces are on which servers\n"
         "  heal [--verify] [--json] [FOLDER/]\n"
         "                               hand off what servers missed while down, re-copy\n"
         "                               missing pieces, drop stale ones; --verify also\n"
         "                               reads every copy, checks it and replaces bad ones\n"
         "  heal --watch                 keep handing off what servers missed as they come\n"
         "                               back (for deployments without a mount)\n"
         "  -q, --quiet (any command)    no progress, no result line for put and get\n"
         "  -v, --verbose (any command)  which servers hold each piece (put, get)\n";
}

int RunCommand(Client& client, const std::vector<std::string>& words, std::ostream& out,
               std::ostream& err, CommandOptions options) {
  std::vector<std::string> args;  // the words but -q and -v, which may come anywhere
  for (const std::string& w : words) {
    if (w == "-q" || w == "--quiet")
      options.quiet = true;
    else if (w == "-v" || w == "--verbose")
      options.verbose = true;
    else
      args.push_back(w);
  }
  if (args.empty()) return 0;
  const std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "list" || cmd == "ls") return List(client, args, out, err);
  if (cmd == "put") return Put(client, args, out, err, options);
  if (cmd == "get") return Get(client, args, out, err, options);
  if (cmd == "mkdir") return Mkdir(client, args, out, err);
  if (cmd == "rm") return Rm(client, args, out, err);
  if (cmd == "rmdir") return Rmdir(client, args, out, err);
  if (cmd == "mv") return Mv(client, args, out, err);
  if (cmd == "status") return StatusCmd(client, args, out, err);
  if (cmd == "heal") return Heal(client, args, out, err, options);
  if (cmd == "help") {
    out << CommandHelp();
    return 0;
  }
  err << "unknown command " << Escaped(cmd) << "\n" << CommandHelp();
  return 2;
}

int RunPrompt(Client& client, std::istream& in, std::ostream& out, std::ostream& err,
              bool interactive, CommandOptions options) {
  if (interactive) out << "dfc: type 'help' for commands, 'exit' to leave\n";
  std::string line;
  for (;;) {
    if (interactive) out << "dfc> " << std::flush;
    if (!std::getline(in, line)) break;
    auto words = Words(line);
    if (words.empty()) continue;
    if (words[0] == "exit" || words[0] == "quit") break;
    RunCommand(client, words, out, err, options);
    out << std::flush;
  }
  if (interactive) out << "\n";
  return 0;
}

}  // namespace dfs::cli
