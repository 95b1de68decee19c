// Writes the seed corpora of tests/fuzz (one folder per target) with the
// real encoders, so that every seed is a valid input in the format its
// target reads. Deterministic: fixed keys, stamps and content ids.
//   fuzz_make_corpus OUT_DIR      (e.g. tests/fuzz/corpus; files are overwritten)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "shared/format/hint.h"
#include "shared/format/piece_header.h"
#include "shared/protocol/auth.h"
#include "shared/protocol/frame.h"
#include "shared/protocol/messages.h"
#include "shared/util/coding.h"
#include "shared/util/names.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

namespace fs = std::filesystem;

fs::path g_out;
int g_files = 0;

void Write(const std::string& target, const std::string& name, std::string_view bytes) {
  const fs::path dir = g_out / target;
  fs::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
  ++g_files;
}

std::string Byte(uint8_t b) { return std::string(1, static_cast<char>(b)); }

Cid CidOf(uint8_t seed) {
  Cid c{};
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(seed * 5 + i);
  return c;
}

const Key kRecordKey = fuzz::FixedKey(0x40);
constexpr Stamp kStamp{1700000000000000000ULL, 42};
constexpr Stamp kLater{1700000000000000001ULL, 7};

PieceHeader Piece(uint8_t piece, uint64_t file_size, std::string_view path, Stamp stamp = kStamp) {
  PieceHeader h;
  h.piece = piece;
  h.x = 1;
  h.cid = CidOf(1);
  h.stamp = stamp;
  h.file_size = file_size;
  h.piece_size = PieceSize(file_size, h.servers, piece);
  h.mtime_ns = 1700000000000000000LL;
  h.mode = 0644;
  h.chunk_bytes = 1024;
  h.uid = 1000;
  h.gid = 1000;
  h.Sign(kRecordKey, path);
  return h;
}

PieceHeader Tombstone(std::string_view path, Stamp stamp = kLater) {
  PieceHeader h;
  h.kind = PieceKind::kTombstone;
  h.cid = CidOf(1);
  h.stamp = stamp;
  h.Sign(kRecordKey, path);
  return h;
}

PieceHeader FolderRecord(std::string_view path, Stamp stamp = kLater) {
  PieceHeader h;
  h.kind = PieceKind::kFolder;
  h.stamp = stamp;
  h.mode = 040750;
  h.uid = 1000;
  h.gid = 1000;
  h.Sign(kRecordKey, path);
  return h;
}

std::string Header(MsgType type, uint32_t id, uint32_t length) {
  uint8_t h[kFrameHeaderBytes];
  EncodeFrameHeader({type, id, length}, h);
  return std::string(reinterpret_cast<const char*>(h), kFrameHeaderBytes);
}

std::string BE32(uint32_t v) {
  uint8_t b[4];
  PutBE(b, v, 4);
  return std::string(reinterpret_cast<const char*>(b), 4);
}

void FrameHeaders() {
  const std::string t = "frame_header";
  Write(t, "ping", Header(MsgType::kPing, 1, 0));
  Write(t, "data_full", Header(MsgType::kData, 7, kMaxDataBody));
  Write(t, "hello_under_handshake_limit", Header(MsgType::kHello, 0, 40) + BE32(kMaxHandshakeBody));
  Write(t, "list_over_handshake_limit",
        Header(MsgType::kList, 3, kMaxHandshakeBody + 1) + BE32(kMaxHandshakeBody));
  Write(t, "error_reply", Header(MsgType::kError, 0xffffffff, 12));
  std::string bad = Header(MsgType::kReply, 2, kMaxControlBody + 1);
  Write(t, "reply_over_limit", bad);
  bad = Header(MsgType::kPing, 1, 0);
  bad[6] = 1;
  Write(t, "flags_set", bad);
}

