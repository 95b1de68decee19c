// The storage engine: piece files, tombstones, staging and directories.
#include "dfs_server/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "dfs_server/metrics.h"
#include "dfs_server/usage_ledger.h"
#include "shared/crypto/crypto.h"
#include "shared/format/hint.h"
#include "shared/format/xattrs.h"
#include "shared/util/file_io.h"
#include "shared/util/log.h"
#include "shared/util/names.h"
#include "shared/util/thread_annotations.h"

namespace dfs::server {
namespace {

spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> logger = Logger("store");
  return *logger;
}

// A user's path for a log line or a message, quoted and escaped ("'/'" for
// the root).
std::string Quoted(std::string_view dir, std::string_view name = {}) {
  std::string path = name.empty() ? std::string(dir) : JoinName(dir, name);
  return Escaped(path.empty() ? std::string_view("/") : std::string_view(path));
}

Status ValidateUser(std::string_view user) {
  DFS_RETURN_IF_ERROR(ValidateName(user));
  if (user.front() == '.') return Status::Invalid("a username cannot start with '.'");
  return Status::Ok();
}

// A user-visible leaf name that would read as a piece file (".x.1") is
// reserved: a directory under it would collide with the pieces of "x".
Status CheckNotReserved(std::string_view leaf) {
  std::string name;
  int piece = 0;
  if (ParsePieceFileName(leaf, &name, &piece))
    return Status::Invalid("name " + Escaped(leaf) + " is reserved (it reads as a piece file)");
  if (leaf == kFolderRecordFile)
    return Status::Invalid("name " + Escaped(leaf) + " is reserved (folder records)");
  return Status::Ok();
}

std::string RandomSuffix() {
  uint8_t bytes[8];
  RandomBytes(bytes, sizeof bytes);
  return ToHex(bytes);
}

// The folder that lists `dir` (itself for the root): where dir's subfolder
// count shows.
std::string GrandParentOf(const std::string& dir) {
  const size_t slash = dir.rfind('/');
  return slash == std::string::npos ? std::string() : dir.substr(0, slash);
}

// The name of a retired piece (store.h layout): content, piece index, and
// a hash (FNV-1a, 64 bits) of the path it had, so that the same content
// under two names (a rename) keeps two retired pieces.
std::string RetiredName(const Cid& cid, int piece, std::string_view dir, std::string_view name) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(dir);
  mix("/");
  mix(name);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return ToHex(cid) + "." + std::to_string(piece) + "." + hex;
}

std::string StagedName(const Cid& cid, int piece) {
  return ToHex(cid) + "." + std::to_string(piece);
}

Status Fsync(int fd, std::string_view what) {
  const auto start = std::chrono::steady_clock::now();
  const int r = ::fsync(fd);
  ProcessFsyncs().Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (r != 0) return FromErrno(errno, what);
  return Status::Ok();
}

UniqueFd OpenFileAt(int dir_fd, const std::string& file, int flags) {
  return UniqueFd(::openat(dir_fd, file.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
}

// OpenDirBeneath() for kernels without openat2(2) (before 5.6, or a seccomp
// filter that answers ENOSYS): one component at a time, O_NOFOLLOW, so no
// symbolic link is followed anywhere on the way.
UniqueFd WalkDirBeneath(int base_fd, std::string_view path) {
  UniqueFd cur(::fcntl(base_fd, F_DUPFD_CLOEXEC, 0));
  size_t i = 0;
  while (cur && i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    const std::string part(path.substr(i, j - i));
    i = j + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") {
      errno = EXDEV;
      return UniqueFd();
    }
    UniqueFd next(
        ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      // O_DIRECTORY wins over O_NOFOLLOW: a link comes back as ENOTDIR.
      int err = errno;
      struct stat st {};
      if (err == ENOTDIR && ::fstatat(cur.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        err = ELOOP;
      errno = err;
      return UniqueFd();
    }
    cur = std::move(next);
  }
  return cur;
}

// Opens folder `path` ("a/b": relative, no "." or "..") below base_fd without
// following any symbolic link and without leaving base_fd. On failure an
// invalid fd and errno: ELOOP for a link on the way, EXDEV for a path that
// would leave base_fd, ENOENT, ENOTDIR, ...
UniqueFd OpenDirBeneath(int base_fd, const std::string& path) {
  static std::atomic<bool> have_openat2{true};
  if (have_openat2.load(std::memory_order_relaxed)) {
    struct open_how how {};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = -1;
    // EAGAIN: a concurrent rename somewhere on the path; try again.
    for (int attempt = 0; attempt < 8; ++attempt) {
      fd = ::syscall(SYS_openat2, base_fd, path.c_str(), &how, sizeof how);
      if (fd >= 0) return UniqueFd(static_cast<int>(fd));
      if (errno != EAGAIN && errno != EINTR) break;
    }
    if (errno != ENOSYS) return UniqueFd();
    have_openat2.store(false, std::memory_order_relaxed);
  }
  return WalkDirBeneath(base_fd, path);
}

// The Status of a failed OpenDirBeneath() of the user's folder `shown`.
Status DirOpenError(int err, const std::string& shown) {
  switch (err) {
    case ENOENT:
      return Status::NotFound("no such directory " + shown);
    case ENOTDIR:
      return Status::NotDir("not a directory: " + shown);
    case ELOOP:
      return Status::Permission("refusing to follow a symbolic link in " + shown);
    case EXDEV:
      return Status::Permission("refusing to leave the user's folder for " + shown);
    default:
      return FromErrno(err, "open directory " + shown);
  }
}

// Size of dir_fd/file if it is a regular file, else 0.
uint64_t SizeAt(int dir_fd, const std::string& file) {
  struct stat st {};
  if (::fstatat(dir_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
    return 0;
  return static_cast<uint64_t>(st.st_size);
}

// Files in a user's staging folder: "CIDHEX.K.part-R" (an upload under way,
// its bytes charged to its StagedPiece), "~R" (a temporary file of a
// tombstone or rename), else a finished staged piece "CIDHEX.K".
bool IsPartFile(std::string_view file) { return file.find(".part-") != std::string_view::npos; }
bool IsTempFile(std::string_view file) { return !file.empty() && file.front() == '~'; }

bool IsControlByte(char c) {
  const auto b = static_cast<unsigned char>(c);
  return b < 0x20 || b == 0x7f;
}

// Overwrites the header of an existing piece file in place and fsyncs it.
Status RewriteHeader(int dir_fd, const std::string& file, const PieceHeader& header) {
  UniqueFd fd = OpenFileAt(dir_fd, file, O_WRONLY);
  if (!fd) return FromErrno(errno, "open " + Escaped(file));
  const std::string raw = header.Encode();
  DFS_RETURN_IF_ERROR(
      PwriteAll(fd.get(), raw.data(), raw.size(), 0, "rewrite header of " + Escaped(file)));
  return Fsync(fd.get(), "fsync " + Escaped(file));
}

// unlinkat() that treats a missing file as done.
Status UnlinkIfExists(int dir_fd, const std::string& file) {
  if (::unlinkat(dir_fd, file.c_str(), 0) != 0 && errno != ENOENT)
    return FromErrno(errno, "unlink " + Escaped(file));
  return Status::Ok();
}

// The new headers of a rename or setattr by piece index.
using HeadersByPiece = std::array<const PieceHeader*, kMaxPieceIndex + 1>;

// Indexes `headers` by piece, checking that each is a piece header of
// content `cid` with `stamp`, and that no index is out of range or given
// twice. kInvalidArgument otherwise.
Result<HeadersByPiece> IndexHeaders(const std::vector<PieceHeader>& headers, const Cid& cid,
                                    const Stamp& stamp) {
  HeadersByPiece out{};
  for (const PieceHeader& h : headers) {
    const std::string which = "new header of piece " + std::to_string(h.piece);
    if (h.kind != PieceKind::kPiece) return Status::Invalid(which + " is not a piece header");
    if (h.piece < 1 || h.piece > kMaxPieceIndex)
      return Status::Invalid("piece index " + std::to_string(h.piece) + " out of range");
    if (h.cid != cid) return Status::Invalid(which + " names other content");
    if (h.stamp != stamp) return Status::Invalid(which + " carries another stamp");
    if (out[h.piece] != nullptr) return Status::Invalid(which + " given twice");
    out[h.piece] = &h;
  }
  return out;
}

// kInvalidArgument unless `next` describes the sealed content stored after
// `prev`, so that it can replace `prev` without touching the content (the
// extended attributes after it may change: Store::PlaceHeader).
Status CheckSameData(const PieceHeader& prev, const PieceHeader& next) {
  if (next.data_size() == prev.data_size() && next.chunk_bytes == prev.chunk_bytes)
    return Status::Ok();
  return Status::Invalid("new header of piece " + std::to_string(prev.piece) +
                         " does not match the stored piece (" + std::to_string(next.data_size()) +
                         " sealed bytes in chunks of " + std::to_string(next.chunk_bytes) +
                         ", stored " + std::to_string(prev.data_size()) + " in chunks of " +
                         std::to_string(prev.chunk_bytes) + ")");
}

// kInvalidArgument unless every new header describes `xattrs`, the sealed
// extended attributes that come with them.
Status CheckXattrs(const std::vector<PieceHeader>& headers, std::string_view xattrs) {
  if (xattrs.size() > kMaxXattrTrailerBytes)
    return Status::Invalid("extended attributes of " + std::to_string(xattrs.size()) + " bytes");
  for (const PieceHeader& h : headers)
    if (h.xattr_bytes != xattrs.size())
      return Status::Invalid("new header of piece " + std::to_string(h.piece) + " describes " +
                             std::to_string(h.xattr_bytes) + " bytes of extended attributes, " +
                             std::to_string(xattrs.size()) + " came");
  return Status::Ok();
}

// ReadHeaderFd's slot of a folder record (kFolderRecordFile).
constexpr int kFolderSlot = -1;

// Reads and checks the header of an open piece file stored in slot `slot`
// (0 = tombstone, kFolderSlot = a folder record). kCorrupt when it is not a
// well-formed header for the slot.
Result<PieceHeader> ReadHeaderFd(int fd, int slot) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return FromErrno(errno, "fstat");
  if (!S_ISREG(st.st_mode)) return Status::Corrupt("not a regular file");
  char raw[kPieceHeaderBytes];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t r = ::pread(fd, raw + got, sizeof raw - got, static_cast<off_t>(got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "read piece header");
    }
    if (r == 0) return Status::Corrupt("file shorter than a piece header");
    got += static_cast<size_t>(r);
  }
  DFS_ASSIGN_OR_RETURN(PieceHeader h, PieceHeader::Decode(std::string_view(raw, sizeof raw)));
  const bool fits = slot == kFolderSlot ? h.folder()
                    : slot == 0         ? h.tombstone()
                                        : h.kind == PieceKind::kPiece && h.piece == slot;
  if (!fits) return Status::Corrupt("header does not match the file's piece number");
  return h;
}

// The header of dir_fd/file, or nullopt if the file does not exist.
Result<std::optional<PieceHeader>> ReadHeaderAt(int dir_fd, const std::string& file, int slot) {
  UniqueFd fd = OpenFileAt(dir_fd, file, O_RDONLY);
  if (!fd) {
    if (errno == ENOENT) return std::optional<PieceHeader>();
    if (errno == ELOOP) return Status::Corrupt("a symbolic link");
    return FromErrno(errno, "open " + file);
  }
  DFS_ASSIGN_OR_RETURN(PieceHeader h, ReadHeaderFd(fd.get(), slot));
  return std::optional<PieceHeader>(h);
}

// A folder's record (nullopt: none, or no such folder) and the number of
// its subfolders (from its link count).
struct FolderInfo {
  std::optional<PieceHeader> record;
  uint32_t subdirs = 0;
};
// The FolderInfo of the open folder `fd`; `shown` names it in the log.
FolderInfo FolderInfoOf(int fd, std::string_view shown) {
  FolderInfo info;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_nlink > 2)
    info.subdirs = static_cast<uint32_t>(st.st_nlink - 2);
  auto h = ReadHeaderAt(fd, std::string(kFolderRecordFile), kFolderSlot);
  if (!h.ok()) {
    Log().warn("folder {}: ignoring its record: {}", Escaped(shown), h.status().ToString());
    return info;
  }
  info.record = std::move(h).value();  // nullopt when there is none
  return info;
}
// The FolderInfo of folder dir_fd/name.
FolderInfo ReadFolderInfo(int dir_fd, const std::string& name) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    // Gone meanwhile; anything else is logged, and the folder listed without its record.
    if (errno != ENOENT && errno != ENOTDIR)
      Log().warn("folder {}: {}", Escaped(name), FromErrno(errno, "open").message());
    return {};
  }
  return FolderInfoOf(fd.get(), name);
}

