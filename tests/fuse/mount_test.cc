// End-to-end tests of dfcfs: a real FUSE mount over a real cluster of four
// dfs_server processes, driven with ordinary tools (cp, ls, mv, df, ...) and
// plain POSIX calls. Skips the whole executable (exit 77) where /dev/fuse or
// fusermount3 is missing. Every mount is unmounted even when a test fails.
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shared/format/piece_header.h"
#include "tests/support/cluster.h"
#include "tests/support/mount.h"
#include "tests/support/random_ops.h"
#include "tests/support/sanitizers.h"

namespace dfs::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMiB = 1 << 20;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A cluster with one mount of Alice's files.
struct Fixture {
  Fixture() : conf(cluster.WriteClientConfig("Alice", "SimplePassword")) { RequireFuse(); }
  Cluster cluster;
  std::string conf;
  TempDir local{"dfcfs-local"};
};

// POSIX helpers: 0 or errno, content through plain open/read/write/close.
int WriteWithPosix(const std::string& path, const std::string& content, int flags = O_TRUNC,
                   mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode);
  if (fd < 0) return errno;
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0 ? 0 : errno;
}

int StatErrno(const std::string& path, struct stat* st = nullptr) {
  struct stat tmp {};
  return ::stat(path.c_str(), st ? st : &tmp) == 0 ? 0 : errno;
}

CommandResult Sh(const std::string& command, int timeout = 60) {
  return Run({"/bin/sh", "-c", command}, "", timeout);
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

std::vector<std::string> ListDir(const std::string& dir) {
  auto r = Run({"/bin/ls", "-1A", dir});
  std::vector<std::string> names;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) names.push_back(line);
  return names;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Writes `n` pseudo-random bytes to `path` in pieces (no n-byte buffer).
void WriteRandomFile(const std::string& path, size_t n, uint64_t seed) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  for (size_t done = 0; done < n;) {
    size_t chunk = std::min<size_t>(4 * kMiB, n - done);
    std::string bytes = RandomBytes(chunk, seed + done);
    f.write(bytes.data(), static_cast<std::streamsize>(chunk));
    done += chunk;
  }
  if (!f) throw std::runtime_error("cannot write " + path);
}

TEST_CASE("cp copies files in and out byte for byte") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  for (size_t size : {size_t{0}, size_t{1}, kMiB + 3, 100 * kMiB}) {
    CAPTURE(size);
    std::string name = "file-" + std::to_string(size);
    std::string src = fx.local / (name + ".in");
    std::string back = fx.local / (name + ".out");
    WriteRandomFile(src, size, size);
    auto start = Clock::now();
    auto in = Run({"/bin/cp", src, m / name}, "", 300);
    CHECK_MESSAGE(in.exit_code == 0, in.err);
    MESSAGE("cp in of ", size, " bytes: ", SecondsSince(start), " s");
    struct stat st {};
    REQUIRE(StatErrno(m / name, &st) == 0);
    CHECK(static_cast<size_t>(st.st_size) == size);
    start = Clock::now();
    auto out = Run({"/bin/cp", m / name, back}, "", 300);
    CHECK_MESSAGE(out.exit_code == 0, out.err);
    MESSAGE("cp out of ", size, " bytes: ", SecondsSince(start), " s");
    auto cmp = Run({"/usr/bin/cmp", src, back});
    CHECK_MESSAGE(cmp.exit_code == 0, cmp.out, cmp.err);
    ::unlink(src.c_str());
    ::unlink(back.c_str());
  }
  // Spool files have no names, and memory does not grow with the file size.
  CHECK(ListDir(m.spool_dir()).empty());
  std::string status = ReadFile("/proc/" + std::to_string(m.pid()) + "/status");
  auto at = status.find("VmHWM:");
  REQUIRE(at != std::string::npos);
  long peak_kib = std::atol(status.c_str() + at + 6);
  MESSAGE("dfcfs peak resident memory: ", peak_kib / 1024, " MiB");
  if (kMemoryMeasurable) CHECK(peak_kib < 64 * 1024);  // see tests/support/sanitizers.h
  CHECK(m.Unmount() == 0);
}