// Byte 0 indexes kDecoders of messages_fuzz.cc.
void Messages() {
  const std::string t = "messages";
  auto w = [&](uint8_t index, const std::string& name, const std::string& body) {
    Write(t, name, Byte(index) + body);
  };
  const PieceHeader p1 = Piece(1, 10, "docs/a.txt");
  const PieceHeader p2 = Piece(2, 10, "docs/a.txt");
  const PieceHeader dead = Tombstone("docs/a.txt");
  w(0, "empty", EncodeMessage(Empty{}));
  w(1, "hello", EncodeMessage(HelloRequest{"alice", fuzz::FixedKey(1)}));
  w(2, "challenge", EncodeMessage(Challenge{fuzz::FixedKey(2), "DFS1"}));
  w(3, "proof", EncodeMessage(ProofRequest{fuzz::FixedKey(3)}));
  w(4, "auth_ok", EncodeMessage(AuthOk{fuzz::FixedKey(4)}));
  w(5, "list_request", EncodeMessage(ListRequest{"docs/sub"}));
  ListReply list;
  list.more = true;
  list.entries.push_back({"sub", true, {}});
  list.entries.push_back({"a.txt", false, p1});
  list.entries.push_back({"b.txt", false, dead});
  w(6, "list_reply", EncodeMessage(list));
  w(7, "stat_request", EncodeMessage(StatRequest{"docs", "a.txt"}));
  w(8, "stat_reply", EncodeMessage(StatReply{false, {p1, p2, dead}}));
  w(9, "put_begin", EncodeMessage(PutBeginRequest{"docs", "a.txt", p1}));
  w(10, "commit", EncodeMessage(CommitRequest{"docs", "a.txt", p1.cid, kStamp}));
  w(11, "commit_reply", EncodeMessage(CommitReply{{1, 2}}));
  w(12, "abort", EncodeMessage(AbortRequest{p1.cid}));
  w(13, "get", EncodeMessage(GetRequest{"docs", "a.txt", 1, p1.cid, 0, 1 << 20}));
  w(14, "get_reply", EncodeMessage(GetReply{p1, 0, p1.sealed_size()}));
  w(15, "delete", EncodeMessage(DeleteRequest{"docs", "a.txt", dead}));
  w(16, "path", EncodeMessage(PathRequest{"docs/new"}));
  w(17, "rename",
    EncodeMessage(RenameRequest{
        "docs", "a.txt", "", "b.txt", p1.cid, {Piece(1, 10, "b.txt", kLater)}, dead}));
  w(18, "set_attr",
    EncodeMessage(SetAttrRequest{"docs", "a.txt", p1.cid, {Piece(1, 10, "docs/a.txt", kLater)}}));
  {
    PieceHeader hx = Piece(1, 10, "docs/a.txt", kLater);
    hx.xattr_bytes = 30;
    hx.Sign(kRecordKey, "docs/a.txt");
    w(18, "set_attr_xattrs",
      EncodeMessage(SetAttrRequest{"docs", "a.txt", p1.cid, {hx}, std::string(30, 'x')}));
  }
  w(19, "stat_fs_reply", EncodeMessage(StatFsReply{1 << 30, 1 << 29, 1 << 28, 1000, 900}));
  w(20, "purge", EncodeMessage(PurgeRequest{"docs", "a.txt", p1.cid, kStamp, true}));
  w(20, "purge_drop_pieces",
    EncodeMessage(PurgeRequest{"docs", "a.txt", p1.cid, kStamp, false, {2, 3}}));
  w(21, "error_reply", EncodeMessage(ErrorReply{1, "no such file 'a.txt'"}));
  w(22, "decode_error", EncodeError(Status::AuthFailed(kAuthFailedMessage)));
  w(22, "decode_error_bad_code", EncodeMessage(ErrorReply{200, "?"}));
  w(23, "stage", EncodeMessage(StageRequest{"docs", "a.txt", {p1, p2}}));
  const Hint hint = MakeHint(kRecordKey, "DFS2", "docs/a.txt", kStamp);
  w(24, "hint", EncodeMessage(hint));
  w(25, "hint_list_request", EncodeMessage(HintListRequest{"DFS2", HintId(hint)}));
  w(26, "hint_list_reply",
    EncodeMessage(HintListReply{true, {hint, MakeHint(kRecordKey, "DFS2", "docs", kLater)}}));
  w(27, "revert", EncodeMessage(RevertRequest{"docs", "a.txt", Cid{1, 2, 3}, Cid{4, 5, 6}}));
  w(28, "folder", EncodeMessage(FolderRequest{"docs/sub", true, FolderRecord("docs/sub")}));
}

void PieceHeaders() {
  const std::string t = "piece_header";
  Write(t, "piece_with_path", Piece(1, 10, "docs/a.txt").Encode() + "docs/a.txt");
  Write(t, "tombstone_with_file_name", Tombstone("a.txt").Encode() + ".a.txt.0");
  PieceHeader big = Piece(4, kMaxFileSize, "big");
  big.chunk_bytes = 16u << 20;
  big.Sign(kRecordKey, "big");
  Write(t, "largest_file", big.Encode() + ".big.4");
  Write(t, "header_alone", Piece(2, 0, "").Encode());
  Write(t, "file_name_only", ".report.txt.12");
}