// The headers of ".name.0" .. ".name.<last>" in one folder, `last` the
// piece bound when they were read (no piece above it exists). Files with a
// corrupt header are logged and treated as absent.
struct NameFiles {
  std::array<std::optional<PieceHeader>, kMaxPieceIndex + 1> at;
  // Which files exist, those with a corrupt header included.
  std::array<bool, kMaxPieceIndex + 1> exists{};
  int last = kMaxPieceIndex;

  bool AnyPiece() const {
    return std::any_of(at.begin() + 1, at.end(), [](const auto& h) { return h.has_value(); });
  }
  // Any header, to copy the scheme parameters from (nullptr if none).
  const PieceHeader* AnyHeader() const {
    for (const auto& h : at)
      if (h) return &*h;
    return nullptr;
  }
  bool TombstoneNewerThan(const Stamp& stamp) const { return at[0] && at[0]->stamp > stamp; }
};

// Reads ".name.0" .. ".name.<last>"; `last` is Store::max_piece().
Result<NameFiles> LoadName(int dir_fd, std::string_view name, int last) {
  NameFiles out;
  out.last = std::clamp(last, 0, kMaxPieceIndex);
  for (int k = 0; k <= out.last; ++k) {
    std::string file = PieceFileName(name, k);
    auto h = ReadHeaderAt(dir_fd, file, k);
    if (!h.ok()) {
      if (h.status().code() != Code::kCorrupt) return h.status();
      Log().warn("ignoring {}: {}", Escaped(file), h.status().message());
      out.exists[static_cast<size_t>(k)] = true;
      continue;
    }
    out.at[static_cast<size_t>(k)] = *h;
    out.exists[static_cast<size_t>(k)] = h->has_value();
  }
  return out;
}

// What the open folder `d` looks like now, for the listing cache.
Result<FolderCache::Seen> SeenFolder(int dir_fd, const std::string& d) {
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) return FromErrno(errno, "stat " + Quoted(d));
  return FolderCache::Seen::Of(st);
}

// The name of a listed entry or a name, for searches in a sorted listing.
std::string_view NameOf(const ListEntry& e) { return e.name; }
std::string_view NameOf(std::string_view name) { return name; }