TEST_CASE("ls -l and stat show type, size, mode and mtime") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  ::umask(022);
  time_t before = ::time(nullptr);
  REQUIRE(WriteWithPosix(m / "notes.txt", "hello world\n", O_TRUNC, 0640) == 0);
  time_t after = ::time(nullptr);
  REQUIRE(::mkdir((m / "docs").c_str(), 0755) == 0);

  struct stat st {};
  REQUIRE(StatErrno(m / "notes.txt", &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_size == 12);
  CHECK(st.st_nlink == 1);
  CHECK(st.st_uid == ::getuid());
  CHECK(st.st_mtime >= before - 1);
  CHECK(st.st_mtime <= after + 1);
  REQUIRE(StatErrno(m / "docs", &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(StatErrno(m / "missing.txt") == ENOENT);
  CHECK(StatErrno(m / "docs/missing/deeper") == ENOENT);

  auto ls = Run({"/bin/ls", "-l", m.dir()});
  CHECK(ls.exit_code == 0);
  CHECK(ls.out.find("-rw-r----- 1") != std::string::npos);
  CHECK(ls.out.find(" 12 ") != std::string::npos);
  CHECK(ls.out.find("notes.txt") != std::string::npos);
  CHECK(ls.out.find("drwxr-xr-x") != std::string::npos);

  // After the attribute caches expire the servers say the same.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  REQUIRE(StatErrno(m / "notes.txt", &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_size == 12);
}

TEST_CASE("mv renames files and folders, also over an existing file") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  REQUIRE(WriteWithPosix(m / "a.txt", "content of a") == 0);
  auto mv = Run({"/bin/mv", m / "a.txt", m / "b.txt"});
  CHECK_MESSAGE(mv.exit_code == 0, mv.err);
  CHECK(StatErrno(m / "a.txt") == ENOENT);
  CHECK(ReadWithPosix(m / "b.txt") == "content of a");

  // Over an existing file.
  REQUIRE(WriteWithPosix(m / "c.txt", "content of c, longer") == 0);
  REQUIRE(::rename((m / "c.txt").c_str(), (m / "b.txt").c_str()) == 0);
  CHECK(StatErrno(m / "c.txt") == ENOENT);
  CHECK(ReadWithPosix(m / "b.txt") == "content of c, longer");

  // The editor pattern: write a temp file, fsync, rename over the original.
  REQUIRE(WriteWithPosix(m / "doc.txt", "version 1\n") == 0);
  {
    int fd = ::open((m / ".doc.txt.swp").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    std::string v2 = "version 2, edited\n";
    CHECK(::write(fd, v2.data(), v2.size()) == static_cast<ssize_t>(v2.size()));
    CHECK(::fsync(fd) == 0);
    CHECK(::close(fd) == 0);
  }
  REQUIRE(::rename((m / ".doc.txt.swp").c_str(), (m / "doc.txt").c_str()) == 0);
  CHECK(ReadWithPosix(m / "doc.txt") == "version 2, edited\n");
  CHECK_FALSE(Contains(ListDir(m.dir()), ".doc.txt.swp"));

  // Folders move with their content.
  REQUIRE(::mkdir((m / "dir1").c_str(), 0755) == 0);
  REQUIRE(WriteWithPosix(m / "dir1/inner.txt", "inner") == 0);
  mv = Run({"/bin/mv", m / "dir1", m / "dir2"});
  CHECK_MESSAGE(mv.exit_code == 0, mv.err);
  CHECK(StatErrno(m / "dir1") == ENOENT);
  CHECK(ReadWithPosix(m / "dir2/inner.txt") == "inner");
  mv = Run({"/bin/mv", m / "b.txt", m / "dir2/"});
  CHECK_MESSAGE(mv.exit_code == 0, mv.err);
  CHECK(ReadWithPosix(m / "dir2/b.txt") == "content of c, longer");

  // renameat2 flags.
  REQUIRE(WriteWithPosix(m / "x", "x") == 0);
  REQUIRE(WriteWithPosix(m / "y", "y") == 0);
  auto renameat2 = [](const std::string& from, const std::string& to, unsigned flags) {
    return ::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) == 0
               ? 0
               : errno;
  };
  CHECK(renameat2(m / "x", m / "y", RENAME_NOREPLACE) == EEXIST);
  CHECK(renameat2(m / "x", m / "y", RENAME_EXCHANGE) == EINVAL);
  CHECK(renameat2(m / "x", m / "z", RENAME_NOREPLACE) == 0);
  CHECK(ReadWithPosix(m / "z") == "x");
  CHECK(ReadWithPosix(m / "y") == "y");
  CHECK(StatErrno(m / "x") == ENOENT);
}

TEST_CASE("rm, mkdir -p and rmdir behave as on a local disk") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  auto r = Run({"/bin/mkdir", "-p", m / "a/b/c"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  r = Run({"/bin/mkdir", "-p", m / "a/b/c"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK((::mkdir((m / "a").c_str(), 0755) == 0 ? 0 : errno) == EEXIST);
  struct stat st {};
  REQUIRE(StatErrno(m / "a/b/c", &st) == 0);
  CHECK(S_ISDIR(st.st_mode));

  REQUIRE(WriteWithPosix(m / "a/b/c/f.txt", "data") == 0);
  CHECK((::rmdir((m / "a/b/c").c_str()) == 0 ? 0 : errno) == ENOTEMPTY);
  r = Run({"/bin/rmdir", m / "a/b/c"});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("not empty") != std::string::npos);
  CHECK((::unlink((m / "a/b").c_str()) == 0 ? 0 : errno) == EISDIR);

  r = Run({"/bin/rm", m / "a/b/c/f.txt"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(StatErrno(m / "a/b/c/f.txt") == ENOENT);
  CHECK(ListDir(m / "a/b/c").empty());
  CHECK((::unlink((m / "a/b/c/f.txt").c_str()) == 0 ? 0 : errno) == ENOENT);
  CHECK(::rmdir((m / "a/b/c").c_str()) == 0);
  CHECK(StatErrno(m / "a/b/c") == ENOENT);

  REQUIRE(WriteWithPosix(m / "a/b/g.txt", "g") == 0);
  r = Run({"/bin/rm", "-r", m / "a"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(StatErrno(m / "a") == ENOENT);
  CHECK(ListDir(m.dir()).empty());
}

TEST_CASE("touch, >>, truncate, chmod and df work") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  struct stat st {};

  auto r = Run({"/usr/bin/touch", m / "new.txt"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(StatErrno(m / "new.txt", &st) == 0);
  CHECK(st.st_size == 0);
  CHECK(std::abs(st.st_mtime - ::time(nullptr)) <= 2);

  // touch -d on a new and on an existing file; the date is local time.
  struct tm when {};
  when.tm_year = 2020 - 1900;
  when.tm_mon = 0;
  when.tm_mday = 2;
  when.tm_hour = 3;
  when.tm_min = 4;
  when.tm_sec = 5;
  when.tm_isdst = -1;
  const time_t expected = ::mktime(&when);
  for (const char* name : {"dated.txt", "new.txt"}) {
    CAPTURE(name);
    r = Run({"/usr/bin/touch", "-d", "2020-01-02 03:04:05", m / name});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    REQUIRE(StatErrno(m / name, &st) == 0);
    CHECK(st.st_mtime == expected);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // from the servers now
  REQUIRE(StatErrno(m / "dated.txt", &st) == 0);
  CHECK(st.st_mtime == expected);

  // >> appends, also to a file written before.
  r = Sh("echo first >> " + Quote(m / "log.txt") + " && echo second >> " + Quote(m / "log.txt"));
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(ReadWithPosix(m / "log.txt") == "first\nsecond\n");
  r = Sh("printf third >> " + Quote(m / "log.txt"));
  CHECK(ReadWithPosix(m / "log.txt") == "first\nsecond\nthird");

  // truncate up and down.
  r = Run({"/usr/bin/truncate", "-s", "20", m / "log.txt"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(StatErrno(m / "log.txt", &st) == 0);
  CHECK(st.st_size == 20);
  CHECK(ReadWithPosix(m / "log.txt") == std::string("first\nsecond\nthird") + std::string(2, '\0'));
  r = Run({"/usr/bin/truncate", "-s", "5", m / "log.txt"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(ReadWithPosix(m / "log.txt") == "first");
  r = Run({"/usr/bin/truncate", "-s", "0", m / "log.txt"});
  CHECK(ReadWithPosix(m / "log.txt").empty());

  // chmod.
  r = Run({"/bin/chmod", "600", m / "log.txt"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(StatErrno(m / "log.txt", &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  REQUIRE(StatErrno(m / "log.txt", &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(::chmod((m / "log.txt").c_str(), 0755) == 0);
  REQUIRE(StatErrno(m / "log.txt", &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);

  // df / statfs.
  struct statvfs vfs {};
  REQUIRE(::statvfs(m.dir().c_str(), &vfs) == 0);
  CHECK(vfs.f_bsize == 4096);
  CHECK(vfs.f_blocks > 0);
  CHECK(vfs.f_bavail <= vfs.f_blocks);
  CHECK(vfs.f_namemax == 251);
  r = Run({"/bin/df", m.dir()});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("dfs:Alice") != std::string::npos);
}

TEST_CASE("overwrites and random writes inside an existing file are read back") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  std::string a = RandomBytes(300 * 1024, 1);
  std::string b = RandomBytes(70 * 1024, 2);
  REQUIRE(WriteWithPosix(m / "f.bin", a) == 0);
  CHECK(ReadWithPosix(m / "f.bin") == a);
  WriteFile(fx.local / "b.bin", b);
  auto r = Run({"/bin/cp", fx.local / "b.bin", m / "f.bin"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(ReadWithPosix(m / "f.bin") == b);

  // Writes at offsets across chunk boundaries and past the end, in a fresh open.
  std::string model = b;
  int fd = ::open((m / "f.bin").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  const std::vector<std::pair<size_t, size_t>> writes = {
      {0, 10}, {65530, 20}, {1000, 3000}, {70 * 1024 - 5, 100}, {200000, 17}};
  uint64_t seed = 10;
  for (auto [off, len] : writes) {
    std::string bytes = RandomBytes(len, seed++);
    REQUIRE(::pwrite(fd, bytes.data(), len, static_cast<off_t>(off)) == static_cast<ssize_t>(len));
    if (model.size() < off + len) model.resize(off + len, '\0');
    model.replace(off, len, bytes);
  }
  std::string middle(4096, '\0');
  REQUIRE(::pread(fd, middle.data(), middle.size(), 63000) == 4096);
  CHECK(middle == model.substr(63000, 4096));
  CHECK(::close(fd) == 0);
  CHECK(ReadWithPosix(m / "f.bin") == model);

  // Another mount sees the result.
  Mount m2(fx.conf, fx.cluster.root() + "/mnt2");
  CHECK(ReadWithPosix(m2 / "f.bin") == model);
}

TEST_CASE("two mounts of one user see each other's closed files") {
  Fixture fx;
  Mount m1(fx.conf, fx.cluster.root() + "/mnt1");
  Mount m2(fx.conf, fx.cluster.root() + "/mnt2");
  REQUIRE(WriteWithPosix(m1 / "shared.txt", "short") == 0);
  CHECK(ReadWithPosix(m2 / "shared.txt") == "short");
  // Overwrite with longer, then shorter content: each open sees the last close.
  REQUIRE(WriteWithPosix(m1 / "shared.txt", "a much longer second version") == 0);
  CHECK(ReadWithPosix(m2 / "shared.txt") == "a much longer second version");
  REQUIRE(WriteWithPosix(m2 / "shared.txt", "3rd") == 0);
  CHECK(ReadWithPosix(m1 / "shared.txt") == "3rd");
  // Deletes too.
  REQUIRE(::unlink((m1 / "shared.txt").c_str()) == 0);
  int err = 0;
  ReadWithPosix(m2 / "shared.txt", &err);
  CHECK(err == ENOENT);
  // New folders and files show up in the other mount's listing within a second.
  REQUIRE(::mkdir((m2 / "from2").c_str(), 0755) == 0);
  REQUIRE(WriteWithPosix(m2 / "from2/x.txt", "x") == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(Contains(ListDir(m1.dir()), "from2"));
  CHECK(Contains(ListDir(m1 / "from2"), "x.txt"));
}

TEST_CASE("many processes at once write, read and append without losing data") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  REQUIRE(::mkdir((m / "par").c_str(), 0755) == 0);
  constexpr int kThreads = 8;
  constexpr int kFiles = 6;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int f = 0; f < kFiles; ++f) {
        std::string name = m / ("par/t" + std::to_string(t) + "-" + std::to_string(f));
        std::string content = RandomBytes(1000 + static_cast<size_t>(t * 7919 + f * 104729), t);
        if (WriteWithPosix(name, content) != 0 || ReadWithPosix(name) != content) ++failures[t];
        std::string line = "thread " + std::to_string(t) + " line " + std::to_string(f) + "\n";
        if (WriteWithPosix(m / "par/shared.log", line, O_APPEND) != 0) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) CHECK(failures[t] == 0);
  auto names = ListDir(m / "par");
  CHECK(names.size() == kThreads * kFiles + 1);
  // All appends went through one mount: none may be lost or torn.
  std::string log = ReadWithPosix(m / "par/shared.log");
  std::istringstream lines(log);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    CHECK(line.rfind("thread ", 0) == 0);
    ++count;
  }
  CHECK(count == kThreads * kFiles);
}

TEST_CASE("a killed server does not stop reads or writes") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  std::map<std::string, std::string> files;
  for (int i = 0; i < 6; ++i) {
    std::string name = "f" + std::to_string(i);
    files[name] = RandomBytes(static_cast<size_t>(i) * 40000 + i, 100 + i);
    REQUIRE(WriteWithPosix(m / name, files[name]) == 0);
  }
  fx.cluster.Kill(0);
  auto start = Clock::now();
  for (const auto& file : files) {
    const auto& [name, content] = file;
    CAPTURE(file.first);
    int err = 0;
    CHECK(ReadWithPosix(m / name, &err) == content);
    CHECK(err == 0);
  }
  std::string fresh = RandomBytes(3 * kMiB + 1, 7);
  WriteFile(fx.local / "fresh", fresh);
  auto r = Run({"/bin/cp", fx.local / "fresh", m / "fresh"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(ReadWithPosix(m / "fresh") == fresh);
  auto names = ListDir(m.dir());
  CHECK(names.size() == files.size() + 1);
  for (const auto& n : names) CHECK(n.find("[incomplete]") == std::string::npos);
  CHECK(SecondsSince(start) < 30);
}

TEST_CASE("a stopped server does not hang the mount") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  std::string content = RandomBytes(500000, 3);
  REQUIRE(WriteWithPosix(m / "before.bin", content) == 0);
  fx.cluster.Pause(1);
  struct Resume {
    Cluster& c;
    ~Resume() { c.Resume(1); }
  } resume{fx.cluster};

  auto timed = [](const std::string& what, const std::function<void()>& op) {
    auto start = Clock::now();
    op();
    double s = SecondsSince(start);
    MESSAGE(what, ": ", s, " s");
    CHECK_MESSAGE(s < 8, what, " took ", s, " s");
  };
  auto all = Clock::now();
  timed("ls -l", [&] { CHECK(Run({"/bin/ls", "-l", m.dir()}, "", 30).exit_code == 0); });
  timed("read", [&] { CHECK(ReadWithPosix(m / "before.bin") == content); });
  timed("write", [&] { CHECK(WriteWithPosix(m / "during.txt", "written while DFS2 hangs") == 0); });
  timed("read new", [&] { CHECK(ReadWithPosix(m / "during.txt") == "written while DFS2 hangs"); });
  timed("stat", [&] { CHECK(StatErrno(m / "before.bin") == 0); });
  timed("mkdir", [&] { CHECK(::mkdir((m / "d").c_str(), 0755) == 0); });
  timed("rm", [&] { CHECK(::unlink((m / "during.txt").c_str()) == 0); });
  CHECK(SecondsSince(all) < 30);
}

TEST_CASE("two adjacent servers down show NAME [incomplete] until they return") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  std::string content = RandomBytes(100000, 5);
  REQUIRE(WriteWithPosix(m / "f.txt", content) == 0);
  fx.cluster.Kill(0);
  fx.cluster.Kill(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // listing cache

  auto names = ListDir(m.dir());
  CHECK(Contains(names, "f.txt [incomplete]"));
  CHECK_FALSE(Contains(names, "f.txt"));
  struct stat st {};
  REQUIRE(StatErrno(m / "f.txt [incomplete]", &st) == 0);
  CHECK(st.st_size == static_cast<off_t>(content.size()));

  for (const char* name : {"f.txt", "f.txt [incomplete]"}) {
    CAPTURE(name);
    auto start = Clock::now();
    int err = 0;
    ReadWithPosix(m / name, &err);
    CHECK(err == EIO);
    CHECK(SecondsSince(start) < 5);
  }
  auto cat = Run({"/bin/cat", m / "f.txt [incomplete]"}, "", 30);
  CHECK(cat.exit_code != 0);
  CHECK(cat.err.find("Input/output error") != std::string::npos);

  char value[4096];
  ssize_t n =
      ::getxattr((m / "f.txt [incomplete]").c_str(), "user.dfs.status", value, sizeof value);
  REQUIRE(n > 0);
  std::string status(value, static_cast<size_t>(n));
  MESSAGE("user.dfs.status: ", status);
  std::string lower = status;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  CHECK(lower.find("missing") != std::string::npos);
  // Readable, but not listed (so that cp -a and rsync -X leave it).
  CHECK(::getxattr((m / "f.txt").c_str(), "user.dfs.status", value, sizeof value) > 0);
  n = ::listxattr((m / "f.txt").c_str(), value, sizeof value);
  REQUIRE(n >= 0);
  CHECK(std::string(value, static_cast<size_t>(n)).find("user.dfs.status") == std::string::npos);

  fx.cluster.Restart(0);
  fx.cluster.Restart(1);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!Contains(ListDir(m.dir()), "f.txt") && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  names = ListDir(m.dir());
  CHECK(Contains(names, "f.txt"));
  CHECK_FALSE(Contains(names, "f.txt [incomplete]"));
  CHECK(ReadWithPosix(m / "f.txt") == content);
}

TEST_CASE("a failed upload makes cp fail loudly and keeps the previous version") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  REQUIRE(WriteWithPosix(m / "keep.txt", "version 1") == 0);
  WriteFile(fx.local / "v2.txt", "version 2 must not half-replace version 1");
  for (int i = 0; i < 4; ++i) fx.cluster.Kill(i);  // (one server alone would take every piece)

  auto start = Clock::now();
  auto cp = Run({"/bin/cp", fx.local / "v2.txt", m / "keep.txt"}, "", 60);
  CHECK(cp.exit_code != 0);
  CHECK_MESSAGE(cp.err.find("Input/output error") != std::string::npos, cp.err);
  CHECK(WriteWithPosix(m / "new.txt", "never stored") == EIO);
  CHECK(SecondsSince(start) < 20);

  for (int i = 0; i < 4; ++i) fx.cluster.Restart(i);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  std::string content;
  while (Clock::now() < deadline) {
    int err = 0;
    content = ReadWithPosix(m / "keep.txt", &err);
    if (err == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  CHECK(content == "version 1");
  CHECK(StatErrno(m / "new.txt") == ENOENT);
}

TEST_CASE("dfcfs mounts while no server answers, and files appear when they do") {
  Fixture fx;
  for (int i = 0; i < 4; ++i) fx.cluster.Kill(i);
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  CHECK(m.Log().find("warning") != std::string::npos);
  auto start = Clock::now();
  auto ls = Run({"/bin/ls", m.dir()}, "", 30);
  CHECK(ls.exit_code != 0);
  CHECK(SecondsSince(start) < 10);
  for (int i = 0; i < 4; ++i) fx.cluster.Restart(i);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  int err = -1;
  while (Clock::now() < deadline && (err = WriteWithPosix(m / "late.txt", "late")) != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  CHECK(err == 0);
  CHECK(ReadWithPosix(m / "late.txt") == "late");
}

TEST_CASE("dfcfs reports usage, config, mountpoint and login errors") {
  Fixture fx;
  const std::string dfcfs = BinaryPath("DFCFS");
  std::string mnt = fx.cluster.root() + "/mnt";
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);

  auto r = Run({dfcfs, "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("MOUNTPOINT") != std::string::npos);
  CHECK(r.out.find("--spool-dir") != std::string::npos);

  r = Run({dfcfs, fx.conf});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("dfcfs: ", 0) == 0);

  std::string bad_conf = fx.local / "dfc.conf";
  WriteFile(bad_conf, "Server DFS1 127.0.0.1:1\nUsername: Alice\nPort 3\n");
  r = Run({dfcfs, bad_conf, mnt});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("dfc.conf:3:") != std::string::npos);
  CHECK(r.err.find("unknown key") != std::string::npos);

  r = Run({dfcfs, fx.conf, mnt + "/nope"});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "dfcfs: mountpoint " + mnt + "/nope does not exist\n");

  WriteFile(mnt + "/file", "x");
  r = Run({dfcfs, fx.conf, mnt + "/file"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not a directory") != std::string::npos);
  r = Run({dfcfs, fx.conf, mnt});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not empty") != std::string::npos);
  ::unlink((mnt + "/file").c_str());

  std::string wrong = fx.cluster.WriteClientConfig("Alice", "WrongPassword", "wrong.conf");
  r = Run({dfcfs, wrong, mnt}, "", 60);
  CHECK(r.exit_code == 1);
  CHECK(r.err == "Invalid Username/Password. Please try again.\n");
  CHECK_FALSE(IsDfsMount(mnt));
}

TEST_CASE("dfcfs daemonizes, and unmounts cleanly on fusermount3 -u and SIGTERM") {
  Fixture fx;
  const std::string dfcfs = BinaryPath("DFCFS");
  std::string mnt = fx.cluster.root() + "/mnt";
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);

  // Without -f: returns once the mount is live.
  auto r = Run({dfcfs, fx.conf, mnt}, "", 60);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  bool mounted = IsDfsMount(mnt);
  CHECK(mounted);
  if (mounted) {
    CHECK(WriteWithPosix(mnt + "/bg.txt", "background") == 0);
    CHECK(ReadWithPosix(mnt + "/bg.txt") == "background");
    r = Run({FindFusermount(), "-u", mnt});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
  }
  CHECK_FALSE(IsDfsMount(mnt));

  // SIGTERM (and SIGINT) in the foreground: unmount, exit 0.
  for (int sig : {SIGTERM, SIGINT}) {
    CAPTURE(sig);
    Mount m(fx.conf, mnt);
    CHECK(ReadWithPosix(m / "bg.txt") == "background");
    ::kill(m.pid(), sig);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (IsDfsMount(mnt) && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK_FALSE(IsDfsMount(mnt));
    CHECK(m.Unmount() == 0);
  }
}

// ---- randomized differential test ----

TEST_CASE("random operations give the same results as a local folder") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  const uint64_t seed = RandomSeedFromEnv();
  const int steps = RandomStepsFromEnv(3000);
  MESSAGE("random operations: DFS_SEED=", seed, " steps=", steps);
  const std::string local = fx.local.path() + "/ref";
  // Everything the local folder has, the mount has, as seen by a fresh mount.
  if (RunRandomOperations(local, m.dir(), seed, steps)) {
    Mount fresh(fx.conf, fx.cluster.root() + "/mnt-check");
    CheckSameFiles(local, fresh.dir());
  }
}

// ---- the mount's fast paths: MD5 while writing, caches, close-to-open ----

// x of Table 1: MD5 of the content as a 128-bit big-endian number, mod 4,
// computed here with OpenSSL (independently of the code under test).
int PlacementX(const std::string& content) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(content.data(), content.size(), digest, &len, EVP_md5(), nullptr) != 1 ||
      len != 16)
    throw std::runtime_error("MD5 failed");
  return digest[15] & 3;
}

// The piece indexes Table 1 gives server DFS`server` (1-based) for x: the
// pair (a, a%4+1) with a = ((server-1-x) mod 4) + 1, sorted.
std::vector<int> Table1Pieces(int x, int server) {
  const int a = ((server - 1 - x) % 4 + 4) % 4 + 1;
  std::vector<int> pieces = {a, a % 4 + 1};
  std::sort(pieces.begin(), pieces.end());
  return pieces;
}

// Piece files ".NAME.K" (K >= 1) in one folder of a server, as NAME -> sorted
// indexes. Tombstones (".NAME.0") are left out. A missing folder has none.
std::map<std::string, std::vector<int>> PieceFilesIn(const std::string& dir) {
  std::map<std::string, std::vector<int>> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string file = e->d_name;
    const auto dot = file.rfind('.');
    if (file.size() < 4 || file[0] != '.' || dot == std::string::npos || dot < 2) continue;
    const std::string k = file.substr(dot + 1);
    if (k.empty() || k.find_first_not_of("0123456789") != std::string::npos) continue;
    const int piece = std::atoi(k.c_str());
    if (piece > 0) out[file.substr(1, dot - 1)].push_back(piece);
  }
  ::closedir(d);
  for (auto& [name, pieces] : out) std::sort(pieces.begin(), pieces.end());
  return out;
}

// "1,2": piece indexes as text, for readable failures.
std::string PiecesText(const std::vector<int>& pieces) {
  std::string out;
  for (int k : pieces) out += (out.empty() ? "" : ",") + std::to_string(k);
  return out;
}

// Checks that `dir/name` of Alice lies on disk exactly where Table 1 puts it
// for the MD5 of `content`: DFSi holds its two pieces and no other piece of
// that name, and each piece header names the same x and size.
void CheckPlacedByTable1(const Cluster& cluster, const std::string& dir, const std::string& name,
                         const std::string& content) {
  const int x = PlacementX(content);
  CAPTURE(name);
  CAPTURE(x);
  for (int server = 1; server <= 4; ++server) {
    CAPTURE(server);
    const std::string folder =
        cluster.server_dir(server - 1) + "/Alice" + (dir.empty() ? "" : "/" + dir);
    const auto expected = Table1Pieces(x, server);
    const auto on_disk = PieceFilesIn(folder);
    auto it = on_disk.find(name);
    CHECK(it != on_disk.end());
    if (it == on_disk.end()) continue;
    CHECK(PiecesText(it->second) == PiecesText(expected));
    for (int k : it->second) {
      CAPTURE(k);
      auto header = PieceHeader::Decode(ReadFile(folder + "/." + name + "." + std::to_string(k)));
      REQUIRE(header.ok());
      CHECK(header->piece == k);
      CHECK(header->x == x);
      CHECK(header->file_size == content.size());
    }
  }
}

bool WriteAllAt(int fd, const std::string& bytes, off_t offset) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, offset + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// `n` pseudo-random bytes whose placement x differs from `other`'s, so that
// pieces left where the previous version lay would show.
std::string BytesWithOtherX(size_t n, uint64_t seed, const std::string& other) {
  if (n == 0) throw std::invalid_argument("BytesWithOtherX needs n > 0");
  for (;; ++seed) {
    std::string bytes = RandomBytes(n, seed);
    if (PlacementX(bytes) != PlacementX(other)) return bytes;
  }
}

// Names in `dir` by opendir/readdir (no stat), without "." and "..".
std::vector<std::string> ReadDirNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Polls `ok` every 100 ms for up to `seconds`; whether it became true.
bool Eventually(const std::function<bool()>& ok, double seconds = 5) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (ok()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_CASE("files written in order or out of order are placed by the MD5 of their final content") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  struct Pattern {
    std::string name;
    // Writes the file through the mount; returns what it must now hold.
    std::function<std::string(const std::string& path)> write;
  };
  auto open_new = [](const std::string& path, int extra = 0) {
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | extra, 0644);
  };
  const std::vector<Pattern> patterns = {
      {"one-write",
       [](const std::string& path) {
         std::string content = RandomBytes(300000, 1);
         REQUIRE(WriteWithPosix(path, content) == 0);
         return content;
       }},
      {"many-small-writes",
       [&](const std::string& path) {
         std::string content = RandomBytes(2000 * 37 + 5, 2);
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         for (size_t off = 0; off < content.size(); off += 37)
           REQUIRE(WriteAll(fd, content.substr(off, 37)));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"pwrite-shuffled-blocks",
       [&](const std::string& path) {
         std::string content = RandomBytes(150000 + 123, 3);
         std::vector<size_t> blocks;
         for (size_t off = 0; off < content.size(); off += 4096) blocks.push_back(off);
         // Starts in order at 0, then jumps around.
         std::shuffle(blocks.begin() + 1, blocks.end(), std::mt19937_64(3));
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         for (size_t off : blocks)
           REQUIRE(WriteAllAt(fd, content.substr(off, 4096), static_cast<off_t>(off)));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"in-order-then-start-overwritten",
       [&](const std::string& path) {
         // The same size as the bytes written in order: only the overwrite
         // tells that the running MD5 is no longer the content's.
         std::string first = RandomBytes(100000, 4);
         std::string content;
         std::string head;
         for (uint64_t seed = 40;; ++seed) {
           head = RandomBytes(100, seed);
           content = head + first.substr(100);
           if (PlacementX(content) != PlacementX(first)) break;
         }
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         for (size_t off = 0; off < first.size(); off += 10000)
           REQUIRE(WriteAll(fd, first.substr(off, 10000)));
         REQUIRE(WriteAllAt(fd, head, 0));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"ftruncate-shorter-then-more-writes",
       [&](const std::string& path) {
         std::string first = RandomBytes(80000, 5);
         std::string more = RandomBytes(50000, 50);
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         REQUIRE(WriteAll(fd, first));
         REQUIRE(::ftruncate(fd, 30000) == 0);
         REQUIRE(WriteAllAt(fd, more, 30000));  // back to 80000 bytes
         REQUIRE(::close(fd) == 0);
         return first.substr(0, 30000) + more;
       }},
      {"ftruncate-longer-then-partly-written",
       [&](const std::string& path) {
         std::string data = RandomBytes(30000, 6);
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         REQUIRE(::ftruncate(fd, 65636) == 0);
         REQUIRE(WriteAll(fd, data));  // from 0, in order, but the hole stays
         REQUIRE(::close(fd) == 0);
         return data + std::string(65636 - data.size(), '\0');
       }},
      {"ftruncate-longer-then-filled-in-order",
       [&](const std::string& path) {
         std::string content = RandomBytes(50000, 7);
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         REQUIRE(::ftruncate(fd, 50000) == 0);
         for (size_t off = 0; off < content.size(); off += 8192)
           REQUIRE(WriteAll(fd, content.substr(off, 8192)));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"write-ftruncate-longer-write-on",
       [&](const std::string& path) {
         std::string a = RandomBytes(10000, 8);
         std::string b = RandomBytes(20000, 80);
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         REQUIRE(WriteAll(fd, a));
         REQUIRE(::ftruncate(fd, 50000) == 0);
         REQUIRE(WriteAll(fd, b));  // at 10000: in order, the tail stays a hole
         REQUIRE(::close(fd) == 0);
         return a + b + std::string(20000, '\0');
       }},
      {"o-append-new-file",
       [&](const std::string& path) {
         std::string content;
         int fd = open_new(path, O_APPEND);
         REQUIRE(fd >= 0);
         for (uint64_t i = 0; i < 5; ++i) {
           std::string part = RandomBytes(7000 + i, 90 + i);
           REQUIRE(WriteAll(fd, part));
           content += part;
         }
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"o-append-to-existing-file",
       [&](const std::string& path) {
         std::string old = RandomBytes(20000, 10);
         REQUIRE(WriteWithPosix(path, old) == 0);
         std::string tail;
         for (uint64_t seed = 100;; ++seed) {
           tail = RandomBytes(9000, seed);
           if (PlacementX(old + tail) != PlacementX(old)) break;
         }
         REQUIRE(WriteWithPosix(path, tail.substr(0, 4000), O_APPEND) == 0);
         REQUIRE(WriteWithPosix(path, tail.substr(4000), O_APPEND) == 0);
         return old + tail;
       }},
      {"o-trunc-over-existing-file",
       [&](const std::string& path) {
         std::string old = RandomBytes(40000, 11);
         REQUIRE(WriteWithPosix(path, old) == 0);
         std::string content = BytesWithOtherX(25000, 110, old);
         int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
         REQUIRE(fd >= 0);
         for (size_t off = 0; off < content.size(); off += 5000)
           REQUIRE(WriteAll(fd, content.substr(off, 5000)));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"read-write-modified-in-the-middle",
       [&](const std::string& path) {
         std::string content = RandomBytes(120000, 12);
         REQUIRE(WriteWithPosix(path, content) == 0);
         const std::string old = content;
         for (uint64_t seed = 120;; ++seed) {
           content.replace(60000, 1000, RandomBytes(1000, seed));
           if (PlacementX(content) != PlacementX(old)) break;
         }
         int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
         REQUIRE(fd >= 0);
         REQUIRE(WriteAllAt(fd, content.substr(60000, 1000), 60000));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"read-write-rewritten-from-the-start",
       [&](const std::string& path) {
         // Downloaded first, then every byte written again in order: the
         // same size, other content.
         std::string old = RandomBytes(70000, 13);
         REQUIRE(WriteWithPosix(path, old) == 0);
         std::string content = BytesWithOtherX(old.size(), 130, old);
         int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
         REQUIRE(fd >= 0);
         for (size_t off = 0; off < content.size(); off += 7000)
           REQUIRE(WriteAll(fd, content.substr(off, 7000)));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"read-write-ftruncate-zero-then-written",
       [&](const std::string& path) {
         std::string old = RandomBytes(30000, 14);
         REQUIRE(WriteWithPosix(path, old) == 0);
         std::string content = BytesWithOtherX(45000, 140, old);
         int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
         REQUIRE(fd >= 0);
         REQUIRE(::ftruncate(fd, 0) == 0);
         REQUIRE(WriteAllAt(fd, content, 0));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
      {"two-handles-one-overwriting-what-the-other-wrote",
       [&](const std::string& path) {
         std::string in_order = RandomBytes(100000, 16);
         std::string patch;
         std::string content;
         for (uint64_t seed = 160;; ++seed) {
           patch = RandomBytes(500, seed);
           content = in_order;
           content.replace(100, patch.size(), patch);
           if (PlacementX(content) != PlacementX(in_order)) break;
         }
         int fd1 = open_new(path);
         REQUIRE(fd1 >= 0);
         int fd2 = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
         REQUIRE(fd2 >= 0);
         REQUIRE(WriteAll(fd1, in_order.substr(0, 50000)));
         REQUIRE(WriteAllAt(fd2, patch, 100));
         REQUIRE(WriteAll(fd1, in_order.substr(50000)));
         REQUIRE(::close(fd2) == 0);
         REQUIRE(::close(fd1) == 0);
         return content;
       }},
      {"fsync-midway-then-written-on",
       [&](const std::string& path) {
         std::string content = RandomBytes(90000, 15);
         int fd = open_new(path);
         REQUIRE(fd >= 0);
         REQUIRE(WriteAll(fd, content.substr(0, 40000)));
         REQUIRE(::fsync(fd) == 0);  // uploads 40000 bytes; the MD5 goes on
         REQUIRE(WriteAll(fd, content.substr(40000)));
         REQUIRE(::close(fd) == 0);
         return content;
       }},
  };

  std::map<std::string, std::string> expected;
  std::set<int> residues;
  for (const auto& pattern : patterns) {
    CAPTURE(pattern.name);
    const std::string content = pattern.write(m / pattern.name);
    expected[pattern.name] = content;
    residues.insert(PlacementX(content));
    CheckPlacedByTable1(fx.cluster, "", pattern.name, content);
    CHECK(ReadWithPosix(m / pattern.name) == content);
  }
  MESSAGE("placement residues covered: ", residues.size(), " of 4");
  CHECK(ListDir(m.spool_dir()).empty());

  Mount fresh(fx.conf, fx.cluster.root() + "/mnt-fresh");
  for (const auto& file : expected) {
    const std::string& name = file.first;  // CAPTURE cannot take a structured binding (clang 14)
    CAPTURE(name);
    int err = 0;
    CHECK(ReadWithPosix(fresh / name, &err) == file.second);
    CHECK(err == 0);
  }
}

// Reads `fd` from `offset` to its end with pread; *err gets the errno of a failed read.
std::string PreadToEnd(int fd, uint64_t offset, int* err) {
  *err = 0;
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(offset + out.size()));
    if (n < 0) {
      *err = errno;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST_CASE("an open right after another mount's rewrite reads every new byte") {
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  REQUIRE(WriteWithPosix(a / "f", "0123456789") == 0);
  struct stat st {};
  REQUIRE(StatErrno(b / "f", &st) == 0);  // b's kernel and cache now know 10 bytes
  CHECK(st.st_size == 10);
  CHECK(ReadWithPosix(b / "f") == "0123456789");

  const std::string v2 = RandomBytes(5000, 21);
  REQUIRE(WriteWithPosix(a / "f", v2) == 0);
  int fd = ::open((b / "f").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct stat fst {};
  CHECK(::fstat(fd, &fst) == 0);
  CHECK(fst.st_size == 5000);
  int err = 0;
  CHECK(PreadToEnd(fd, 0, &err) == v2);
  CHECK(err == 0);
  CHECK(::close(fd) == 0);
  REQUIRE(StatErrno(b / "f", &st) == 0);
  CHECK(st.st_size == 5000);

  // The other way: a has its own upload cached; b's rewrite wins at a's next open.
  const std::string v3 = RandomBytes(7000, 22);
  REQUIRE(WriteWithPosix(b / "f", v3) == 0);
  CHECK(ReadWithPosix(a / "f") == v3);

  // Shorter, then the same size with other bytes.
  REQUIRE(WriteWithPosix(a / "f", "abc") == 0);
  CHECK(ReadWithPosix(b / "f") == "abc");
  REQUIRE(WriteWithPosix(a / "f", "xyz") == 0);
  auto cat = Run({"/bin/cat", b / "f"});
  CHECK(cat.exit_code == 0);
  CHECK(cat.out == "xyz");
}

TEST_CASE(
    "a handle opened before another mount's rewrite reads the old version or fails with ESTALE") {
  // fs.h: each handle reads the version that was newest when it was opened.
  // Once the servers replaced that version, what the handle has not fetched
  // yet is gone: the read fails with ESTALE. Never new bytes, never a mix.
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  struct Case {
    std::string name;
    size_t old_size;
    size_t new_size;
    size_t read_before;  // bytes b reads through the handle before the rewrite
  };
  const std::vector<Case> cases = {{"small", 10, 5000, 0},
                                   {"large", 400000, 600000, 0},
                                   {"large-partly-read", 400000, 600000, 4096}};
  uint64_t seed = 200;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::string old = RandomBytes(c.old_size, seed++);
    const std::string neu = RandomBytes(c.new_size, seed++);
    REQUIRE(WriteWithPosix(a / c.name, old) == 0);
    int fd = ::open((b / c.name).c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::string got;
    if (c.read_before > 0) {
      got.resize(c.read_before);
      REQUIRE(::pread(fd, got.data(), got.size(), 0) == static_cast<ssize_t>(got.size()));
      CHECK(got == old.substr(0, got.size()));
    }
    REQUIRE(WriteWithPosix(a / c.name, neu) == 0);
    struct stat fst {};
    CHECK(::fstat(fd, &fst) == 0);
    CHECK(static_cast<size_t>(fst.st_size) == old.size());
    int err = 0;
    got += PreadToEnd(fd, got.size(), &err);
    CHECK(::close(fd) == 0);
    MESSAGE(c.name, ": the old handle read ", got.size(), " bytes, then ",
            err == 0 ? std::string("the end") : std::string(std::strerror(err)));
    CHECK((err == 0 || err == ESTALE));
    if (err == 0) {
      CHECK(got == old);
    } else {
      CHECK(got.size() < old.size());
      CHECK(old.compare(0, got.size(), got) == 0);
    }
    CHECK(ReadWithPosix(b / c.name) == neu);
  }
}

TEST_CASE("after ls -l in one mount, another mount's rewrite is read whole at the next open") {
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  REQUIRE(WriteWithPosix(a / "f", "0123456789") == 0);
  REQUIRE(WriteWithPosix(a / "g", "g") == 0);
  auto ls = Run({"/bin/ls", "-l", b.dir()});  // readdirplus: b's kernel knows 10 bytes
  CHECK(ls.exit_code == 0);
  CHECK(ls.out.find(" 10 ") != std::string::npos);

  const std::string v2 = RandomBytes(5000, 23);
  REQUIRE(WriteWithPosix(a / "f", v2) == 0);
  CHECK(ReadWithPosix(b / "f") == v2);
  struct stat st {};
  REQUIRE(StatErrno(b / "f", &st) == 0);
  CHECK(st.st_size == 5000);
}

TEST_CASE("a folder listed again for a lookup does not hide another mount's rewrite from open") {
  // b's kernel knows f's old size for a second (from ls -l). A local change
  // in the folder makes b's next lookup list the folder again, which brings
  // f's new version into b's cache without telling b's kernel.
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  const std::vector<std::string> changes = {"unlink", "rename"};
  uint64_t seed = 300;
  for (const auto& change : changes) {
    CAPTURE(change);
    const std::string dir = "d-" + change;
    REQUIRE(::mkdir((a / dir).c_str(), 0755) == 0);
    REQUIRE(WriteWithPosix(a / (dir + "/f"), "0123456789") == 0);
    REQUIRE(WriteWithPosix(a / (dir + "/other"), "other") == 0);
    auto ls = Run({"/bin/ls", "-l", b / dir});
    CHECK(ls.exit_code == 0);
    CHECK(ls.out.find(" 10 ") != std::string::npos);

    const std::string v2 = RandomBytes(5000, seed++);
    REQUIRE(WriteWithPosix(a / (dir + "/f"), v2) == 0);
    if (change == "unlink") {
      REQUIRE(::unlink((b / (dir + "/other")).c_str()) == 0);
    } else {
      REQUIRE(::rename((b / (dir + "/other")).c_str(), (b / (dir + "/moved")).c_str()) == 0);
    }
    CHECK(StatErrno(b / (dir + "/other")) == ENOENT);  // lists the folder again

    int fd = ::open((b / (dir + "/f")).c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    struct stat fst {};
    CHECK(::fstat(fd, &fst) == 0);
    CHECK(fst.st_size == 5000);
    int err = 0;
    const std::string got = PreadToEnd(fd, 0, &err);
    CHECK(err == 0);
    CHECK(got.size() == v2.size());
    CHECK((got == v2));
    CHECK(::close(fd) == 0);
  }
}

TEST_CASE("a name another mount creates shows within seconds after a failed lookup") {
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  REQUIRE(::mkdir((a / "sub").c_str(), 0755) == 0);
  for (const std::string name : {"later.txt", "sub/later.txt"}) {
    CAPTURE(name);
    CHECK(StatErrno(b / name) == ENOENT);
    CHECK(StatErrno(b / name) == ENOENT);  // from the caches now
    CHECK_FALSE(Contains(ListDir(b / (name == "later.txt" ? "" : "sub")), "later.txt"));
    REQUIRE(WriteWithPosix(a / name, "made by A: " + name) == 0);
    CHECK(Eventually([&] { return StatErrno(b / name) == 0; }));
    CHECK(ReadWithPosix(b / name) == "made by A: " + name);
    CHECK(Eventually(
        [&] { return Contains(ListDir(b / (name == "later.txt" ? "" : "sub")), "later.txt"); }));
  }
}

TEST_CASE("a file created right after a failed lookup of its name is there at once") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  ::umask(022);
  auto check_listed = [&](const std::string& dir, const std::string& name, size_t size) {
    CAPTURE(name);
    CHECK(Contains(ReadDirNames(m / dir), name));
    struct stat st {};
    REQUIRE(StatErrno(m / (dir.empty() ? name : dir + "/" + name), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0644);
    CHECK(static_cast<size_t>(st.st_size) == size);
  };
  // Absent by a failed lookup and by a fresh listing of the folder.
  REQUIRE(WriteWithPosix(m / "old.txt", "old") == 0);
  CHECK(StatErrno(m / "new.txt") == ENOENT);
  CHECK_FALSE(Contains(ReadDirNames(m.dir()), "new.txt"));
  const std::string content = RandomBytes(1234, 31);
  REQUIRE(WriteWithPosix(m / "new.txt", content) == 0);
  check_listed("", "new.txt", content.size());
  check_listed("", "old.txt", 3);
  CHECK(ReadWithPosix(m / "new.txt") == content);

  // In a folder just made (known to be empty).
  REQUIRE(::mkdir((m / "d").c_str(), 0755) == 0);
  CHECK(StatErrno(m / "d/x") == ENOENT);
  CHECK(ReadDirNames(m / "d").empty());
  REQUIRE(WriteWithPosix(m / "d/x", std::string(777, 'x')) == 0);
  CHECK(ReadDirNames(m / "d") == std::vector<std::string>{"x"});
  check_listed("d", "x", 777);

  // Deleted, looked up, created again.
  REQUIRE(::unlink((m / "new.txt").c_str()) == 0);
  CHECK(StatErrno(m / "new.txt") == ENOENT);
  CHECK_FALSE(Contains(ReadDirNames(m.dir()), "new.txt"));
  REQUIRE(WriteWithPosix(m / "new.txt", "again") == 0);
  check_listed("", "new.txt", 5);
  CHECK(ReadWithPosix(m / "new.txt") == "again");

  Mount fresh(fx.conf, fx.cluster.root() + "/mnt-fresh");
  CHECK(ReadWithPosix(fresh / "new.txt") == "again");
  CHECK(ReadWithPosix(fresh / "d/x") == std::string(777, 'x'));
}

TEST_CASE("a create right after a failed lookup keeps the file another mount made meanwhile") {
  // b's failed lookup is cached (kernel and mount) for a second. If a makes
  // the name in that second, b's open(O_CREAT) without O_TRUNC must still
  // open a's file, as on a local disk (and on NFS), not replace it.
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  CHECK(StatErrno(b / "log.txt") == ENOENT);
  REQUIRE(WriteWithPosix(a / "log.txt", "line from A\n") == 0);
  CHECK(WriteWithPosix(b / "log.txt", "line from B\n", O_APPEND) == 0);
  CHECK(ReadWithPosix(a / "log.txt") == "line from A\nline from B\n");

  CHECK(StatErrno(b / "lock") == ENOENT);
  REQUIRE(WriteWithPosix(a / "lock", "held by A") == 0);
  int fd = ::open((b / "lock").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  const int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    CHECK(WriteAll(fd, std::string("held by B")));
    CHECK(::close(fd) == 0);
  }
  CHECK(err == EEXIST);
  CHECK(ReadWithPosix(a / "lock") == "held by A");
}

TEST_CASE("cp -r of 200 small files lists each with its size and mode, and rm -r leaves nothing") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  ::umask(022);
  const std::string src = fx.local / "tree";
  REQUIRE(::mkdir(src.c_str(), 0755) == 0);
  struct Expect {
    std::string content;
    mode_t mode;
  };
  std::map<std::string, Expect> files;
  const mode_t modes[] = {0644, 0600, 0755, 0640};
  for (int i = 0; i < 200; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "file-%03d.txt", i);
    Expect e{RandomBytes(static_cast<size_t>(i * 37 % 3001), 1000 + i), modes[i % 4]};
    WriteFile(src + "/" + name, e.content);
    REQUIRE(::chmod((src + "/" + name).c_str(), e.mode) == 0);
    files[name] = e;
  }
  auto cp = Run({"/bin/cp", "-r", src, m / "tree"}, "", 120);
  REQUIRE_MESSAGE(cp.exit_code == 0, cp.err);

  // ls -l: readdir, then stat of every name.
  std::vector<std::string> names = ReadDirNames(m / "tree");
  CHECK(names.size() == files.size());
  for (const auto& name : names) {
    CAPTURE(name);
    auto it = files.find(name);
    REQUIRE(it != files.end());
    struct stat st {};
    REQUIRE(StatErrno(m / ("tree/" + name), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == it->second.mode);
    CHECK(static_cast<size_t>(st.st_size) == it->second.content.size());
  }
  auto ls = Run({"/bin/ls", "-l", m / "tree"});
  CHECK(ls.exit_code == 0);
  CHECK(ls.out.find("-rwxr-xr-x") != std::string::npos);
  for (int i = 0; i < 200; i += 23) {
    char name[32];
    std::snprintf(name, sizeof name, "file-%03d.txt", i);
    CHECK(ReadWithPosix(m / ("tree/" + std::string(name))) == files[name].content);
    CheckPlacedByTable1(fx.cluster, "tree", name, files[name].content);
  }

  // rm -r: unlink each name, then the folder.
  for (const auto& name : names) {
    CAPTURE(name);
    CHECK(::unlink((m / ("tree/" + name)).c_str()) == 0);
  }
  CHECK(::rmdir((m / "tree").c_str()) == 0);
  CHECK(StatErrno(m / "tree") == ENOENT);
  CHECK_FALSE(Contains(ListDir(m.dir()), "tree"));
  for (int s = 0; s < 4; ++s) {
    CAPTURE(s);
    for (const auto& left : PieceFilesIn(fx.cluster.server_dir(s) + "/Alice/tree"))
      CHECK_MESSAGE(!files.count(left.first), "piece files of ", left.first, " are left");
  }
  Mount fresh(fx.conf, fx.cluster.root() + "/mnt-fresh");
  CHECK(StatErrno(fresh / "tree") == ENOENT);
  CHECK_FALSE(Contains(ListDir(fresh.dir()), "tree"));
}

TEST_CASE("unlink after another mount's rewrite of a listed file deletes it everywhere") {
  // b's listing still names the old version when b unlinks. The tombstone's
  // stamp is newer than that version and than now (Client::Unlink), so it is
  // also newer than a's rewrite, which happened before: the file is gone.
  Fixture fx;
  Mount a(fx.conf, fx.cluster.root() + "/mnt-a");
  Mount b(fx.conf, fx.cluster.root() + "/mnt-b");
  REQUIRE(WriteWithPosix(a / "f", "version 1") == 0);
  REQUIRE(WriteWithPosix(a / "keep", "keep") == 0);
  auto ls = Run({"/bin/ls", "-l", b.dir()});
  CHECK(ls.exit_code == 0);
  CHECK(ls.out.find(" f\n") != std::string::npos);
  REQUIRE(WriteWithPosix(a / "f", "version 2, written after b listed the folder") == 0);
  CHECK(::unlink((b / "f").c_str()) == 0);

  CHECK(StatErrno(b / "f") == ENOENT);
  CHECK(Eventually([&] { return StatErrno(a / "f") == ENOENT; }));
  for (int s = 0; s < 4; ++s) {
    CAPTURE(s);
    auto pieces = PieceFilesIn(fx.cluster.server_dir(s) + "/Alice");
    CHECK(pieces.count("f") == 0);
    CHECK(pieces.count("keep") == 1);
  }

  // A name b listed as a file that a has since made a folder: b's unlink
  // must not take the folder's content with it.
  REQUIRE(WriteWithPosix(a / "g", "a file") == 0);
  ls = Run({"/bin/ls", "-l", b.dir()});
  CHECK(ls.out.find(" g\n") != std::string::npos);
  REQUIRE(::unlink((a / "g").c_str()) == 0);
  REQUIRE(::mkdir((a / "g").c_str(), 0755) == 0);
  REQUIRE(WriteWithPosix(a / "g/inside", "inside") == 0);
  CHECK((::unlink((b / "g").c_str()) == 0 ? 0 : errno) == EISDIR);

  Mount fresh(fx.conf, fx.cluster.root() + "/mnt-fresh");
  int err = 0;
  ReadWithPosix(fresh / "f", &err);
  CHECK(err == ENOENT);
  CHECK(ListDir(fresh.dir()) == std::vector<std::string>{"g", "keep"});
  struct stat st {};
  REQUIRE(StatErrno(fresh / "g", &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(ReadWithPosix(fresh / "g/inside") == "inside");
}

TEST_CASE("the mount command run again after dfcfs was killed replaces the dead mount") {
  Fixture f;
  const std::string dir = f.cluster.root() + "/mnt";
  pid_t first = -1;
  {
    Mount m(f.conf, dir);
    REQUIRE(WriteWithPosix(m / "kept.txt", "before the crash") == 0);
    first = m.pid();
    ::kill(first, SIGKILL);
    int status = 0;
    ::waitpid(first, &status, 0);
    CHECK(StatErrno(m / "kept.txt") == ENOTCONN);
    // The same command again: the dead mount is detached and replaced.
    Mount again(f.conf, dir);
    std::string content;
    for (int i = 0; i < 100 && content.empty(); ++i) {
      char buf[64];
      const int fd = ::open((again / "kept.txt").c_str(), O_RDONLY | O_CLOEXEC);
      const ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
      if (fd >= 0) ::close(fd);
      if (n > 0) content.assign(buf, static_cast<size_t>(n));
      if (content.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(content == "before the crash");
    CHECK(again.Log().find("detached the dead mount") != std::string::npos);
    CHECK(again.Unmount() == 0);
  }
  CHECK_FALSE(IsDfsMount(dir));
}

TEST_CASE("--version names each program and the version") {
  for (const char* var : {"DFCFS", "DFC", "DFS_SERVER"}) {
    CAPTURE(var);
    const CommandResult r = Run({BinaryPath(var), "--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find(" 0.") != std::string::npos);
    CHECK(r.out.back() == '\n');
  }
}

TEST_CASE("mount -t fuse.dfcfs runs the helper with an fstab line's options, and umount ends it") {
  Fixture fx;
  if (Run({"/usr/bin/unshare", "--mount", "/bin/true"}).exit_code != 0) {
    MESSAGE("SKIPPED: cannot make a mount namespace (unshare --mount)");
    return;
  }
  // mount(8) runs /sbin/mount.fuse.dfcfs for type fuse.dfcfs: in a mount
  // namespace of its own, the test's /sbin holds the helper as installed
  // (a link to dfcfs) and nothing else, so the machine's /sbin is untouched.
  const std::string sbin = fx.cluster.root() + "/sbin";
  REQUIRE(::mkdir(sbin.c_str(), 0755) == 0);
  REQUIRE(::symlink(BinaryPath("DFCFS").c_str(), (sbin + "/mount.fuse.dfcfs").c_str()) == 0);
  const std::string mnt = fx.cluster.root() + "/mnt";
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  const std::string script = "set -e; mount --bind " + sbin + " \"$(readlink -f /sbin)\"; " +
                             // The options of the README's fstab line, and systemd's.
                             "mount -t fuse.dfcfs -o defaults,_netdev,nofail,x-systemd.automount " +
                             fx.conf + " " + mnt + "; grep ' " + mnt +
                             " fuse.dfcfs ' /proc/self/mounts; echo through-mount > " + mnt +
                             "/m.txt; cat " + mnt + "/m.txt; umount " + mnt + "; grep -c ' " + mnt +
                             " ' /proc/self/mounts || true";
  auto r = Run({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script},
               "", 60);
  INFO(r.out);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("fuse.dfcfs") != std::string::npos);
  CHECK(r.out.find("through-mount\n") != std::string::npos);
  CHECK(r.out.substr(r.out.size() >= 2 ? r.out.size() - 2 : 0) == "0\n");  // unmounted
  // What it wrote is on the servers: a mount of our own reads it.
  Mount m(fx.conf, mnt);
  CHECK(ReadWithPosix(m / "m.txt") == "through-mount\n");
}

TEST_CASE("the mount root's user.dfs.stats gives the mount's counters in Prometheus format") {
  Fixture fx;
  Mount m(fx.conf, fx.cluster.root() + "/mnt");
  auto stats = [&]() -> std::string {
    char buf[16384];
    const ssize_t n = ::getxattr(m.dir().c_str(), "user.dfs.stats", buf, sizeof buf);
    return n < 0 ? "getxattr: " + std::string(std::strerror(errno))
                 : std::string(buf, static_cast<size_t>(n));
  };
  auto value = [](const std::string& text, const std::string& name) -> long long {
    const size_t at = ("\n" + text).find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size() + 1));
  };
  const std::string before = stats();
  INFO(before);
  REQUIRE(value(before, "dfcfs_uploads_total") == 0);
  CHECK(before.find("# TYPE dfcfs_uploads_total counter\n") != std::string::npos);
  for (int i = 0; i < 3; ++i)
    REQUIRE(WriteWithPosix(m / ("f" + std::to_string(i)), std::string(1000, 'x')) == 0);
  CHECK(ReadWithPosix(m / "f1") == std::string(1000, 'x'));
  const std::string after = stats();
  INFO(after);
  CHECK(value(after, "dfcfs_uploads_total") == 3);
  CHECK(value(after, "dfcfs_upload_bytes_total") == 3000);
  CHECK(value(after, "dfcfs_upload_failures_total") == 0);
  CHECK(value(after, "dfcfs_sent_bytes_total") > 3 * 2 * 1000);  // two copies of each byte
  CHECK(value(after, "dfcfs_read_bytes_total") >= 1000);
  CHECK(value(after, "dfcfs_hints_written_total") == 0);
  // Read-only, on the root alone, and not listed.
  CHECK(::setxattr(m.dir().c_str(), "user.dfs.stats", "x", 1, 0) == -1);
  CHECK(errno == EPERM);
  char buf[64];
  CHECK(::getxattr((m / "f0").c_str(), "user.dfs.stats", buf, sizeof buf) == -1);
  CHECK(errno == ENODATA);
  CHECK(::listxattr(m.dir().c_str(), buf, sizeof buf) == 0);
  // A server down: the next write notes a hint for it.
  fx.cluster.Kill(1);
  REQUIRE(WriteWithPosix(m / "while-down", "x") == 0);
  CHECK(value(stats(), "dfcfs_hints_written_total") >= 1);
  // (Not degraded: a substitute server keeps the second copy meanwhile.)
  CHECK(value(stats(), "dfcfs_degraded_uploads_total") == 0);
}

}  // namespace
}  // namespace dfs::testing