// Byte 0: 0 dfc.conf, 1 dfs.conf, 2 HOST:PORT, 3 SIZE, 4 fingerprint.
void Configs() {
  const std::string t = "config";
  const std::string print = "SHA256:" + std::string(43, 'A');
  Write(t, "client",
        Byte(0) +
            "# dfc.conf\n"
            "Server DFS1 127.0.0.1:10001\n"
            "Server DFS2 [::1]:10002\n"
            "Server DFS3 localhost:10003   # comment\n"
            "Server DFS4 127.0.0.1:10004\n"
            "Username: Alice\n"
            "Password: Simple Password\n"
            "Fingerprint DFS1 " +
            print + "\nKnownServers /tmp/known servers\n");
  Write(t, "client_minimal", Byte(0) + "server a h:1\nusername b\npassword c");
  Write(t, "server",
        Byte(1) +
            "# dfs.conf\n"
            "Alice SimplePassword quota=10G\n"
            "Bob $dfs2$" +
            std::string(64, 'a') + "\n\ncarol pw quota=512\n");
  Write(t, "host_port", Byte(2) + "127.0.0.1:10001");
  Write(t, "host_port_v6", Byte(2) + "[fe80::1:2]:443");
  Write(t, "size_suffix", Byte(3) + "16T");
  Write(t, "size_bytes", Byte(3) + "18446744073709551615");
  Write(t, "fingerprint", Byte(4) + print);
}

// Byte 0: max_bytes for Escaped().
void Names() {
  const std::string t = "names";
  Write(t, "path", Byte(255) + "docs/2024/report.txt");
  Write(t, "slashes", Byte(255) + "//a///b/");
  Write(t, "dot_dot", Byte(255) + "a/../b");
  Write(t, "control", Byte(4) + "esc\x1b[31mred\nnew line\x7f");
  Write(t, "quote_backslash", Byte(255) + "it's a \\ name");
  Write(t, "longest_name", Byte(16) + std::string(kMaxNameBytes, 'n'));
  Write(t, "root", Byte(0) + "/");
}

const Key kVerifier = fuzz::FixedKey(3);  // as handshake_fuzz.cc
const Key kBinding = fuzz::FixedKey(4);
const Key kServerNonce = fuzz::FixedKey(5);
const Key kClientNonce = fuzz::FixedKey(6);

std::string FrameOf(MsgType type, uint32_t id, std::string_view body) {
  return fuzz::FrameBytes(type, id, body);
}

// Byte 0: even the server's side, odd the client's.
void Handshakes() {
  const std::string t = "handshake";
  const HelloRequest hello{"alice", kClientNonce};
  const Key proof = ClientProof(kVerifier, kBinding, kClientNonce, kServerNonce, "alice");
  Write(t, "server_login",
        Byte(0) + FrameOf(MsgType::kHello, 1, EncodeMessage(hello)) +
            FrameOf(MsgType::kProof, 2, EncodeMessage(ProofRequest{proof})));
  Write(t, "server_wrong_proof",
        Byte(0) + FrameOf(MsgType::kHello, 1, EncodeMessage(hello)) +
            FrameOf(MsgType::kProof, 2, EncodeMessage(ProofRequest{fuzz::FixedKey(9)})));
  Write(t, "server_request_before_login", Byte(0) + FrameOf(MsgType::kList, 1, "\0\0"));
  const Key server_proof = ServerProof(kVerifier, kBinding, kClientNonce, kServerNonce, "alice");
  Write(t, "client_login",
        Byte(1) + FrameOf(MsgType::kReply, 1, EncodeMessage(Challenge{kServerNonce, "DFS1"})) +
            FrameOf(MsgType::kReply, 2, EncodeMessage(AuthOk{server_proof})));
  Write(t, "client_auth_failed",
        Byte(1) + FrameOf(MsgType::kReply, 1, EncodeMessage(Challenge{kServerNonce, "DFS1"})) +
            FrameOf(MsgType::kError, 2, EncodeError(Status::AuthFailed(kAuthFailedMessage))));
}

std::string Login(const std::string& user) {
  return FrameOf(MsgType::kHello, 1, EncodeMessage(HelloRequest{user, kClientNonce})) +
         FrameOf(MsgType::kProof, 2, EncodeMessage(ProofRequest{fuzz::FixedKey(7)}));
}