// Whether dir_fd/name exists and is a directory.
Result<bool> IsDirAt(int dir_fd, std::string_view name) {
  struct stat st {};
  if (::fstatat(dir_fd, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return FromErrno(errno, "stat " + Escaped(name));
  }
  return S_ISDIR(st.st_mode);
}

// A file in a staging folder that is removed on destruction unless released.
class TempFile {
 public:
  TempFile(int dir_fd, std::string name) : dir_fd_(dir_fd), name_(std::move(name)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (armed_) ::unlinkat(dir_fd_, name_.c_str(), 0);
  }
  const std::string& name() const { return name_; }
  void Release() { armed_ = false; }

 private:
  int dir_fd_;
  std::string name_;
  bool armed_ = true;
};

// Writes `bytes` to the new file dir_fd/temp.name() and fsyncs it: the first
// half of placing a small file durably (the caller renames it into place,
// then fsyncs the target folder). `what` names the file in errors.
Status WriteSyncedTemp(int dir_fd, const TempFile& temp, std::string_view bytes,
                       std::string_view what) {
  UniqueFd fd(::openat(dir_fd, temp.name().c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return FromErrno(errno, "create " + std::string(what));
  DFS_RETURN_IF_ERROR(WriteAll(fd.get(), bytes.data(), bytes.size(), "write " + std::string(what)));
  return Fsync(fd.get(), "fsync " + std::string(what));
}

// Calls fn(name, d_type) for every entry of a directory but "." and "..".
// d_type is resolved with fstatat when the file system does not report it.
template <typename Fn>
Status ForEachEntry(int dir_fd, Fn&& fn) {
  int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return FromErrno(errno, "dup");
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(dup), ::closedir);
  if (!dir) {
    Status s = FromErrno(errno, "fdopendir");
    ::close(dup);
    return s;
  }
  ::rewinddir(dir.get());
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(dir.get());
    if (e == nullptr) {
      if (errno != 0) return FromErrno(errno, "readdir");
      return Status::Ok();
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished
      type = S_ISDIR(st.st_mode)   ? DT_DIR
             : S_ISREG(st.st_mode) ? DT_REG
             : S_ISLNK(st.st_mode) ? DT_LNK
                                   : DT_UNKNOWN;
    }
    DFS_RETURN_IF_ERROR(fn(name, type));
  }
}

// ---- The piece bound (store.h) ----

constexpr char kBoundFile[] = ".max_piece";
constexpr char kBoundTemp[] = ".max_piece.tmp";
constexpr std::string_view kBoundMagic = "dfs-max-piece ";

// The bound recorded in ROOT/.max_piece, nullopt if there is no such file.
// kCorrupt for anything but one line "dfs-max-piece N\n", N 0..64 spelled
// without leading zeros; errno failures otherwise.
Result<std::optional<int>> ReadBoundFile(int root_fd) {
  UniqueFd fd = OpenFileAt(root_fd, kBoundFile, O_RDONLY);
  if (!fd) {
    if (errno == ENOENT) return std::optional<int>();
    if (errno == ELOOP) return Status::Corrupt("a symbolic link");
    return FromErrno(errno, "open");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return FromErrno(errno, "fstat");
  if (!S_ISREG(st.st_mode)) return Status::Corrupt("not a regular file");
  char raw[32];
  DFS_ASSIGN_OR_RETURN(size_t got, PreadFull(fd.get(), raw, sizeof raw, 0, "read"));
  std::string_view text(raw, got);
  const auto bad = [&] { return Status::Corrupt("unexpected content " + Escaped(text)); };
  if (text.substr(0, kBoundMagic.size()) != kBoundMagic || text.back() != '\n') return bad();
  const std::string_view digits = text.substr(kBoundMagic.size(), got - kBoundMagic.size() - 1);
  if (digits.empty() || digits.size() > 2 || (digits.size() == 2 && digits[0] == '0')) return bad();
  int bound = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return bad();
    bound = bound * 10 + (c - '0');
  }
  if (bound > kMaxPieceIndex) return bad();
  return std::optional<int>(bound);
}

// Makes ROOT/.max_piece say `bound`, durably: a temporary file written and
// fsync'ed, renamed over it, then the root fsync'ed.
Status WriteBoundFile(int root_fd, const std::string& root, int bound) {
  const std::string text = std::string(kBoundMagic) + std::to_string(bound) + "\n";
  const std::string shown = root + "/" + kBoundFile;
  TempFile temp(root_fd, kBoundTemp);
  {
    UniqueFd fd(
        ::openat(root_fd, kBoundTemp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return FromErrno(errno, "create " + root + "/" + kBoundTemp);
    DFS_RETURN_IF_ERROR(WriteAll(fd.get(), text.data(), text.size(), "write " + shown));
    DFS_RETURN_IF_ERROR(Fsync(fd.get(), "fsync " + shown));
  }
  if (::renameat(root_fd, kBoundTemp, root_fd, kBoundFile) != 0)
    return FromErrno(errno, "replace " + shown);
  temp.Release();
  return Fsync(root_fd, "fsync " + root);
}

// The highest piece index K (0..64) of a piece or tombstone file ".NAME.K" in
// the folders of every user (ROOT/USER, recursively), 0 if there is none;
// *files counts them. Reads folders only, never a file. ROOT/.staging is not
// read: Open() has just emptied it. Any folder that cannot be read is an
// error (a piece in it would be missed).
Result<int> CountPieceBound(int root_fd, size_t* files) {
  std::vector<std::string> folders;
  DFS_RETURN_IF_ERROR(ForEachEntry(root_fd, [&](std::string_view entry, unsigned char type) {
    if (type == DT_DIR && ValidateUser(entry).ok()) folders.emplace_back(entry);
    return Status::Ok();
  }));
  int bound = 0;
  // One folder open at a time: depth costs no descriptors.
  while (!folders.empty()) {
    const std::string path = std::move(folders.back());
    folders.pop_back();
    UniqueFd fd = OpenDirBeneath(root_fd, path);
    if (!fd) {
      if (errno == ENOENT) continue;  // removed meanwhile
      return FromErrno(errno, "open " + Escaped(path));
    }
    Status listed = ForEachEntry(fd.get(), [&](std::string_view file, unsigned char type) {
      std::string name;
      int k = 0;
      if (type == DT_DIR) {
        folders.push_back(path + "/" + std::string(file));
      } else if (type == DT_REG && ParsePieceFileName(file, &name, &k) && k <= kMaxPieceIndex) {
        bound = std::max(bound, k);
        ++*files;
      }
      return Status::Ok();
    });
    if (!listed.ok()) return Status(listed.code(), Escaped(path) + ": " + listed.message());
  }
  return bound;
}

// The piece bound of the store at `root` (whose staging is empty): the one
// recorded in ROOT/.max_piece, else counted (CountPieceBound) and recorded.
// When the count fails, or recording it does, every index up to
// kMaxPieceIndex is looked at until the next start (slower, never wrong).
int LoadPieceBound(int root_fd, const std::string& root) {
  const std::string shown = root + "/" + kBoundFile;
  auto recorded = ReadBoundFile(root_fd);
  if (recorded.ok() && recorded->has_value()) return std::max(**recorded, kDefaultPieceBound);
  if (!recorded.ok())
    Log().warn("ignoring {}: {}; counting the piece bound again", shown,
               recorded.status().ToString());
  else
    Log().info("no {} (a new store, or one written by an older version): counting the piece bound",
               shown);
  size_t files = 0;
  auto counted = CountPieceBound(root_fd, &files);
  if (!counted.ok()) {
    Log().warn("cannot count the piece bound of {}: {}; looking at every piece index until restart",
               root, counted.status().ToString());
    return kMaxPieceIndex;
  }
  const int bound = std::max(*counted, kDefaultPieceBound);
  if (Status s = WriteBoundFile(root_fd, root, bound); !s.ok()) {
    Log().warn("cannot record the piece bound {}: {}; looking at every piece index until restart",
               bound, s.ToString());
    return kMaxPieceIndex;
  }
  Log().info("piece bound of {}: {} (counted over {} piece and tombstone files)", root, bound,
             files);
  return bound;
}

}  // namespace

// ---- StagedPiece ----

StagedPiece::StagedPiece(UniqueFd staging_dir, UniqueFd file, std::string part_name,
                         std::string final_name, const PieceHeader& header,
                         std::shared_ptr<UsageLedger> ledger, std::string user, uint64_t charged)
    : staging_dir_(std::move(staging_dir)),
      file_(std::move(file)),
      part_name_(std::move(part_name)),
      final_name_(std::move(final_name)),
      header_(header),
      ledger_(std::move(ledger)),
      user_(std::move(user)),
      charged_(charged) {}

StagedPiece::~StagedPiece() { Discard(); }

Status StagedPiece::Append(std::string_view bytes) {
  if (finished_ || !file_) return Status::Invalid("staged piece is closed");
  if (bytes.size() > header_.sealed_size() - written_)
    return Status::Invalid("piece length mismatch: more than the " +
                           std::to_string(header_.sealed_size()) + " bytes of the header");
  DFS_RETURN_IF_ERROR(WriteAll(file_.get(), bytes.data(), bytes.size(), "write staged piece"));
  written_ += bytes.size();
  return Status::Ok();
}

Status StagedPiece::Finish() {
  if (finished_ || !file_) return Status::Invalid("staged piece is closed");
  if (written_ != header_.sealed_size())
    return Status::Invalid("piece length mismatch: got " + std::to_string(written_) + " of " +
                           std::to_string(header_.sealed_size()) + " bytes");
  DFS_RETURN_IF_ERROR(Fsync(file_.get(), "fsync staged piece"));
  file_.Reset();
  // A repeated upload of the same piece replaces the earlier one.
  const uint64_t replaced = ledger_ ? SizeAt(staging_dir_.get(), final_name_) : 0;
  if (::renameat(staging_dir_.get(), part_name_.c_str(), staging_dir_.get(), final_name_.c_str()) !=
      0) {
    // SweepStaging() or Abort() removed the file meanwhile.
    if (errno == ENOENT) return Status::NotFound("staged piece was removed (upload abandoned?)");
    return FromErrno(errno, "publish staged piece");
  }
  finished_ = true;
  charged_ = 0;  // the bytes now belong to the staged file
  if (ledger_ && replaced > 0) ledger_->Sub(user_, replaced);
  return Status::Ok();
}

void StagedPiece::Discard() {
  file_.Reset();
  if (!finished_ && staging_dir_.valid() && !part_name_.empty())
    ::unlinkat(staging_dir_.get(), part_name_.c_str(), 0);
  finished_ = true;
  Refund();
}

void StagedPiece::Refund() {
  if (ledger_ && charged_ > 0) ledger_->Sub(user_, charged_);
  charged_ = 0;
}

// ---- PieceReader ----

Status PieceReader::ReadExact(uint64_t pos, char* out, size_t n) const {
  DFS_ASSIGN_OR_RETURN(size_t got,
                       PreadFull(file_.get(), out, n, kPieceHeaderBytes + pos, "read piece"));
  if (got < n) return Status::Corrupt("piece file is shorter than its header says");
  return Status::Ok();
}

// ---- Store ----

// Tells the listing cache that a folder changed when it goes out of scope:
// declared before an operation's first change to the folder, it reports
// after the last one, on every return path, failures included.
class Store::FolderChange {
 public:
  FolderChange(Store& store, std::string_view user, std::string dir)
      : store_(store), user_(user), dir_(std::move(dir)) {}
  FolderChange(const FolderChange&) = delete;
  FolderChange& operator=(const FolderChange&) = delete;
  ~FolderChange() { store_.folders_.Changed(user_, dir_); }

 private:
  Store& store_;
  std::string_view user_;
  std::string dir_;
};

// Holds the stripe lock of one name, or of two names in the stripe lock
// order (lower index first, a shared stripe once), for its scope.
//
// NO_THREAD_SAFETY_ANALYSIS: which stripe is locked is an index computed at
// run time (StripeOf), which a capability expression cannot name, and no
// member is guarded by a stripe (the stripes guard files on disk), so the
// analysis has nothing to check here; it would only report the stripes as
// still held at the end of the constructor and released unheld in the
// destructor. The order and pairing live in these three functions alone.
class Store::NameLock {
 public:
  NameLock(Store& store, size_t stripe) NO_THREAD_SAFETY_ANALYSIS
      : first_(&store.stripes_[stripe]) {
    first_->Lock();
  }
  NameLock(Store& store, size_t a, size_t b) NO_THREAD_SAFETY_ANALYSIS
      : first_(&store.stripes_[std::min(a, b)]),
        second_(a == b ? nullptr : &store.stripes_[std::max(a, b)]) {
    first_->Lock();
    if (second_ != nullptr) second_->Lock();
  }
  ~NameLock() NO_THREAD_SAFETY_ANALYSIS {
    if (second_ != nullptr) second_->Unlock();
    first_->Unlock();
  }
  NameLock(const NameLock&) = delete;
  NameLock& operator=(const NameLock&) = delete;

 private:
  Mutex* const first_;
  Mutex* const second_ = nullptr;
};

Store::Store(PrivateTag, std::string root, StoreOptions options, UniqueFd root_fd,
             UniqueFd staging_fd, UniqueFd hints_fd, UniqueFd retired_fd, int max_piece)
    : root_(std::move(root)),
      options_(std::move(options)),
      folders_(options_.list_cache_entries),
      usage_(std::make_shared<UsageLedger>(options_.quota_bytes)),
      root_fd_(std::move(root_fd)),
      staging_fd_(std::move(staging_fd)),
      hints_fd_(std::move(hints_fd)),
      retired_fd_(std::move(retired_fd)),
      recorded_bound_(max_piece),
      max_piece_(max_piece) {}

Result<std::unique_ptr<Store>> Store::Open(const std::string& root, StoreOptions options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return FromErrno(ec.value(), "cannot create " + root);
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return FromErrno(errno, "cannot open " + root);
  if (::mkdirat(root_fd.get(), ".staging", 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "cannot create " + root + "/.staging");
  UniqueFd staging_fd = OpenDirBeneath(root_fd.get(), ".staging");
  if (!staging_fd) return FromErrno(errno, "cannot open " + root + "/.staging");
  if (::mkdirat(root_fd.get(), ".hints", 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "cannot create " + root + "/.hints");
  UniqueFd hints_fd = OpenDirBeneath(root_fd.get(), ".hints");
  if (!hints_fd) return FromErrno(errno, "cannot open " + root + "/.hints");
  if (::mkdirat(root_fd.get(), ".retired", 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "cannot create " + root + "/.retired");
  UniqueFd retired_fd = OpenDirBeneath(root_fd.get(), ".retired");
  if (!retired_fd) return FromErrno(errno, "cannot open " + root + "/.retired");

  // Leftovers of a crash: partial uploads, uncommitted pieces, temp files.
  const fs::path staging = fs::path(root) / ".staging";
  size_t removed = 0;
  for (fs::directory_iterator it(staging, ec), end; !ec && it != end; it.increment(ec)) {
    removed += static_cast<size_t>(fs::remove_all(it->path(), ec));
    if (ec) return FromErrno(ec.value(), "cannot clean " + it->path().string());
  }
  if (ec) return FromErrno(ec.value(), "cannot clean " + staging.string());
  if (removed > 0) Log().info("removed {} leftover files from {}", removed, staging.string());

  // Staging is empty now: the piece files in the users' folders are all
  // there is to bound.
  const int max_piece = LoadPieceBound(root_fd.get(), root);
  return std::make_unique<Store>(PrivateTag(), root, std::move(options), std::move(root_fd),
                                 std::move(staging_fd), std::move(hints_fd), std::move(retired_fd),
                                 max_piece);
}

Status Store::RaiseBound(int piece) {
  if (piece < 1 || piece > kMaxPieceIndex)
    return Status::Invalid("piece index " + std::to_string(piece) + " out of range");
  MutexLock lock(&bound_mu_);
  if (piece <= recorded_bound_) return Status::Ok();  // a concurrent raise covered it
  DFS_RETURN_IF_ERROR(WriteBoundFile(root_fd_.get(), root_, piece));
  recorded_bound_ = piece;
  max_piece_.store(piece, std::memory_order_release);
  Log().info("piece bound of {} raised to {}", root_, piece);
  return Status::Ok();
}

Result<UniqueFd> Store::OpenUserDir(std::string_view user, std::string_view dir) {
  DFS_RETURN_IF_ERROR(ValidateUser(user));
  std::string path(user);
  if (!dir.empty()) path += "/" + std::string(dir);
  UniqueFd fd = OpenDirBeneath(root_fd_.get(), path);
  if (fd) return fd;
  const int err = errno;
  if (err == ELOOP || err == EXDEV)
    Log().warn("user {}: refused to open {}: a symbolic link on the way", Escaped(user),
               Quoted(dir));
  return DirOpenError(err, Quoted(dir));
}

Result<UniqueFd> Store::OpenFileDir(std::string_view user, std::string_view dir,
                                    std::string_view name, std::string* normalized) {
  DFS_ASSIGN_OR_RETURN(*normalized, NormalizeDir(dir));
  DFS_RETURN_IF_ERROR(ValidateName(name));
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenUserDir(user, *normalized));
  DFS_ASSIGN_OR_RETURN(bool is_dir, IsDirAt(dfd.get(), name));
  if (is_dir) return Status::IsDir(Quoted(*normalized, name) + " is a directory");
  return dfd;
}

Result<UniqueFd> Store::OpenStagingDir(std::string_view user) {
  DFS_RETURN_IF_ERROR(ValidateUser(user));
  const std::string name(user);
  for (int attempt = 0;; ++attempt) {
    UniqueFd fd = OpenDirBeneath(staging_fd_.get(), name);
    if (fd) return fd;
    if (errno == ELOOP) return Status::Permission("refusing to follow a symbolic link in staging");
    if (errno != ENOENT || attempt > 0) return FromErrno(errno, "open staging folder");
    if (::mkdirat(staging_fd_.get(), name.c_str(), 0700) != 0 && errno != EEXIST)
      return FromErrno(errno, "create staging folder");
  }
}

size_t Store::StripeOf(std::string_view user, std::string_view dir, std::string_view name) const {
  std::string key;
  key.reserve(user.size() + dir.size() + name.size() + 2);
  key.append(user).append("/").append(dir).append("/").append(name);
  return std::hash<std::string>{}(key) % kStripes;
}

Status Store::EnsureUser(std::string_view user) {
  DFS_RETURN_IF_ERROR(ValidateUser(user));
  const std::string name(user);
  if (::mkdirat(root_fd_.get(), name.c_str(), 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "create user folder");
  DFS_ASSIGN_OR_RETURN(UniqueFd folder, OpenUserDir(user, ""));  // a real folder, not a link
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  return Status::Ok();
}

Status Store::List(std::string_view user, std::string_view dir,
                   const std::function<Status(ListEntry&&)>& sink) {
  DFS_ASSIGN_OR_RETURN(std::string d, NormalizeDir(dir));
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenUserDir(user, d));
  DFS_ASSIGN_OR_RETURN(const FolderCache::Seen seen, SeenFolder(dfd.get(), d));
  std::optional<FolderCache::Reading> reading;
  if (auto cached = folders_.Get(user, d, seen, &reading)) {
    for (const ListEntry& e : *cached) DFS_RETURN_IF_ERROR(sink(ListEntry(e)));
    return Status::Ok();
  }
  // The names first, sorted (clients merge the servers' listings as they
  // arrive), then the headers in that order.
  struct Name {
    std::string name;  // user-visible
    int piece = -1;    // -1: a folder
    bool operator<(const Name& o) const { return name != o.name ? name < o.name : piece < o.piece; }
  };
  std::vector<Name> names;
  DFS_RETURN_IF_ERROR(ForEachEntry(dfd.get(), [&](std::string_view file, unsigned char type) {
    if (type == DT_LNK) {
      Log().warn("list {}: skipping symbolic link {}", Quoted(d), Escaped(file));
      return Status::Ok();
    }
    if (type == DT_DIR) {
      if (Status v = ValidateName(file); !v.ok()) {
        Log().warn("list {}: skipping folder: {}", Quoted(d), v.message());
        return Status::Ok();
      }
      names.push_back({std::string(file), -1});
      return Status::Ok();
    }
    // ParsePieceFileName() validates the name inside (no control bytes).
    Name n;
    if (type != DT_REG || !ParsePieceFileName(file, &n.name, &n.piece)) {
      if (std::any_of(file.begin(), file.end(), IsControlByte))
        Log().warn("list {}: skipping {}: control bytes in the name", Quoted(d), Escaped(file));
      return Status::Ok();
    }
    names.push_back(std::move(n));
    return Status::Ok();
  }));
  std::sort(names.begin(), names.end());
  // What is read is kept for the next listing unless the folder is too big.
  const bool keep = names.size() <= folders_.max_entries();
  FolderCache::Entries kept;
  if (keep) kept.reserve(names.size());
  for (Name& n : names) {
    ListEntry entry;
    if (n.piece < 0) {
      entry.is_dir = true;
      FolderInfo info = ReadFolderInfo(dfd.get(), n.name);
      entry.subdirs = info.subdirs;
      if (info.record) {
        // The folder's record: one more entry of its name, right after it.
        ListEntry record;
        record.name = n.name;
        record.header = *info.record;
        entry.name = std::move(n.name);
        if (keep) kept.push_back(entry);
        DFS_RETURN_IF_ERROR(sink(ListEntry(entry)));
        if (keep) kept.push_back(record);
        DFS_RETURN_IF_ERROR(sink(std::move(record)));
        continue;
      }
    } else {
      const std::string file = PieceFileName(n.name, n.piece);
      auto h = ReadHeaderAt(dfd.get(), file, n.piece);
      if (!h.ok()) {
        Log().warn("list {}: skipping {}: {}", Quoted(d), Escaped(file), h.status().ToString());
        continue;
      }
      if (!h->has_value()) continue;  // removed meanwhile
      entry.header = **h;
    }
    entry.name = std::move(n.name);
    if (keep) kept.push_back(entry);
    DFS_RETURN_IF_ERROR(sink(std::move(entry)));
  }
  if (keep) reading->Keep(seen, std::move(kept));
  return Status::Ok();
}

Result<StatReply> Store::Stat(std::string_view user, std::string_view dir, std::string_view name) {
  DFS_ASSIGN_OR_RETURN(std::string d, NormalizeDir(dir));
  StatReply reply;
  if (d.empty() && name.empty()) {
    // The user's root folder: its record, if one was set.
    DFS_ASSIGN_OR_RETURN(UniqueFd root, OpenUserDir(user, d));
    reply.is_dir = true;
    FolderInfo info = FolderInfoOf(root.get(), "the root folder");
    reply.subdirs = info.subdirs;
    if (info.record) reply.pieces.push_back(*info.record);
    return reply;
  }
  DFS_RETURN_IF_ERROR(ValidateName(name));
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenUserDir(user, d));
  DFS_ASSIGN_OR_RETURN(const FolderCache::Seen seen, SeenFolder(dfd.get(), d));
  if (auto cached = folders_.Peek(user, d, seen)) {
    // A folder listed lately and unchanged since: its entries are sorted by
    // name (List), so this name's are one range, no file opened.
    auto [first, last] =
        std::equal_range(cached->begin(), cached->end(), name,
                         [](const auto& a, const auto& b) { return NameOf(a) < NameOf(b); });
    for (auto e = first; e != last; ++e) {
      if (e->is_dir) {
        reply.is_dir = true;
        reply.subdirs = e->subdirs;
      } else {
        reply.pieces.push_back(e->header);
      }
    }
  } else {
    DFS_ASSIGN_OR_RETURN(reply.is_dir, IsDirAt(dfd.get(), name));
    if (reply.is_dir) {
      FolderInfo info = ReadFolderInfo(dfd.get(), std::string(name));
      reply.subdirs = info.subdirs;
      if (info.record) reply.pieces.push_back(*info.record);
    }
    DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(dfd.get(), name, max_piece()));
    for (const auto& h : files.at)
      if (h) reply.pieces.push_back(*h);
  }
  if (!reply.is_dir && reply.pieces.empty())
    return Status::NotFound("no such file " + Quoted(d, name));
  return reply;
}

Result<StagedPiece> Store::BeginPut(std::string_view user, std::string_view dir,
                                    std::string_view name, const PieceHeader& header) {
  if (header.kind != PieceKind::kPiece) return Status::Invalid("a put needs a piece header");
  if (header.piece < 1 || header.piece > kMaxPieceIndex)
    return Status::Invalid("piece index " + std::to_string(header.piece) + " out of range");
  // Decode() refuses these; a header built in-process must not divide by 0.
  if (header.chunk_bytes == 0 || header.piece_size > kMaxFileSize)
    return Status::Invalid("bad piece size in header");
  std::string d;
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenFileDir(user, dir, name, &d));
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));

  const uint64_t bytes = kPieceHeaderBytes + header.sealed_size();
  DFS_RETURN_IF_ERROR(CheckFreeSpace(bytes));
  std::shared_ptr<UsageLedger> ledger;
  if (usage_->Tracked(user)) {
    DFS_RETURN_IF_ERROR(usage_->Charge(user, bytes, [&] { return ScanUsage(user); }));
    ledger = usage_;
  }

  // Piece header.piece is within the bound before any file of it exists.
  if (Status s = EnsureBound(header.piece); !s.ok()) {
    if (ledger) ledger->Sub(user, bytes);
    return s;
  }

  std::string final_name = StagedName(header.cid, header.piece);
  std::string part_name = final_name + ".part-" + RandomSuffix();
  UniqueFd file(::openat(staging.get(), part_name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!file) {
    const int err = errno;
    if (ledger) ledger->Sub(user, bytes);
    return FromErrno(err, "create staged piece");
  }
  StagedPiece piece(std::move(staging), std::move(file), std::move(part_name),
                    std::move(final_name), header, std::move(ledger), std::string(user), bytes);
  const std::string raw = header.Encode();
  DFS_RETURN_IF_ERROR(WriteAll(piece.file_.get(), raw.data(), raw.size(), "write staged piece"));
  return piece;
}

