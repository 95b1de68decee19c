// A stand-in for dfs_server, run in the test process, to play a malicious
// server: real TLS 1.3 with a key of its own, a correct login for one user
// (it knows that user's verifier for its name, as a taken-over server
// does), then answers to LIST, STAT and GET from records the test hands it,
// with misbehaviours on request. Requests it does not know get kError
// kInvalidArgument. Listings cover the root folder only.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/config/config.h"
#include "shared/crypto/crypto.h"
#include "shared/format/piece_header.h"
#include "shared/net/tls.h"
#include "shared/protocol/frame.h"
#include "shared/util/fd.h"
#include "tests/support/cluster.h"

namespace dfs::testing {

// A file sealed as a real client would: one signed header and the sealed
// bytes per piece (4 pieces, replicated rotation), with the user's keys.
struct SealedFile {
  std::string name;                  // in the root folder
  std::vector<PieceHeader> headers;  // headers[k-1]: piece k
  std::vector<std::string> sealed;   // sealed[k-1]: sealed bytes of piece k
};
SealedFile SealFile(const UserKeys& keys, const std::string& name, const std::string& content,
                    uint32_t mode = 0644);

class FakeServer {
 public:
  struct Behavior {
    bool endless_list = false;  // kList: ListReply frames with more = true, forever
    enum class Entries {
      kFolders,   // folder entries (no record to check), numbered names
      kReplayed,  // the genuine records it holds, again and again
      kForged,    // numbered names with a record of another name
    };
    Entries list_entries = Entries::kFolders;
    size_t list_name_bytes = 7;  // length of the numbered names (7..251)
    bool endless_get = false;    // kGet: the announced bytes, then more data frames, forever
    bool empty_frames = false;   // kGet: after the reply, empty data frames forever
  };
  // How long an endless answer goes on at most (the client should stop it far earlier).
  static constexpr int kEndlessSeconds = 60;

  FakeServer(std::string name, std::string user, const Key& verifier, Behavior behavior);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // Reports `h` as a record of `name` (root folder) in LIST and STAT; GET of
  // that piece serves `sealed`.
  void AddRecord(const std::string& name, const PieceHeader& h, std::string sealed = "");
  // All pieces of `file`.
  void AddFile(const SealedFile& file);

  const std::string& name() const { return name_; }
  uint16_t port() const { return port_; }
  const std::string& fingerprint() const { return tls_->fingerprint(); }
  // Bytes of frame bodies sent in answers to LIST and GET so far.
  uint64_t bytes_sent() const { return bytes_sent_.load(); }
  int logins() const { return logins_.load(); }

 private:
  struct Record {
    PieceHeader header;
    std::string sealed;
  };
  struct Conn {
    UniqueFd fd;
    std::thread thread;
  };
  void AcceptLoop();
  void Serve(Conn* conn);
  void ServeLoop(Conn* conn);
  Status Answer(TlsChannel& ch, const Frame& f);
  std::vector<Record> RecordsOf(const std::string& name);

  const std::string name_;
  const std::string user_;
  const Key verifier_;
  const Behavior behavior_;
  TempDir key_dir_{"dfs-fake"};
  std::unique_ptr<TlsServerContext> tls_;
  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<int> logins_{0};
  std::thread acceptor_;

  std::mutex mu_;  // guards records_ and conns_; leaf lock, never held across I/O
  std::map<std::string, std::vector<Record>> records_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

// Four fake servers DFS1..DFS4 for Alice, and a dfc.conf naming them with
// their keys pinned. Behaviours per server (0-based).
class FakeCluster {
 public:
  explicit FakeCluster(std::map<int, FakeServer::Behavior> behaviors = {});
  FakeServer& server(int i) { return *servers_[static_cast<size_t>(i)]; }
  // Adds the file to every server (all four hold every piece).
  void AddFileEverywhere(const SealedFile& file);
  ClientConfig Config() const;
  const std::string& conf_path() const { return conf_path_; }
  const std::string& dir() const { return tmp_.path(); }

 private:
  TempDir tmp_{"dfs-fakes"};
  std::vector<std::unique_ptr<FakeServer>> servers_;
  std::string conf_path_;
};

}  // namespace dfs::testing
