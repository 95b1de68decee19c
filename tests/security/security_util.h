// Helpers of the security suite: running dfc with a bound on time, client
// configs that point one server at a relay or pin other keys, snapshots of a
// server's folder, the memory high-water mark of this process, and a TCP
// relay that records and tampers with the bytes between a client and one server.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/crypto/crypto.h"
#include "shared/util/fd.h"
#include "tests/support/cluster.h"

namespace dfs::testing {

inline constexpr char kAlice[] = "Alice";
inline constexpr char kAlicePassword[] = "SimplePassword";

// The keys of Alice (scrypt once per process).
const UserKeys& AliceKeys();

// Runs `dfc CONF words...`; killed (exit_code -1) after `timeout_seconds`.
CommandResult Dfc(const std::string& conf, const std::vector<std::string>& words,
                  const std::string& cwd = "", int timeout_seconds = 60);

// A dfc.conf for `cluster` at `path`, with these changes: server i (0-based)
// reached at another port (a relay), pinned to another fingerprint, or not
// pinned at all (`pin` false: trust on first use into cluster.known_servers()).
struct ConfChanges {
  std::map<int, uint16_t> ports;
  std::map<int, std::string> fingerprints;
  bool pin = true;
};
std::string WriteConf(const Cluster& cluster, const std::string& path, const ConfChanges& changes,
                      const std::string& user = kAlice,
                      const std::string& password = kAlicePassword);

// Everything under `dir`: relative path -> "d" (folder), "l:TARGET" (symlink)
// or "f:" + content (file). For before/after comparisons of a server's disk.
std::map<std::string, std::string> Snapshot(const std::string& dir);
// Paths that differ between two snapshots, for a readable failure message.
std::string DiffSnapshots(const std::map<std::string, std::string>& before,
                          const std::map<std::string, std::string>& after);

// The peak resident memory of this process since the last ResetPeakMemory(), in bytes.
uint64_t PeakMemory();
void ResetPeakMemory();

// Whether `haystack` contains `needle` as raw bytes.
inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A TCP relay on 127.0.0.1 in front of 127.0.0.1:upstream, as a machine on
// the path would be: it records every byte in both directions and may
// tamper with the TLS records it forwards. Each accepted connection gets
// its own upstream connection and two threads (one per direction). Every
// connection is tampered with the same way (a persistent attacker).
//
// "Application records" count TLS records of type 23 (application data):
// the client's are those after its Finished (its 2nd such record, the login
// hello, is its first), the server's are those sent after the client's first
// application record was forwarded (the first one carries the Challenge).
class Relay {
 public:
  struct Tamper {
    // Flip the last byte (in the AEAD tag) of the server's application
    // record number `flip_to_client` (1-based); 0: never.
    int flip_to_client = 0;
    // Bytes sent to the server right before the client's first application record.
    std::string inject_to_server;
    // Bytes sent to the client right before the server's application record
    // number `inject_to_client_at` (1-based).
    std::string inject_to_client;
    int inject_to_client_at = 1;
  };

  explicit Relay(uint16_t upstream_port);
  Relay(uint16_t upstream_port, Tamper tamper);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  uint16_t port() const { return port_; }
  // Every byte seen so far, both directions.
  std::string Recorded() const;
  int connections() const { return connections_.load(); }
  // How many times the tamper was applied.
  int tampered() const { return tampered_.load(); }

 private:
  struct Conn;
  void AcceptLoop();
  void Pump(Conn* conn, bool to_server);

  const uint16_t upstream_;
  const Tamper tamper_;
  UniqueFd listener_;
  UniqueFd stop_read_, stop_write_;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::atomic<int> connections_{0};
  std::atomic<int> tampered_{0};

  mutable std::mutex mu_;  // guards recorded_ and conns_; leaf lock, never held across I/O
  std::string recorded_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

}  // namespace dfs::testing