Result<std::vector<uint8_t>> Store::Commit(std::string_view user, std::string_view dir,
                                           std::string_view name, const Cid& cid,
                                           const Stamp& stamp) {
  std::string d;
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenFileDir(user, dir, name, &d));
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  FolderChange change(*this, user, d);

  struct Staged {
    int piece;
    PieceHeader header;
    std::string file;
  };
  std::vector<Staged> staged;
  // BeginPut() raised the bound before staging any piece.
  const int staged_last = max_piece();
  for (int k = 1; k <= staged_last; ++k) {
    std::string file = StagedName(cid, k);
    DFS_ASSIGN_OR_RETURN(auto h, ReadHeaderAt(staging.get(), file, k));
    if (!h) continue;
    if (h->cid != cid) return Status::Corrupt("staged piece " + file + " holds other content");
    if (h->stamp != stamp)
      return Status::Invalid("staged piece " + std::to_string(k) +
                             " was uploaded with another stamp");
    staged.push_back({k, *h, std::move(file)});
  }

  NameLock lock(*this, StripeOf(user, d, name));
  DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(dfd.get(), name, max_piece()));
  std::array<bool, kMaxPieceIndex + 1> fresh{};
  for (const Staged& s : staged) {
    auto& existing = files.at[static_cast<size_t>(s.piece)];
    if (files.TombstoneNewerThan(stamp) || (existing && existing->stamp > stamp)) {
      Log().debug("commit {}: piece {} lost to a newer version", Quoted(d, name), s.piece);
      DFS_RETURN_IF_ERROR(UnlinkCounted(user, staging.get(), s.file));
      continue;
    }
    const std::string target = PieceFileName(name, s.piece);
    if (existing && existing->cid != cid) Retire(user, dfd.get(), target, *existing, d, name);
    DFS_RETURN_IF_ERROR(EnsureBound(s.piece));  // (it is: staged within the bound)
    DFS_RETURN_IF_ERROR(
        RenameCounted(user, staging.get(), s.file, dfd.get(), target, "commit " + Escaped(target)));
    existing = s.header;
    fresh[static_cast<size_t>(s.piece)] = true;
  }
  if (!staged.empty()) DFS_RETURN_IF_ERROR(Fsync(dfd.get(), "fsync directory"));

  // Older versions of this name give way.
  for (int j = 1; j <= files.last; ++j) {
    auto& h = files.at[static_cast<size_t>(j)];
    if (fresh[static_cast<size_t>(j)] || !h || h->stamp >= stamp || h->cid == cid) continue;
    Retire(user, dfd.get(), PieceFileName(name, j), *h, d, name);
    DFS_RETURN_IF_ERROR(UnlinkCounted(user, dfd.get(), PieceFileName(name, j)));
    h.reset();
  }
  if (files.at[0] && files.at[0]->stamp < stamp) {
    DFS_RETURN_IF_ERROR(UnlinkCounted(user, dfd.get(), PieceFileName(name, 0)));
    files.at[0].reset();
  }

  std::vector<uint8_t> committed;
  for (int k = 1; k <= files.last; ++k) {
    const auto& h = files.at[static_cast<size_t>(k)];
    if (h && h->cid == cid) committed.push_back(static_cast<uint8_t>(k));
  }
  if (staged.empty() && committed.empty())
    return Status::NotFound("nothing staged for " + Quoted(d, name));
  return committed;
}