// Puts piece `piece` of a 10-byte file dir/name and commits it.
std::string PutAndCommit(uint32_t id, const std::string& dir, const std::string& name,
                         uint8_t piece) {
  const PieceHeader h = Piece(piece, 10, dir.empty() ? name : dir + "/" + name);
  std::string out =
      FrameOf(MsgType::kPutBegin, id, EncodeMessage(PutBeginRequest{dir, name, h})) +
      FrameOf(MsgType::kData, id, std::string(static_cast<size_t>(h.sealed_size()), 's')) +
      FrameOf(MsgType::kDataEnd, id, "");
  return out +
         FrameOf(MsgType::kCommit, id + 1, EncodeMessage(CommitRequest{dir, name, h.cid, h.stamp}));
}

void Sessions() {
  const std::string t = "server_session";
  const PieceHeader p1 = Piece(1, 10, "docs/a.txt");
  Write(t, "login_ping_list",
        Login("bob") + FrameOf(MsgType::kPing, 3, "") +
            FrameOf(MsgType::kList, 4, EncodeMessage(ListRequest{""})) +
            FrameOf(MsgType::kStatFs, 5, ""));
  Write(t, "put_list_get",
        Login("alice") + FrameOf(MsgType::kMkdir, 3, EncodeMessage(PathRequest{"docs"})) +
            PutAndCommit(4, "docs", "a.txt", 1) + PutAndCommit(6, "docs", "a.txt", 2) +
            FrameOf(MsgType::kList, 8, EncodeMessage(ListRequest{"docs"})) +
            FrameOf(MsgType::kStat, 9, EncodeMessage(StatRequest{"docs", "a.txt"})) +
            FrameOf(MsgType::kGet, 10,
                    EncodeMessage(GetRequest{"docs", "a.txt", 1, p1.cid, 2, 1 << 20})));
  RenameRequest rename{"docs",
                       "a.txt",
                       "",
                       "b.txt",
                       p1.cid,
                       {Piece(1, 10, "b.txt", kLater)},
                       Tombstone("docs/a.txt")};
  Write(t, "put_setattr_rename_delete",
        Login("bob") + FrameOf(MsgType::kMkdir, 3, EncodeMessage(PathRequest{"docs"})) +
            PutAndCommit(4, "docs", "a.txt", 1) +
            FrameOf(MsgType::kSetAttr, 6,
                    EncodeMessage(SetAttrRequest{
                        "docs", "a.txt", p1.cid, {Piece(1, 10, "docs/a.txt", kLater)}})) +
            FrameOf(MsgType::kRename, 7, EncodeMessage(rename)) +
            FrameOf(MsgType::kDelete, 8,
                    EncodeMessage(
                        DeleteRequest{"", "b.txt", Tombstone("b.txt", {kLater.time_ns + 1, 0})})) +
            FrameOf(MsgType::kPurge, 9,
                    EncodeMessage(PurgeRequest{"", "b.txt", p1.cid, kLater, true})) +
            FrameOf(MsgType::kRmdir, 10, EncodeMessage(PathRequest{"docs"})));
  Write(t, "put_abort",
        Login("alice") +
            FrameOf(MsgType::kPutBegin, 3, EncodeMessage(PutBeginRequest{"", "c.txt", p1})) +
            FrameOf(MsgType::kData, 3, "short") + FrameOf(MsgType::kDataEnd, 3, "") +
            FrameOf(MsgType::kAbort, 4, EncodeMessage(AbortRequest{p1.cid})));
  Write(t, "request_before_login", FrameOf(MsgType::kMkdir, 1, EncodeMessage(PathRequest{"x"})));
  const Hint hint = MakeHint(kRecordKey, "DFS2", "docs/a.txt", kStamp);
  const Hint folder_hint = MakeHint(kRecordKey, "DFS2", "docs", kLater);
  Write(t, "hints_add_list_drop",
        Login("alice") + FrameOf(MsgType::kHintAdd, 3, EncodeMessage(hint)) +
            FrameOf(MsgType::kHintAdd, 4, EncodeMessage(folder_hint)) +
            FrameOf(MsgType::kHintAdd, 5,
                    EncodeMessage(MakeHint(kRecordKey, "DFS3", "b.txt", kStamp))) +
            FrameOf(MsgType::kHintAdd, 6,
                    EncodeMessage(MakeHint(kRecordKey, "../x", "a/../b", kStamp))) +
            FrameOf(MsgType::kHintList, 7, EncodeMessage(HintListRequest{"DFS2", ""})) +
            FrameOf(MsgType::kHintList, 8, EncodeMessage(HintListRequest{"DFS2", HintId(hint)})) +
            FrameOf(MsgType::kHintDrop, 9, EncodeMessage(hint)) +
            FrameOf(MsgType::kHintDrop, 10, EncodeMessage(hint)) +
            FrameOf(MsgType::kHintList, 11, EncodeMessage(HintListRequest{"DFS2", ""})));
  Write(t, "put_purge_drop_pieces",
        Login("bob") + FrameOf(MsgType::kMkdir, 3, EncodeMessage(PathRequest{"docs"})) +
            PutAndCommit(4, "docs", "a.txt", 1) + PutAndCommit(6, "docs", "a.txt", 2) +
            FrameOf(MsgType::kPurge, 8,
                    EncodeMessage(PurgeRequest{"docs", "a.txt", p1.cid, kStamp, false, {2}})) +
            FrameOf(MsgType::kStat, 9, EncodeMessage(StatRequest{"docs", "a.txt"})));
  Write(
      t, "put_revert",
      Login("bob") + FrameOf(MsgType::kMkdir, 3, EncodeMessage(PathRequest{"docs"})) +
          PutAndCommit(4, "docs", "a.txt", 1) +
          FrameOf(MsgType::kRevert, 6, EncodeMessage(RevertRequest{"docs", "a.txt", p1.cid, {}})) +
          FrameOf(MsgType::kStat, 7, EncodeMessage(StatRequest{"docs", "a.txt"})));
  Write(
      t, "folder_records",
      Login("bob") +
          FrameOf(MsgType::kFolder, 3,
                  EncodeMessage(FolderRequest{"docs", true, FolderRecord("docs")})) +
          FrameOf(MsgType::kFolder, 4,
                  EncodeMessage(FolderRequest{"docs", false, FolderRecord("docs", kStamp)})) +
          FrameOf(MsgType::kFolder, 5, EncodeMessage(FolderRequest{"", false, FolderRecord("")})) +
          FrameOf(MsgType::kList, 6, EncodeMessage(ListRequest{""})) +
          FrameOf(MsgType::kStat, 7, EncodeMessage(StatRequest{"", "docs"})) +
          FrameOf(MsgType::kRmdir, 8, EncodeMessage(PathRequest{"docs"})));
  // Extended attributes: set (a copy of the piece with them after its
  // content), set again to the same (the header alone), dropped, then a
  // rename that carries new ones.
  const std::string xattrs(40, 'x');
  auto with_xattrs = [&](const std::string& path, Stamp stamp, size_t n) {
    PieceHeader h = Piece(1, 10, path, stamp);
    h.xattr_bytes = static_cast<uint16_t>(n);
    h.Sign(kRecordKey, path);
    return h;
  };
  RenameRequest rename_x{"docs",
                         "a.txt",
                         "",
                         "c.txt",
                         p1.cid,
                         {with_xattrs("c.txt", {kLater.time_ns + 3, 0}, 24)},
                         Tombstone("docs/a.txt", {kLater.time_ns + 3, 0}),
                         std::string(24, 'y')};
  Write(
      t, "xattrs",
      Login("bob") + FrameOf(MsgType::kMkdir, 3, EncodeMessage(PathRequest{"docs"})) +
          PutAndCommit(4, "docs", "a.txt", 1) +
          FrameOf(MsgType::kSetAttr, 6,
                  EncodeMessage(SetAttrRequest{
                      "docs", "a.txt", p1.cid, {with_xattrs("docs/a.txt", kLater, 40)}, xattrs})) +
          FrameOf(
              MsgType::kSetAttr, 7,
              EncodeMessage(SetAttrRequest{"docs",
                                           "a.txt",
                                           p1.cid,
                                           {with_xattrs("docs/a.txt", {kLater.time_ns + 1, 0}, 40)},
                                           xattrs})) +
          FrameOf(MsgType::kGet, 8,
                  EncodeMessage(GetRequest{"docs", "a.txt", 1, p1.cid, 0, 4096})) +
          FrameOf(
              MsgType::kSetAttr, 9,
              EncodeMessage(SetAttrRequest{"docs",
                                           "a.txt",
                                           p1.cid,
                                           {with_xattrs("docs/a.txt", {kLater.time_ns + 2, 0}, 0)},
                                           ""})) +
          FrameOf(MsgType::kRename, 10, EncodeMessage(rename_x)) +
          FrameOf(MsgType::kStat, 11, EncodeMessage(StatRequest{"", "c.txt", 4096})));
}

}  // namespace
}  // namespace dfs

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  dfs::g_out = argv[1];
  dfs::FrameHeaders();
  dfs::Messages();
  dfs::PieceHeaders();
  dfs::Configs();
  dfs::Names();
  dfs::Handshakes();
  dfs::Sessions();
  std::printf("wrote %d files under %s\n", dfs::g_files, argv[1]);
  return 0;
}
