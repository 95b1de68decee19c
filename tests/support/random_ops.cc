// The randomized differential test of a dfs mount (see random_ops.h).
#include "tests/support/random_ops.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <iterator>
#include <random>
#include <utility>

#include "tests/support/cluster.h"

namespace dfs::testing {
namespace {

// One side of the comparison: the mount or a plain local folder.
struct Side {
  std::string root;
  std::string operator/(const std::string& name) const { return root + "/" + name; }
};

// Result of one system call: its return value and errno (when it failed).
struct Outcome {
  long value = 0;
  int err = 0;
  std::string data;
  bool operator==(const Outcome&) const = default;
};

std::string Describe(const Outcome& o) {
  std::string s = "value " + std::to_string(o.value) + " errno " + std::to_string(o.err);
  if (!o.data.empty()) s += " data " + std::to_string(o.data.size()) + " bytes";
  return s;
}

Outcome Sys(long rc, std::string data = "") {
  Outcome o;
  o.value = rc;
  o.err = rc < 0 ? errno : 0;
  if (rc >= 0) o.data = std::move(data);
  return o;
}

// A file open on both sides under one name.
struct Pair {
  int fd[2];
  int flags;
  std::string opened_as;
};

// The pairs still open; closes them all on destruction (an early return or an
// exception from between_steps), unchecked.
struct OpenPairs {
  std::vector<Pair> pairs;
  OpenPairs() = default;
  OpenPairs(const OpenPairs&) = delete;
  OpenPairs& operator=(const OpenPairs&) = delete;
  ~OpenPairs() {
    for (const auto& p : pairs)
      for (int fd : p.fd) ::close(fd);
  }
};

}  // namespace

std::string ReadWithPosix(const std::string& path, int* err) {
  if (err) *err = 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return "";
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (err) *err = errno;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

uint64_t RandomSeedFromEnv() {
  if (const char* s = std::getenv("DFS_SEED")) return std::strtoull(s, nullptr, 10);
  return static_cast<uint64_t>(std::time(nullptr));
}

int RandomStepsFromEnv(int default_steps) {
  if (const char* s = std::getenv("DFS_RANDOM_STEPS")) return std::atoi(s);
  return default_steps;
}

const std::vector<std::string>& RandomOperationNames() {
  static const std::vector<std::string> names = {"a", "b", "c", "d/e", "d/f"};
  return names;
}

bool RunRandomOperations(const std::string& local_root, const std::string& mount_root,
                         uint64_t seed, int steps,
                         const std::function<void(int step)>& between_steps) {
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  Side sides[2] = {{local_root}, {mount_root}};
  for (auto& s : sides) {
    ::mkdir(s.root.c_str(), 0755);
    REQUIRE(::mkdir((s / "d").c_str(), 0755) == 0);
  }
  const std::vector<std::string>& names = RandomOperationNames();
  OpenPairs open;
  std::vector<Pair>& fds = open.pairs;
  std::deque<std::string> history;

  auto check = [&](const std::string& what, const Outcome& local, const Outcome& mount) {
    history.push_back(what + " -> local: " + Describe(local) + "; mount: " + Describe(mount));
    if (history.size() > 40) history.pop_front();
    if (local == mount) return true;
    std::string h;
    for (const auto& line : history) h += "  " + line + "\n";
    FAIL_CHECK("DFS_SEED=" << seed << ": results differ at: " << what << "\nlast operations:\n"
                           << h);
    return false;
  };

  const int kOpenFlags[] = {O_RDWR, O_RDWR | O_CREAT, O_RDWR | O_CREAT | O_TRUNC, O_RDONLY,
                            O_WRONLY | O_CREAT | O_APPEND};
  bool ok = true;
  for (int step = 0; step < steps && ok; ++step) {
    if (step > 0 && between_steps) between_steps(step);
    const size_t op = pick(100);
    const std::string name = names[pick(names.size())];
    Outcome out[2];
    std::string what;
    if (op < 12 && fds.size() < 4) {
      int flags = kOpenFlags[pick(std::size(kOpenFlags))];
      what = "open " + name + " flags " + std::to_string(flags);
      // O_CLOEXEC: a server the caller restarts must not inherit (and so
      // keep open) a file of the mount.
      for (int s = 0; s < 2; ++s)
        out[s] = Sys(::open((sides[s] / name).c_str(), flags | O_CLOEXEC, 0644));
      if (out[0].value >= 0 && out[1].value >= 0)
        fds.push_back(
            {{static_cast<int>(out[0].value), static_cast<int>(out[1].value)}, flags, name});
      else
        for (int s = 0; s < 2; ++s)
          if (out[s].value >= 0) ::close(static_cast<int>(out[s].value));
      out[0].value = out[0].value >= 0 ? 0 : out[0].value;
      out[1].value = out[1].value >= 0 ? 0 : out[1].value;
    } else if (op < 40 && !fds.empty()) {
      Pair& p = fds[pick(fds.size())];
      size_t len = 1 + pick(pick(4) == 0 ? 70000 : 3000);
      off_t off = static_cast<off_t>(pick(24000));
      std::string bytes = RandomBytes(len, rng());
      what =
          "pwrite " + p.opened_as + " off " + std::to_string(off) + " len " + std::to_string(len);
      for (int s = 0; s < 2; ++s) out[s] = Sys(::pwrite(p.fd[s], bytes.data(), len, off));
    } else if (op < 55 && !fds.empty()) {
      Pair& p = fds[pick(fds.size())];
      size_t len = 1 + pick(20000);
      off_t off = static_cast<off_t>(pick(26000));
      what = "pread " + p.opened_as + " off " + std::to_string(off) + " len " + std::to_string(len);
      for (int s = 0; s < 2; ++s) {
        std::string buf(len, '\0');
        long n = ::pread(p.fd[s], buf.data(), len, off);
        out[s] = Sys(n, n > 0 ? buf.substr(0, static_cast<size_t>(n)) : "");
      }
    } else if (op < 62 && !fds.empty()) {
      Pair& p = fds[pick(fds.size())];
      off_t size = static_cast<off_t>(pick(30000));
      what = "ftruncate " + p.opened_as + " to " + std::to_string(size);
      for (int s = 0; s < 2; ++s) out[s] = Sys(::ftruncate(p.fd[s], size));
    } else if (op < 66 && !fds.empty()) {
      Pair& p = fds[pick(fds.size())];
      what = "fstat " + p.opened_as;
      for (int s = 0; s < 2; ++s) {
        struct stat st {};
        out[s] = Sys(::fstat(p.fd[s], &st));
        if (out[s].value == 0) out[s].value = st.st_size;
      }
    } else if (op < 78 && !fds.empty()) {
      size_t i = pick(fds.size());
      what = "close " + fds[i].opened_as;
      for (int s = 0; s < 2; ++s) out[s] = Sys(::close(fds[i].fd[s]));
      fds.erase(fds.begin() + static_cast<long>(i));
    } else if (op < 82) {
      off_t size = static_cast<off_t>(pick(30000));
      what = "truncate " + name + " to " + std::to_string(size);
      for (int s = 0; s < 2; ++s) out[s] = Sys(::truncate((sides[s] / name).c_str(), size));
    } else if (op < 87) {
      std::string to = names[pick(names.size())];
      what = "rename " + name + " to " + to;
      for (int s = 0; s < 2; ++s)
        out[s] = Sys(::rename((sides[s] / name).c_str(), (sides[s] / to).c_str()));
    } else if (op < 90) {
      what = "unlink " + name;
      for (int s = 0; s < 2; ++s) out[s] = Sys(::unlink((sides[s] / name).c_str()));
    } else if (op < 92) {
      what = "stat " + name;
      for (int s = 0; s < 2; ++s) {
        struct stat st {};
        out[s] = Sys(::stat((sides[s] / name).c_str(), &st));
        if (out[s].value == 0) out[s].value = st.st_size * 010000 + (st.st_mode & 07777);
      }
    } else if (op < 94) {
      mode_t mode = pick(2) ? 0600 : 0644;
      what = "chmod " + name + " " + std::to_string(mode);
      for (int s = 0; s < 2; ++s) out[s] = Sys(::chmod((sides[s] / name).c_str(), mode));
    } else {
      what = "read whole " + name;
      for (int s = 0; s < 2; ++s) {
        int err = 0;
        std::string data = ReadWithPosix(sides[s] / name, &err);
        out[s].err = err;
        out[s].value = err ? -1 : static_cast<long>(data.size());
        if (!err) out[s].data = std::move(data);
      }
    }
    if (!what.empty()) ok = check("step " + std::to_string(step) + ": " + what, out[0], out[1]);
  }
  for (auto& p : fds) {
    Outcome out[2];
    for (int s = 0; s < 2; ++s) out[s] = Sys(::close(p.fd[s]));
    if (ok) ok = check("final close " + p.opened_as, out[0], out[1]);
  }
  fds.clear();
  return ok;
}

void CheckSameFiles(const std::string& local_root, const std::string& other_root) {
  for (const auto& name : RandomOperationNames()) {
    int err_local = 0, err_remote = 0;
    std::string local = ReadWithPosix(local_root + "/" + name, &err_local);
    std::string remote = ReadWithPosix(other_root + "/" + name, &err_remote);
    CAPTURE(name);
    CHECK(err_local == err_remote);
    CHECK(local == remote);
  }
}

}  // namespace dfs::testing