Status Store::Revert(std::string_view user, std::string_view dir, std::string_view name,
                     const Cid& failed, const Cid& restore) {
  std::string d;
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenFileDir(user, dir, name, &d));
  FolderChange change(*this, user, d);
  UniqueFd rdir = OpenDirBeneath(retired_fd_.get(), std::string(user));
  const bool restoring = rdir && restore != Cid{};

  NameLock lock(*this, StripeOf(user, d, name));
  DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(dfd.get(), name, max_piece()));
  bool changed = false;
  for (int k = 1; k <= files.last; ++k) {
    const auto& h = files.at[static_cast<size_t>(k)];
    const bool is_failed = h && h->cid == failed;
    if (h && !is_failed) continue;  // some other content: not this commit's doing
    const std::string target = PieceFileName(name, k);
    const std::string kept = RetiredName(restore, k, d, name);
    if (restoring && ::faccessat(rdir.get(), kept.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
      DFS_ASSIGN_OR_RETURN(auto back, ReadHeaderAt(rdir.get(), kept, k));
      if (back && back->cid == restore) {
        const uint64_t size = SizeAt(rdir.get(), kept);
        DFS_RETURN_IF_ERROR(
            RenameCounted(user, rdir.get(), kept, dfd.get(), target, "restore " + Escaped(target)));
        usage_->Add(user, size);
        changed = true;
        continue;
      }
    }
    if (is_failed) {
      DFS_RETURN_IF_ERROR(UnlinkCounted(user, dfd.get(), target));
      changed = true;
    }
  }
  if (changed) DFS_RETURN_IF_ERROR(Fsync(dfd.get(), "fsync directory"));
  return Status::Ok();
}

Status Store::Abort(std::string_view user, const Cid& cid) {
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  const std::string prefix = ToHex(cid) + ".";
  std::vector<std::string> doomed;
  DFS_RETURN_IF_ERROR(ForEachEntry(staging.get(), [&](std::string_view file, unsigned char) {
    if (file.substr(0, prefix.size()) == prefix) doomed.emplace_back(file);
    return Status::Ok();
  }));
  for (const auto& file : doomed) {
    // A partial file's bytes are given back by its StagedPiece.
    DFS_RETURN_IF_ERROR(IsPartFile(file) ? UnlinkIfExists(staging.get(), file)
                                         : UnlinkCounted(user, staging.get(), file));
  }
  return Status::Ok();
}

Result<PieceReader> Store::OpenPiece(std::string_view user, std::string_view dir,
                                     std::string_view name, int piece, const Cid& cid,
                                     uint64_t offset, uint64_t length) {
  DFS_ASSIGN_OR_RETURN(std::string d, NormalizeDir(dir));
  DFS_RETURN_IF_ERROR(ValidateName(name));
  if (piece < 1 || piece > kMaxPieceIndex)
    return Status::Invalid("piece index " + std::to_string(piece) + " out of range");
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenUserDir(user, d));
  PieceReader reader;
  reader.file_ = OpenFileAt(dfd.get(), PieceFileName(name, piece), O_RDONLY);
  Status found = Status::Ok();
  if (!reader.file_) {
    if (errno != ENOENT) return FromErrno(errno, "open piece of " + Quoted(d, name));
    found = Status::NotFound("no piece " + std::to_string(piece) + " of " + Quoted(d, name));
  } else {
    DFS_ASSIGN_OR_RETURN(reader.header_, ReadHeaderFd(reader.file_.get(), piece));
    if (reader.header_.cid != cid) found = Status::Stale("piece holds other content");
  }
  if (!found.ok()) {
    // A reader of a version that an overwrite or delete replaced.
    UniqueFd rdir = OpenDirBeneath(retired_fd_.get(), std::string(user));
    reader.file_ =
        rdir ? OpenFileAt(rdir.get(), RetiredName(cid, piece, d, name), O_RDONLY) : UniqueFd();
    if (!reader.file_) return found;
    DFS_ASSIGN_OR_RETURN(reader.header_, ReadHeaderFd(reader.file_.get(), piece));
    if (reader.header_.cid != cid) return found;
  }
  const uint64_t sealed = reader.header_.sealed_size();
  reader.offset_ = std::min(offset, sealed);
  reader.length_ = std::min(length, sealed - reader.offset_);
  return reader;
}

Status Store::WriteTombstone(std::string_view user, int staging_fd, int dir_fd,
                             std::string_view name, const PieceHeader& tombstone) {
  const std::string raw = tombstone.Encode();
  TempFile temp(staging_fd, "~" + RandomSuffix());
  DFS_RETURN_IF_ERROR(WriteSyncedTemp(staging_fd, temp, raw, "tombstone"));
  const std::string target = PieceFileName(name, 0);
  DFS_RETURN_IF_ERROR(RenameCounted(user, staging_fd, temp.name(), dir_fd, target,
                                    "place tombstone " + Escaped(target)));
  temp.Release();
  usage_->Add(user, raw.size());
  return Fsync(dir_fd, "fsync directory");
}

Status Store::Delete(std::string_view user, std::string_view dir, std::string_view name,
                     const PieceHeader& tombstone) {
  if (!tombstone.tombstone() || tombstone.piece != 0)
    return Status::Invalid("a delete needs a tombstone header");
  const Stamp& stamp = tombstone.stamp;
  std::string d;
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenFileDir(user, dir, name, &d));
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  FolderChange change(*this, user, d);

  NameLock lock(*this, StripeOf(user, d, name));
  DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(dfd.get(), name, max_piece()));
  if (files.AnyHeader() == nullptr) {
    Log().debug("delete {}: no record here, no tombstone", Quoted(d, name));
    return Status::Ok();
  }
  for (const auto& h : files.at) {
    if (h && h->stamp > stamp) {
      Log().debug("delete {}: a newer version wins", Quoted(d, name));
      return Status::Ok();
    }
  }
  DFS_RETURN_IF_ERROR(WriteTombstone(user, staging.get(), dfd.get(), name, tombstone));
  // Also the pieces LoadName() skipped as corrupt. No other exists: a piece
  // of this name is created only under this stripe lock, after the bound
  // covers it.
  for (int k = 1; k <= files.last; ++k) {
    if (!files.exists[static_cast<size_t>(k)]) continue;
    if (const auto& h = files.at[static_cast<size_t>(k)])
      Retire(user, dfd.get(), PieceFileName(name, k), *h, d, name);
    DFS_RETURN_IF_ERROR(UnlinkCounted(user, dfd.get(), PieceFileName(name, k)));
  }
  return Status::Ok();
}

