// Integration: authentication and what a wrong password can (not) do.
#include "shared/protocol/auth.h"
#include "tests/integration/helpers.h"

namespace dfs::testing {
namespace {

TEST_CASE("a wrong password or an unknown user gets exactly the classic message") {
  Cluster cluster;
  for (auto [user, password] :
       {std::pair<std::string, std::string>{"Alice", "wrong"}, {"Mallory", "SimplePassword"}}) {
    CAPTURE(user);
    const std::string conf = cluster.WriteClientConfig(user, password);
    for (const char* cmd : {"list", "put", "get"}) {
      std::vector<std::string> words = {cmd};
      if (std::string(cmd) == "put") words.push_back(conf);
      if (std::string(cmd) == "get") words.push_back("x");
      auto r = Dfc(conf, words);
      CHECK(r.exit_code == 1);
      CHECK(r.err == "Invalid Username/Password. Please try again.\n");
      CHECK(r.out.empty());
    }
    auto c = MakeClient(cluster, user, password);
    Status s = c->Ping();
    CHECK(s.code() == Code::kAuthFailed);
    CHECK(s.message() == kAuthFailedMessage);
  }
}

TEST_CASE("a user with the right name and a wrong password cannot read the content") {
  Cluster cluster;
  {
    auto alice = MakeClient(cluster);
    REQUIRE(PutBytes(*alice, "private.txt", "only Alice may read this").ok());
  }
  // The operator changes Alice's password on every server; a client that
  // authenticates with the new password still cannot decrypt old content.
  WriteFile(cluster.server_conf(), "Alice NewPassword\nBob BobPassword\n");
  for (int i = 0; i < cluster.size(); ++i) cluster.Restart(i);
  auto intruder = MakeClient(cluster, "Alice", "NewPassword");
  REQUIRE(intruder->Ping().ok());
  auto listing = intruder->List("");
  REQUIRE(listing.ok());
  REQUIRE(listing->entries.size() == 1);
  auto got = GetBytes(*intruder, "private.txt");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().code() == Code::kCorrupt);
}

TEST_CASE("a hashed secret in dfs.conf authenticates like the password it came from") {
  Cluster cluster;
  WriteFile(cluster.server_conf(),
            "Alice " + HashedSecret("Alice", "SimplePassword") + "\nBob BobPassword\n");
  for (int i = 0; i < cluster.size(); ++i) cluster.Restart(i);
  auto alice = MakeClient(cluster);
  REQUIRE(alice->Ping().ok());
  REQUIRE(PutBytes(*alice, "h.txt", "hashed").ok());
  CHECK(*GetBytes(*alice, "h.txt") == "hashed");
  CHECK(MakeClient(cluster, "Alice", "wrong")->Ping().code() == Code::kAuthFailed);
}

}  // namespace
}  // namespace dfs::testing