Status Store::Mkdir(std::string_view user, std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Exists("the root folder exists");
  const std::string& leaf = p.name;
  const std::string& parent = p.dir;
  DFS_RETURN_IF_ERROR(CheckNotReserved(leaf));
  DFS_ASSIGN_OR_RETURN(UniqueFd pfd, OpenUserDir(user, parent));
  FolderChange change(*this, user, parent);
  FolderChange counts(*this, user, GrandParentOf(parent));  // parent's subfolder count
  if (::mkdirat(pfd.get(), leaf.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Status::Exists(Quoted(parent, leaf) + " exists");
    return FromErrno(errno, "mkdir " + Quoted(parent, leaf));
  }
  return Fsync(pfd.get(), "fsync directory");
}

Status Store::SetFolder(std::string_view user, std::string_view path, const PieceHeader& record,
                        bool create) {
  if (!record.folder()) return Status::Invalid("a folder needs a folder record");
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  const std::string& leaf = p.name;
  const std::string& parent = p.dir;
  const std::string shown = leaf.empty() ? std::string("the root folder") : Quoted(parent, leaf);
  UniqueFd fd;
  std::optional<FolderChange> parent_change;
  std::optional<FolderChange> counts_change;
  UniqueFd pfd;
  if (leaf.empty()) {
    DFS_ASSIGN_OR_RETURN(fd, OpenUserDir(user, ""));
  } else {
    DFS_RETURN_IF_ERROR(CheckNotReserved(leaf));
    DFS_ASSIGN_OR_RETURN(pfd, OpenUserDir(user, parent));
    // The parent's listing carries the record; the grandparent's, the
    // parent's subfolder count.
    parent_change.emplace(*this, user, parent);
    if (create) counts_change.emplace(*this, user, GrandParentOf(parent));
    if (create) {
      if (::mkdirat(pfd.get(), leaf.c_str(), 0700) == 0) {
        DFS_RETURN_IF_ERROR(Fsync(pfd.get(), "fsync directory"));
      } else if (errno != EEXIST) {
        return FromErrno(errno, "mkdir " + shown);
      }
    }
    fd = UniqueFd(
        ::openat(pfd.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) return Status::NotFound("no such folder " + shown);
      if (errno == ENOTDIR || errno == ELOOP) return Status::NotDir(shown + " is not a folder");
      return FromErrno(errno, "open " + shown);
    }
  }
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  const std::string file(kFolderRecordFile);
  // One stripe per folder record: two changes of one folder's attributes
  // at once cannot let the older win.
  NameLock lock(*this, StripeOf(user, path, file));
  auto existing = ReadHeaderAt(fd.get(), file, kFolderSlot);
  if (existing.ok() && existing->has_value() && (*existing)->stamp >= record.stamp) {
    Log().debug("folder {}: a newer record is there", shown);
    return Status::Ok();
  }
  const std::string raw = record.Encode();
  TempFile temp(staging.get(), "~" + RandomSuffix());
  DFS_RETURN_IF_ERROR(WriteSyncedTemp(staging.get(), temp, raw, "folder record"));
  if (::renameat(staging.get(), temp.name().c_str(), fd.get(), file.c_str()) != 0)
    return FromErrno(errno, "place the record of " + shown);
  temp.Release();
  return Fsync(fd.get(), "fsync directory");
}

Status Store::Rmdir(std::string_view user, std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Invalid("cannot remove the root folder");
  const std::string& leaf = p.name;
  const std::string& parent = p.dir;
  const std::string shown = Quoted(parent, leaf);
  DFS_ASSIGN_OR_RETURN(UniqueFd pfd, OpenUserDir(user, parent));
  UniqueFd fd(::openat(pfd.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (err == ENOTDIR || err == ELOOP) return Status::NotDir(shown + " is not a directory");
    if (err != ENOENT) return FromErrno(err, "open " + shown);
    // A file of that name is stored as pieces: rmdir of a file is kNotDir.
    DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(pfd.get(), leaf, max_piece()));
    if (files.AnyPiece()) return Status::NotDir(shown + " is not a directory");
    return Status::NotFound("no such directory " + shown);
  }
  FolderChange parent_change(*this, user, parent);
  FolderChange change(*this, user, JoinName(parent, leaf));
  FolderChange counts(*this, user, GrandParentOf(parent));  // parent's subfolder count
  std::vector<std::string> pieces;
  DFS_RETURN_IF_ERROR(ForEachEntry(fd.get(), [&](std::string_view file, unsigned char type) {
    std::string name;
    int k = 0;
    if (type == DT_REG && ParsePieceFileName(file, &name, &k)) {
      pieces.emplace_back(file);
      return Status::Ok();
    }
    if (type == DT_REG && file == kFolderRecordFile) return Status::Ok();  // removed below
    return Status::NotEmpty("directory " + shown + " is not empty");
  }));
  for (const auto& file : pieces) DFS_RETURN_IF_ERROR(UnlinkCounted(user, fd.get(), file));
  if (::unlinkat(fd.get(), std::string(kFolderRecordFile).c_str(), 0) != 0 && errno != ENOENT)
    return FromErrno(errno, "remove the record of " + shown);
  if (::unlinkat(pfd.get(), leaf.c_str(), AT_REMOVEDIR) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      return Status::NotEmpty("directory " + shown + " is not empty");
    return FromErrno(errno, "rmdir " + shown);
  }
  return Fsync(pfd.get(), "fsync directory");
}

Status Store::Rename(std::string_view user, std::string_view from_dir, std::string_view from_name,
                     std::string_view to_dir, std::string_view to_name, const Cid& cid,
                     const std::vector<PieceHeader>& headers, const PieceHeader& tombstone,
                     std::string_view xattrs) {
  DFS_ASSIGN_OR_RETURN(std::string fd_path, NormalizeDir(from_dir));
  DFS_ASSIGN_OR_RETURN(std::string td_path, NormalizeDir(to_dir));
  DFS_RETURN_IF_ERROR(ValidateName(from_name));
  DFS_RETURN_IF_ERROR(ValidateName(to_name));
  if (!tombstone.tombstone() || tombstone.piece != 0)
    return Status::Invalid("a rename needs a tombstone header for the old name");
  const Stamp& stamp = tombstone.stamp;
  DFS_ASSIGN_OR_RETURN(const HeadersByPiece by_piece, IndexHeaders(headers, cid, stamp));
  DFS_RETURN_IF_ERROR(CheckXattrs(headers, xattrs));
  if (fd_path == td_path && from_name == to_name) return Status::Ok();
  DFS_ASSIGN_OR_RETURN(UniqueFd from_fd, OpenUserDir(user, fd_path));
  DFS_ASSIGN_OR_RETURN(UniqueFd to_fd, OpenUserDir(user, td_path));
  FolderChange from_change(*this, user, fd_path);
  FolderChange to_change(*this, user, td_path);
  DFS_ASSIGN_OR_RETURN(bool from_is_dir, IsDirAt(from_fd.get(), from_name));
  if (from_is_dir) return Status::IsDir(Quoted(fd_path, from_name) + " is a directory");
  DFS_ASSIGN_OR_RETURN(bool to_is_dir, IsDirAt(to_fd.get(), to_name));
  if (to_is_dir) return Status::IsDir(Quoted(td_path, to_name) + " is a directory");
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));

  NameLock lock(*this, StripeOf(user, fd_path, from_name), StripeOf(user, td_path, to_name));
  DFS_ASSIGN_OR_RETURN(NameFiles from, LoadName(from_fd.get(), from_name, max_piece()));
  DFS_ASSIGN_OR_RETURN(NameFiles to, LoadName(to_fd.get(), to_name, max_piece()));
  const bool held_any = from.AnyHeader() != nullptr;

  // Every new header is checked against the piece it replaces before
  // anything changes. A piece without a new header stays and is dropped
  // below with the other older content.
  std::vector<int> moving;
  for (int k = 1; k <= from.last; ++k) {
    const auto& h = from.at[static_cast<size_t>(k)];
    if (!h || h->cid != cid || h->stamp >= stamp || by_piece[k] == nullptr) continue;
    DFS_RETURN_IF_ERROR(CheckSameData(*h, *by_piece[k]));
    moving.push_back(k);
  }

  bool moved_any = false;
  for (int k : moving) {
    // Piece k exists under the old name, so it is within the bound.
    DFS_RETURN_IF_ERROR(EnsureBound(k));
    const PieceHeader& moved = *by_piece[k];
    const std::string source = PieceFileName(from_name, k);
    TempFile temp(staging.get(), "~" + RandomSuffix());
    if (::renameat(from_fd.get(), source.c_str(), staging.get(), temp.name().c_str()) != 0)
      return FromErrno(errno, "move " + Escaped(source));
    const PieceHeader stored = *from.at[static_cast<size_t>(k)];
    from.at[static_cast<size_t>(k)].reset();
    if (Status s =
            PlaceHeader(user, staging.get(), staging.get(), temp.name(), stored, moved, xattrs);
        !s.ok()) {
      // Best effort: the piece goes back where it was rather than being lost.
      if (::renameat(staging.get(), temp.name().c_str(), from_fd.get(), source.c_str()) == 0)
        temp.Release();
      return s;
    }
    auto& target = to.at[static_cast<size_t>(k)];
    if (to.TombstoneNewerThan(stamp) || (target && target->stamp > stamp)) {
      Log().debug("rename to {}: piece {} lost to a newer version", Quoted(td_path, to_name), k);
      DFS_RETURN_IF_ERROR(UnlinkCounted(user, staging.get(), temp.name()));
      temp.Release();
      continue;
    }
    const std::string dest = PieceFileName(to_name, k);
    if (target && target->cid != cid) Retire(user, to_fd.get(), dest, *target, td_path, to_name);
    DFS_RETURN_IF_ERROR(RenameCounted(user, staging.get(), temp.name(), to_fd.get(), dest,
                                      "move to " + Escaped(dest)));
    temp.Release();
    target = moved;
    moved_any = true;
  }
  if (moved_any) DFS_RETURN_IF_ERROR(Fsync(to_fd.get(), "fsync directory"));

  // Older other contents of the target give way.
  for (int j = 1; j <= to.last; ++j) {
    const auto& h = to.at[static_cast<size_t>(j)];
    if (!h || h->stamp >= stamp || h->cid == cid) continue;
    Retire(user, to_fd.get(), PieceFileName(to_name, j), *h, td_path, to_name);
    DFS_RETURN_IF_ERROR(UnlinkCounted(user, to_fd.get(), PieceFileName(to_name, j)));
  }
  if (to.at[0] && to.at[0]->stamp < stamp)
    DFS_RETURN_IF_ERROR(UnlinkCounted(user, to_fd.get(), PieceFileName(to_name, 0)));

  // The old name gets the tombstone (if it held anything), and its older
  // pieces go.
  if (held_any && !from.TombstoneNewerThan(stamp))
    DFS_RETURN_IF_ERROR(WriteTombstone(user, staging.get(), from_fd.get(), from_name, tombstone));
  for (int k = 1; k <= from.last; ++k) {
    const auto& h = from.at[static_cast<size_t>(k)];
    if (h && h->stamp < stamp)
      DFS_RETURN_IF_ERROR(UnlinkCounted(user, from_fd.get(), PieceFileName(from_name, k)));
  }
  return Status::Ok();
}

Status Store::SetAttr(std::string_view user, const SetAttrRequest& req) {
  DFS_ASSIGN_OR_RETURN(std::string d, NormalizeDir(req.dir));
  DFS_RETURN_IF_ERROR(ValidateName(req.name));
  if (req.headers.empty()) return Status::Invalid("setattr without new headers");
  const Stamp stamp = req.headers.front().stamp;
  DFS_ASSIGN_OR_RETURN(const HeadersByPiece by_piece, IndexHeaders(req.headers, req.cid, stamp));
  DFS_RETURN_IF_ERROR(CheckXattrs(req.headers, req.xattrs));
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenUserDir(user, d));
  FolderChange change(*this, user, d);

  NameLock lock(*this, StripeOf(user, d, req.name));
  DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(dfd.get(), req.name, max_piece()));
  if (!files.AnyPiece()) return Status::NotFound("no such file " + Quoted(d, req.name));
  std::vector<int> updating;
  for (int k = 1; k <= files.last; ++k) {
    const auto& h = files.at[static_cast<size_t>(k)];
    if (!h || h->cid != req.cid || h->stamp >= stamp || by_piece[k] == nullptr) continue;
    DFS_RETURN_IF_ERROR(CheckSameData(*h, *by_piece[k]));
    updating.push_back(k);
  }
  if (updating.empty()) return Status::Ok();
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  for (int k : updating)
    DFS_RETURN_IF_ERROR(PlaceHeader(user, staging.get(), dfd.get(), PieceFileName(req.name, k),
                                    *files.at[static_cast<size_t>(k)], *by_piece[k], req.xattrs));
  return Status::Ok();
}

Status Store::PlaceHeader(std::string_view user, int staging_fd, int dir_fd,
                          const std::string& file, const PieceHeader& stored,
                          const PieceHeader& next, std::string_view xattrs) {
  UniqueFd src = OpenFileAt(dir_fd, file, O_RDONLY);
  if (!src) return FromErrno(errno, "open " + Escaped(file));
  const uint64_t data_end = kPieceHeaderBytes + stored.data_size();
  if (stored.xattr_bytes == xattrs.size()) {
    std::string held(xattrs.size(), '\0');
    DFS_ASSIGN_OR_RETURN(size_t got, PreadFull(src.get(), held.data(), held.size(), data_end,
                                               "read extended attributes of " + Escaped(file)));
    if (got == held.size() && held == xattrs) return RewriteHeader(dir_fd, file, next);
  }
  // New extended attributes: a new file of the same content. What it adds
  // to the user's usage is charged first (the quota holds it or nothing
  // changes), and given back if it never replaces the piece.
  const uint64_t total = data_end + xattrs.size();
  DFS_RETURN_IF_ERROR(CheckFreeSpace(total));
  const uint64_t stored_size = data_end + stored.xattr_bytes;
  const uint64_t growth = total > stored_size ? total - stored_size : 0;
  if (growth > 0)
    DFS_RETURN_IF_ERROR(usage_->Charge(user, growth, [&] { return ScanUsage(user); }));
  bool placed = false;
  struct Refund {
    UsageLedger& ledger;
    std::string_view user;
    uint64_t bytes;
    const bool& placed;
    ~Refund() {
      if (!placed && bytes > 0) ledger.Sub(user, bytes);
    }
  } refund{*usage_, user, growth, placed};
  TempFile temp(staging_fd, "~" + RandomSuffix());
  UniqueFd out(::openat(staging_fd, temp.name().c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out) return FromErrno(errno, "create a copy of " + Escaped(file));
  const std::string raw = next.Encode();
  DFS_RETURN_IF_ERROR(WriteAll(out.get(), raw.data(), raw.size(), "write header"));
  // The content: copy_file_range (in the kernel; a reflink where the file
  // system has them), or read and write where it is not supported.
  loff_t in_off = kPieceHeaderBytes, out_off = kPieceHeaderBytes;
  bool in_kernel = true;
  std::vector<char> buf;
  while (static_cast<uint64_t>(in_off) < data_end) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(data_end - static_cast<uint64_t>(in_off), 1u << 30));
    ssize_t n = -1;
    if (in_kernel) {
      n = ::copy_file_range(src.get(), &in_off, out.get(), &out_off, want, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        in_kernel = false;
        continue;
      }
      if (n < 0) return FromErrno(errno, "copy " + Escaped(file));
    } else {
      buf.resize(1 << 20);
      DFS_ASSIGN_OR_RETURN(size_t got,
                           PreadFull(src.get(), buf.data(), std::min(want, buf.size()),
                                     static_cast<uint64_t>(in_off), "read " + Escaped(file)));
      DFS_RETURN_IF_ERROR(PwriteAll(out.get(), buf.data(), got, static_cast<uint64_t>(out_off),
                                    "write a copy of " + Escaped(file)));
      n = static_cast<ssize_t>(got);
      in_off += n;
      out_off += n;
    }
    if (n == 0) return Status::Corrupt(Escaped(file) + " is shorter than its header says");
  }
  DFS_RETURN_IF_ERROR(
      PwriteAll(out.get(), xattrs.data(), xattrs.size(), data_end, "write extended attributes"));
  DFS_RETURN_IF_ERROR(Fsync(out.get(), "fsync a copy of " + Escaped(file)));
  DFS_RETURN_IF_ERROR(
      RenameCounted(user, staging_fd, temp.name(), dir_fd, file, "replace " + Escaped(file)));
  temp.Release();
  placed = true;
  // The replaced file's size came off in RenameCounted; growth was charged.
  usage_->Add(user, total - growth);
  return Fsync(dir_fd, "fsync directory");
}

Result<size_t> Store::SweepStaging(std::chrono::seconds max_age) {
  const auto to_ns = [](const struct timespec& t) {
    return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
  };
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  // Clamped to ~31 years so that it fits in ns; files are older than that
  // only with a broken clock.
  const int64_t max_age_s = std::clamp<int64_t>(max_age.count(), 0, 1'000'000'000);
  const int64_t cutoff = to_ns(now) - max_age_s * 1'000'000'000;

  UniqueFd top(::openat(staging_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!top) return FromErrno(errno, "open " + root_ + "/.staging");
  std::vector<std::string> users;
  DFS_RETURN_IF_ERROR(ForEachEntry(top.get(), [&](std::string_view entry, unsigned char type) {
    if (type == DT_DIR && ValidateUser(entry).ok()) users.emplace_back(entry);
    return Status::Ok();
  }));

  size_t removed = 0;
  for (const std::string& user : users) {
    UniqueFd dir = OpenDirBeneath(staging_fd_.get(), user);
    if (!dir) {
      const int err = errno;
      if (err != ENOENT)
        Log().warn("sweep: cannot open staging of {}: {}", Escaped(user),
                   FromErrno(err, "open").message());
      continue;
    }
    std::vector<std::string> old;
    Status listed = ForEachEntry(dir.get(), [&](std::string_view file, unsigned char type) {
      if (type != DT_REG) return Status::Ok();
      struct stat st {};
      if (::fstatat(dir.get(), std::string(file).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode))
        return Status::Ok();  // vanished meanwhile
      if (to_ns(st.st_mtim) < cutoff) old.emplace_back(file);
      return Status::Ok();
    });
    if (!listed.ok()) {
      Log().warn("sweep: cannot list staging of {}: {}", Escaped(user), listed.message());
      continue;
    }
    for (const std::string& file : old) {
      // A partial file's bytes come back through its StagedPiece (if it is
      // still alive, its Finish() fails); a temporary file was never counted.
      const bool counted = !IsPartFile(file) && !IsTempFile(file);
      const uint64_t size = counted ? SizeAt(dir.get(), file) : 0;
      if (::unlinkat(dir.get(), file.c_str(), 0) != 0) {
        const int err = errno;
        if (err != ENOENT)
          Log().warn("sweep: cannot remove {} of {}: {}", Escaped(file), Escaped(user),
                     FromErrno(err, "unlink").message());
        continue;
      }
      if (counted) usage_->Sub(user, size);
      Log().debug("sweep: removed abandoned {} of {}", Escaped(file), Escaped(user));
      ++removed;
    }
  }
  if (removed > 0) Log().info("sweep: removed {} abandoned staged files", removed);
  return removed;
}

Result<StatFsReply> Store::StatFs() {
  struct statvfs sv {};
  if (::fstatvfs(root_fd_.get(), &sv) != 0) return FromErrno(errno, "statvfs " + root_);
  StatFsReply reply;
  const uint64_t unit = sv.f_frsize != 0 ? sv.f_frsize : sv.f_bsize;
  reply.total_bytes = static_cast<uint64_t>(sv.f_blocks) * unit;
  reply.free_bytes = static_cast<uint64_t>(sv.f_bfree) * unit;
  reply.avail_bytes = static_cast<uint64_t>(sv.f_bavail) * unit;
  reply.files = sv.f_files;
  reply.files_free = sv.f_ffree;
  return reply;
}

Status Store::Purge(std::string_view user, std::string_view dir, std::string_view name,
                    const Cid& keep_cid, const Stamp& keep, bool drop_tombstone,
                    const std::vector<uint8_t>& drop_pieces) {
  DFS_ASSIGN_OR_RETURN(std::string d, NormalizeDir(dir));
  DFS_RETURN_IF_ERROR(ValidateName(name));
  DFS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenUserDir(user, d));
  FolderChange change(*this, user, d);

  NameLock lock(*this, StripeOf(user, d, name));
  DFS_ASSIGN_OR_RETURN(NameFiles files, LoadName(dfd.get(), name, max_piece()));
  for (int k = 1; k <= files.last; ++k) {
    const auto& h = files.at[static_cast<size_t>(k)];
    const bool extra = h && h->cid == keep_cid &&
                       std::find(drop_pieces.begin(), drop_pieces.end(), k) != drop_pieces.end();
    if (h && ((h->stamp < keep && h->cid != keep_cid) || extra))
      DFS_RETURN_IF_ERROR(UnlinkCounted(user, dfd.get(), PieceFileName(name, k)));
  }
  if (drop_tombstone && files.at[0] && files.at[0]->stamp <= keep)
    DFS_RETURN_IF_ERROR(UnlinkCounted(user, dfd.get(), PieceFileName(name, 0)));
  return Status::Ok();
}

// ---- retired pieces ----

void Store::Retire(std::string_view user, int dir_fd, const std::string& file, const PieceHeader& h,
                   std::string_view dir, std::string_view name) {
  if (options_.retire_for.count() <= 0 || h.tombstone()) return;
  const std::string u(user);
  UniqueFd rdir = OpenDirBeneath(retired_fd_.get(), u);
  if (!rdir && errno == ENOENT) {
    if (::mkdirat(retired_fd_.get(), u.c_str(), 0700) != 0 && errno != EEXIST) {
      Log().warn("cannot keep replaced piece {}: {}", Escaped(file),
                 FromErrno(errno, "create retired folder").message());
      return;
    }
    rdir = OpenDirBeneath(retired_fd_.get(), u);
  }
  if (!rdir) {
    Log().warn("cannot keep replaced piece {}: {}", Escaped(file),
               FromErrno(errno, "open retired folder").message());
    return;
  }
  const std::string target = RetiredName(h.cid, h.piece, dir, name);
  // The same piece of the same content and path retired before: newer
  // headers (an attribute change) describe the same bytes.
  (void)::unlinkat(rdir.get(), target.c_str(), 0);
  if (::linkat(dir_fd, file.c_str(), rdir.get(), target.c_str(), 0) != 0 && errno != ENOENT)
    Log().warn("cannot keep replaced piece {}: {}", Escaped(file),
               FromErrno(errno, "link").message());
}

Result<size_t> Store::SweepRetired() {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const int64_t keep_s = std::clamp<int64_t>(options_.retire_for.count(), 0, 1'000'000'000);
  std::vector<std::string> users;
  DFS_RETURN_IF_ERROR(
      ForEachEntry(retired_fd_.get(), [&](std::string_view entry, unsigned char type) {
        if (type == DT_DIR && ValidateUser(entry).ok()) users.emplace_back(entry);
        return Status::Ok();
      }));
  size_t removed = 0;
  for (const std::string& user : users) {
    UniqueFd dir = OpenDirBeneath(retired_fd_.get(), user);
    if (!dir) continue;
    std::vector<std::string> old;
    (void)ForEachEntry(dir.get(), [&](std::string_view file, unsigned char) {
      struct stat st {};
      // Linking a file sets its ctime: when it was retired.
      if (::fstatat(dir.get(), std::string(file).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          st.st_ctim.tv_sec + keep_s < now.tv_sec)
        old.emplace_back(file);
      return Status::Ok();
    });
    for (const std::string& file : old)
      if (::unlinkat(dir.get(), file.c_str(), 0) == 0) ++removed;
  }
  if (removed > 0) Log().debug("sweep: removed {} retired piece(s)", removed);
  return removed;
}

// ---- hints ----

Result<UniqueFd> Store::OpenHintDir(std::string_view user, std::string_view target, bool create) {
  DFS_RETURN_IF_ERROR(ValidateUser(user));
  DFS_RETURN_IF_ERROR(ValidateName(target));
  const std::string u(user);
  const std::string path = u + "/" + std::string(target);
  for (int attempt = 0;; ++attempt) {
    UniqueFd fd = OpenDirBeneath(hints_fd_.get(), path);
    if (fd) return fd;
    if (errno == ELOOP) return Status::Permission("refusing to follow a symbolic link in hints");
    if (errno != ENOENT) return FromErrno(errno, "open hint folder");
    if (!create) return UniqueFd();
    if (attempt > 0) return FromErrno(errno, "open hint folder");
    // Made durably: a hint acknowledged must survive a crash with its folders.
    if (::mkdirat(hints_fd_.get(), u.c_str(), 0700) == 0)
      DFS_RETURN_IF_ERROR(Fsync(hints_fd_.get(), "fsync hint folder"));
    else if (errno != EEXIST)
      return FromErrno(errno, "create hint folder");
    UniqueFd mine = OpenDirBeneath(hints_fd_.get(), u);
    if (!mine) return FromErrno(errno, "open hint folder");
    const std::string t(target);
    if (::mkdirat(mine.get(), t.c_str(), 0700) == 0)
      DFS_RETURN_IF_ERROR(Fsync(mine.get(), "fsync hint folder"));
    else if (errno != EEXIST)
      return FromErrno(errno, "create hint folder");
  }
}

Status Store::AddHint(std::string_view user, const Hint& hint) {
  DFS_RETURN_IF_ERROR(ValidateHint(hint));
  const std::string raw = EncodeMessage(hint);
  // Hints are small and not charged to the quota, but a full disk refuses them too.
  DFS_RETURN_IF_ERROR(CheckFreeSpace(raw.size()));
  DFS_ASSIGN_OR_RETURN(UniqueFd dir, OpenHintDir(user, hint.target, /*create=*/true));
  DFS_ASSIGN_OR_RETURN(UniqueFd staging, OpenStagingDir(user));
  TempFile temp(staging.get(), "~" + RandomSuffix());
  DFS_RETURN_IF_ERROR(WriteSyncedTemp(staging.get(), temp, raw, "hint"));
  if (::renameat(staging.get(), temp.name().c_str(), dir.get(), HintId(hint).c_str()) != 0)
    return FromErrno(errno, "place hint");
  temp.Release();
  return Fsync(dir.get(), "fsync hint folder");
}

Result<HintListReply> Store::ListHints(std::string_view user, std::string_view target,
                                       std::string_view after, size_t max_bytes) {
  HintListReply reply;
  DFS_ASSIGN_OR_RETURN(UniqueFd dir, OpenHintDir(user, target, /*create=*/false));
  if (!dir) return reply;
  std::vector<std::string> ids;
  DFS_RETURN_IF_ERROR(ForEachEntry(dir.get(), [&](std::string_view file, unsigned char type) {
    if (type == DT_REG && file.size() == 64 && file > after) ids.emplace_back(file);
    return Status::Ok();
  }));
  std::sort(ids.begin(), ids.end());
  size_t bytes = 5;
  for (const std::string& id : ids) {
    UniqueFd fd = OpenFileAt(dir.get(), id, O_RDONLY);
    if (!fd) continue;  // dropped meanwhile
    char buf[2 * kMaxPathBytes];
    auto got = PreadFull(fd.get(), buf, sizeof buf, 0, "read hint");
    auto hint =
        got.ok() ? DecodeMessage<Hint>(std::string_view(buf, *got)) : Result<Hint>(got.status());
    if (hint.ok() && (HintId(*hint) != id || hint->target != target))
      hint = Status::Corrupt("does not match its name");
    if (hint.ok()) {
      if (Status valid = ValidateHint(*hint); !valid.ok()) hint = valid;
    }
    if (!hint.ok()) {
      // No client could drop it (DropHint names valid hints only): removed
      // here, once, rather than skipped and logged on every listing.
      Log().warn("user {}: removing unreadable hint {}: {}", Escaped(user), id,
                 hint.status().message());
      (void)UnlinkIfExists(dir.get(), id);
      continue;
    }
    const size_t size = EncodeMessage(*hint).size();
    if (!reply.hints.empty() && bytes + size > max_bytes) {
      reply.more = true;
      break;
    }
    bytes += size;
    reply.hints.push_back(std::move(*hint));
  }
  return reply;
}

Status Store::DropHint(std::string_view user, const Hint& hint) {
  DFS_RETURN_IF_ERROR(ValidateHint(hint));
  DFS_ASSIGN_OR_RETURN(UniqueFd dir, OpenHintDir(user, hint.target, /*create=*/false));
  if (!dir) return Status::Ok();
  return UnlinkIfExists(dir.get(), HintId(hint));
}

Status Store::CheckFreeSpace(uint64_t bytes) {
  struct statvfs sv {};
  if (::fstatvfs(root_fd_.get(), &sv) != 0) return FromErrno(errno, "statvfs " + root_);
  const uint64_t unit = sv.f_frsize != 0 ? sv.f_frsize : sv.f_bsize;
  const uint64_t avail = static_cast<uint64_t>(sv.f_bavail) * unit;
  const uint64_t usable = avail > options_.reserve_bytes ? avail - options_.reserve_bytes : 0;
  if (usable >= bytes) return Status::Ok();
  return Status::NoSpace("not enough free space: piece needs " + std::to_string(bytes) +
                         " bytes, " + std::to_string(usable) + " available");
}

Result<uint64_t> Store::ScanUsage(std::string_view user) {
  uint64_t total = 0;
  // One folder open at a time: depth costs no descriptors.
  std::vector<std::string> folders{std::string(user)};
  while (!folders.empty()) {
    const std::string path = std::move(folders.back());
    folders.pop_back();
    UniqueFd fd = OpenDirBeneath(root_fd_.get(), path);
    if (!fd) {
      const int err = errno;
      if (err == ENOENT) continue;  // removed meanwhile (or a user with nothing yet)
      if (path.size() == user.size()) return FromErrno(err, "open folder of " + Escaped(user));
      Log().warn("usage of {}: skipping {}: {}", Escaped(user), Escaped(path),
                 FromErrno(err, "open").message());
      continue;
    }
    DFS_RETURN_IF_ERROR(ForEachEntry(fd.get(), [&](std::string_view file, unsigned char type) {
      std::string name;
      int k = 0;
      if (type == DT_DIR)
        folders.push_back(path + "/" + std::string(file));
      else if (type == DT_REG && ParsePieceFileName(file, &name, &k))
        total += SizeAt(fd.get(), std::string(file));
      return Status::Ok();
    }));
  }
  if (UniqueFd staging = OpenDirBeneath(staging_fd_.get(), std::string(user))) {
    DFS_RETURN_IF_ERROR(ForEachEntry(staging.get(), [&](std::string_view file, unsigned char type) {
      if (type == DT_REG) total += SizeAt(staging.get(), std::string(file));
      return Status::Ok();
    }));
  }
  Log().debug("usage of {}: {} bytes", Escaped(user), total);
  return total;
}

Status Store::UnlinkCounted(std::string_view user, int dir_fd, const std::string& file) {
  const bool tracked = usage_->Tracked(user);
  const uint64_t size = tracked ? SizeAt(dir_fd, file) : 0;
  if (::unlinkat(dir_fd, file.c_str(), 0) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return FromErrno(errno, "unlink " + Escaped(file));
  }
  if (size > 0) usage_->Sub(user, size);
  return Status::Ok();
}

Status Store::RenameCounted(std::string_view user, int from_fd, const std::string& from, int to_fd,
                            const std::string& to, std::string_view what) {
  const uint64_t replaced = usage_->Tracked(user) ? SizeAt(to_fd, to) : 0;
  if (::renameat(from_fd, from.c_str(), to_fd, to.c_str()) != 0) return FromErrno(errno, what);
  if (replaced > 0) usage_->Sub(user, replaced);
  return Status::Ok();
}

}  // namespace dfs::server
