// Unit tests of shared/config/config.h: dfc.conf, dfs.conf and HOST:PORT parsing.
#include "shared/config/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace dfs {
namespace {

// A temporary file removed when the test ends, pass or fail.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/dfs_config_test_XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path_ = tmpl;
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_CASE("parses the classic dfc.conf") {
  auto cfg = ParseClientConfig(
      "Server DFS1 127.0.0.1:10001\n"
      "Server DFS2 127.0.0.1:10002\n"
      "Server DFS3 127.0.0.1:10003\n"
      "Server DFS4 127.0.0.1:10004\n"
      "Username: Alice\n"
      "Password: SimplePassword\n",
      "dfc.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->servers.size() == 4);
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(cfg->servers[i].name == "DFS" + std::to_string(i + 1));
    CHECK(cfg->servers[i].host == "127.0.0.1");
    CHECK(cfg->servers[i].port == 10001 + i);
  }
  CHECK(cfg->username == "Alice");
  CHECK(cfg->password == "SimplePassword");
}

TEST_CASE("accepts Username and Password with or without the colon") {
  struct Case {
    std::string_view user_line;
    std::string_view password_line;
  };
  const Case cases[] = {
      {"Username: Alice", "Password: SimplePassword"},
      {"Username Alice", "Password SimplePassword"},
      {"Username:   Alice  ", "Password:\tSimplePassword\t"},
      {"Username: Alice", "Password SimplePassword"},
      {"Username Alice", "Password: SimplePassword"},
      {"username: Alice", "PASSWORD: SimplePassword"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.user_line);
    CAPTURE(c.password_line);
    std::string text = "Server DFS1 127.0.0.1:10001\n" + std::string(c.user_line) + "\n" +
                       std::string(c.password_line) + "\n";
    auto cfg = ParseClientConfig(text, "dfc.conf");
    REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
    CHECK(cfg->username == "Alice");
    CHECK(cfg->password == "SimplePassword");
  }
}

TEST_CASE("skips comments and blank lines but keeps a '#' inside a token") {
  auto cfg = ParseClientConfig(
      "# dfc.conf for Alice\n"
      "\n"
      "   \t  \n"
      "   # an indented comment\n"
      "Server DFS1 127.0.0.1:10001   # the first server\n"
      "Server DFS2 127.0.0.1:10002\t# a comment after a tab\n"
      "Username: Alice#1\n"
      "Password: pa#ss # the password is pa#ss\n"
      "#Server DFS3 127.0.0.1:10003\n",
      "dfc.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  CHECK(cfg->servers.size() == 2);
  CHECK(cfg->username == "Alice#1");
  CHECK(cfg->password == "pa#ss");
}

TEST_CASE("takes the rest of the Password line, trimmed, as the password") {
  auto cfg = ParseClientConfig("Server A h:1\nUsername: u\nPassword:   two  words \n", "c");
  REQUIRE(cfg.ok());
  CHECK(cfg->password == "two  words");
}

TEST_CASE("accepts CRLF line endings and a last line without a newline") {
  auto cfg =
      ParseClientConfig("Server DFS1 h:1\r\nUsername: Alice\r\nPassword: secret", "dfc.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  CHECK(cfg->servers[0].port == 1);
  CHECK(cfg->username == "Alice");
  CHECK(cfg->password == "secret");
}

TEST_CASE("parses IPv4, IPv6 and host name server addresses") {
  auto cfg = ParseClientConfig(
      "Server DFS1 127.0.0.1:10001\n"
      "Server DFS2 [::1]:10002\n"
      "Server DFS3 localhost:1\n"
      "Server DFS4 dfs4.example.com:65535\n"
      "Server DFS5 [fe80::1:2]:443\n"
      "Username: Alice\nPassword: x\n",
      "dfc.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  const std::vector<std::pair<std::string, uint16_t>> want = {{"127.0.0.1", 10001},
                                                              {"::1", 10002},
                                                              {"localhost", 1},
                                                              {"dfs4.example.com", 65535},
                                                              {"fe80::1:2", 443}};
  REQUIRE(cfg->servers.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(cfg->servers[i].host == want[i].first);
    CHECK(cfg->servers[i].port == want[i].second);
  }
}

TEST_CASE("parses HOST:PORT and [IPv6]:PORT") {
  struct Case {
    std::string_view text;
    std::string_view host;
    uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:10001", "127.0.0.1", 10001},       {"[::1]:1", "::1", 1},
      {"[2001:db8::7]:65535", "2001:db8::7", 65535}, {"localhost:80", "localhost", 80},
      {"a.b-c.example:8080", "a.b-c.example", 8080},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto a = ParseHostPort(c.text);
    REQUIRE_MESSAGE(a.ok(), a.status().ToString());
    CHECK(a->host == c.host);
    CHECK(a->port == c.port);
  }
}

TEST_CASE("refuses a malformed HOST:PORT") {
  const std::string cases[] = {
      "",         "localhost", ":80",     "host:",    "host:0",   "host:65536", "host:99999999999",
      "host:abc", "host:80x",  "host:-1", "host:+80", "host: 80", "[::1]",      "[::1]80",
      "[::1:80",  "[::1]:",    "[::1]:0", "[]:80",
  };
  for (const std::string& text : cases) {
    CAPTURE(text);
    auto a = ParseHostPort(text);
    REQUIRE_FALSE(a.ok());
    CHECK(a.status().code() == Code::kInvalidArgument);
  }
}

// Found by fuzzing (tests/fuzz/regressions/config): such hosts were taken,
// split at a guessed colon, and printed back as another address.
TEST_CASE("refuses a host with a colon outside brackets or a bracket inside") {
  const std::string cases[] = {"::1:80", "fe80::1", "327.0.0:2]:4.1:10000", "a]:b:80", "[[x]:1",
                               "a[b:1",  "[a[b]:1"};
  for (const std::string& text : cases) {
    CAPTURE(text);
    auto a = ParseHostPort(text);
    REQUIRE_FALSE(a.ok());
    CHECK(a.status().code() == Code::kInvalidArgument);
  }
  auto v6 = ParseHostPort("[fe80::1]:80");
  REQUIRE(v6.ok());
  CHECK(v6->host == "fe80::1");
}

TEST_CASE("names the file and line of every bad dfc.conf line") {
  const std::string ok_tail = "Username: Alice\nPassword: pw\n";
  struct Case {
    std::string_view what;
    std::string text;
    int line;
    std::string_view hint;  // a part of the message after "dfc.conf:LINE: "
  };
  const Case cases[] = {
      {"unknown key", "Server DFS1 h:1\n# comment\nPort 10\n" + ok_tail, 3, "unknown key 'Port'"},
      {"unknown key with colon", "Server DFS1 h:1\nUser: Alice\n" + ok_tail, 2,
       "unknown key 'User'"},
      {"Server without address", "Server DFS1\n" + ok_tail, 1, "expected 'Server NAME HOST:PORT'"},
      {"Server alone", "\nServer\n" + ok_tail, 2, "expected 'Server NAME HOST:PORT'"},
      {"Server with an extra token", "Server DFS1 h:1 extra\n" + ok_tail, 1,
       "expected 'Server NAME HOST:PORT'"},
      {"Server without port", "Server DFS1 localhost\n" + ok_tail, 1, "expected HOST:PORT"},
      {"port 0", "Server DFS1 h:1\nServer DFS2 h:0\n" + ok_tail, 2, "bad port '0'"},
      {"port 65536", "Server DFS1 h:65536\n" + ok_tail, 1, "bad port '65536'"},
      {"port abc", "Server DFS1 h:abc\n" + ok_tail, 1, "bad port 'abc'"},
      {"duplicate server name", "Server DFS1 h:1\nServer DFS2 h:2\nServer DFS1 h:3\n" + ok_tail, 3,
       "duplicate server name 'DFS1'"},
      {"Username twice", "Server DFS1 h:1\nUsername: Alice\nUsername: Bob\nPassword: pw\n", 3,
       "Username given twice"},
      {"Username twice, same name", "Server A h:1\nUsername: Al\nPassword: pw\nUsername Al\n", 4,
       "Username given twice"},
      {"Password twice", "Server DFS1 h:1\nPassword: a\nUsername: Alice\nPassword: b\n", 4,
       "Password given twice"},
      {"Username without a name", "Server DFS1 h:1\nUsername:\nPassword: pw\n", 2,
       "expected 'Username: NAME'"},
      {"Username with two names", "Server DFS1 h:1\nUsername: Al ice\nPassword: pw\n", 2,
       "expected 'Username: NAME'"},
      {"username starting with a dot", "Server DFS1 h:1\nUsername: .alice\nPassword: pw\n", 2,
       "bad username"},
      {"username dot-dot", "Server DFS1 h:1\nUsername: ..\nPassword: pw\n", 2, "bad username"},
      {"username with a slash", "Server DFS1 h:1\nUsername: a/b\nPassword: pw\n", 2,
       "bad username"},
      {"Password without a secret", "Server DFS1 h:1\nUsername: Alice\nPassword:  # none\n", 3,
       "expected 'Password: SECRET'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto cfg = ParseClientConfig(c.text, "dfc.conf");
    REQUIRE_FALSE(cfg.ok());
    CHECK(cfg.status().code() == Code::kInvalidArgument);
    const std::string& msg = cfg.status().message();
    CAPTURE(msg);
    CHECK(msg.rfind("dfc.conf:" + std::to_string(c.line) + ": ", 0) == 0);
    CHECK(msg.find(c.hint) != std::string::npos);
  }
}

TEST_CASE("refuses a dfc.conf without servers, Username or Password") {
  std::string many_servers;
  for (int i = 1; i <= 65; ++i)
    many_servers += "Server S" + std::to_string(i) + " h:" + std::to_string(i) + "\n";
  struct Case {
    std::string_view what;
    std::string text;
    std::string_view message;
  };
  const Case cases[] = {
      {"empty file", "", "dfc.conf: no 'Server NAME HOST:PORT' line"},
      {"only comments", "# nothing\n\n", "dfc.conf: no 'Server NAME HOST:PORT' line"},
      {"no servers", "Username: Alice\nPassword: pw\n",
       "dfc.conf: no 'Server NAME HOST:PORT' line"},
      {"no Username", "Server DFS1 h:1\nPassword: pw\n", "dfc.conf: missing 'Username:' line"},
      {"no Password", "Server DFS1 h:1\nUsername: Alice\n", "dfc.conf: missing 'Password:' line"},
      {"65 servers", many_servers + "Username: A\nPassword: p\n", "dfc.conf: at most 64 servers"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto cfg = ParseClientConfig(c.text, "dfc.conf");
    REQUIRE_FALSE(cfg.ok());
    CHECK(cfg.status().code() == Code::kInvalidArgument);
    CHECK(cfg.status().message() == c.message);
  }
}

TEST_CASE("parses dfs.conf user lines with comments and blank lines") {
  auto cfg = ParseServerConfig(
      "# users of this server\n"
      "Alice SimplePassword\n"
      "\n"
      "  Bob   pa#ss   # Bob's password is pa#ss\n"
      "Carol $dfs2$00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
      "dfs.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  const std::map<std::string, std::string> want = {
      {"Alice", "SimplePassword"},
      {"Bob", "pa#ss"},
      {"Carol", "$dfs2$00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
  };
  CHECK(cfg->users == want);
  CHECK(cfg->quotas.empty());
}

TEST_CASE("parses a quota=SIZE option on a dfs.conf line") {
  auto cfg = ParseServerConfig(
      "Alice pw quota=10G\n"
      "Bob pw\n"
      "Carol $dfs2$00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
      "quota=512M   # half a gig\n"
      "Dave pw quota=1000\n",
      "dfs.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  CHECK(cfg->users.size() == 4);
  CHECK(cfg->users.at("Alice") == "pw");
  const std::map<std::string, uint64_t> want = {
      {"Alice", uint64_t{10} << 30}, {"Carol", uint64_t{512} << 20}, {"Dave", 1000}};
  CHECK(cfg->quotas == want);
}

TEST_CASE("parses sizes as bytes or with K, M, G, T (powers of 1024)") {
  struct Case {
    std::string_view text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0", 0},
      {"1", 1},
      {"4096", 4096},
      {"1K", 1024},
      {"1k", 1024},
      {"64M", uint64_t{64} << 20},
      {"10G", uint64_t{10} << 30},
      {"2T", uint64_t{2} << 40},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183G", uint64_t{17179869183} << 30},  // the largest G that fits
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto size = ParseSize(c.text);
    REQUIRE_MESSAGE(size.ok(), size.status().ToString());
    CHECK(*size == c.bytes);
  }
  for (std::string_view bad : {"", "G", "10X", "10GB", "10 G", " 10", "-1", "+1", "1.5G", "0x10",
                               "18446744073709551616", "17179869184G", "16777216T", "1G1"}) {
    CAPTURE(bad);
    auto size = ParseSize(bad);
    REQUIRE_FALSE(size.ok());
    CHECK(size.status().code() == Code::kInvalidArgument);
    CHECK(size.status().message().find("bad size") != std::string::npos);
  }
}

TEST_CASE("recognizes a fingerprint as SHA256: and 43 base64 characters") {
  const std::string b43(43, 'A');
  CHECK(IsFingerprint("SHA256:" + b43));
  CHECK(IsFingerprint("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"));
  CHECK_FALSE(IsFingerprint(""));
  CHECK_FALSE(IsFingerprint("SHA256:"));
  CHECK_FALSE(IsFingerprint(b43));                                     // no prefix
  CHECK_FALSE(IsFingerprint("sha256:" + b43));                         // prefix spelled otherwise
  CHECK_FALSE(IsFingerprint("MD5:" + b43));                            // another digest
  CHECK_FALSE(IsFingerprint("SHA256:" + std::string(42, 'A')));        // one short
  CHECK_FALSE(IsFingerprint("SHA256:" + std::string(44, 'A')));        // one long
  CHECK_FALSE(IsFingerprint("SHA256:" + std::string(42, 'A') + "="));  // padding
  CHECK_FALSE(IsFingerprint("SHA256:" + std::string(42, 'A') + "-"));  // base64url
  CHECK_FALSE(IsFingerprint("SHA256:" + std::string(42, 'A') + "_"));
  CHECK_FALSE(IsFingerprint("SHA256:" + std::string(42, 'A') + " "));
}

TEST_CASE("pins server keys with Fingerprint lines and reads KnownServers") {
  const std::string print1 = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
  const std::string print3 = "SHA256:" + std::string(43, 'z');
  auto cfg = ParseClientConfig("Fingerprint DFS3 " + print3 +
                                   "   # before its Server line is fine\n"
                                   "Server DFS1 127.0.0.1:10001\n"
                                   "Server DFS2 127.0.0.1:10002\n"
                                   "Server DFS3 127.0.0.1:10003\n"
                                   "fingerprint DFS1 " +
                                   print1 +
                                   "\n"
                                   "KnownServers /home/alice/.config/dfs/known servers\n"
                                   "Username: Alice\nPassword: pw\n",
                               "dfc.conf");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->servers.size() == 3);
  CHECK(cfg->servers[0].fingerprint == print1);
  CHECK(cfg->servers[1].fingerprint.empty());
  CHECK(cfg->servers[2].fingerprint == print3);
  CHECK(cfg->known_servers == "/home/alice/.config/dfs/known servers");

  auto plain = ParseClientConfig("Server DFS1 h:1\nUsername: A\nPassword: p\n", "dfc.conf");
  REQUIRE(plain.ok());
  CHECK(plain->servers[0].fingerprint.empty());
  CHECK(plain->known_servers.empty());
}

TEST_CASE("names the line of a bad Fingerprint or KnownServers line") {
  const std::string head = "Server DFS1 h:1\nServer DFS2 h:2\nUsername: Alice\nPassword: pw\n";
  const std::string good = "SHA256:" + std::string(43, 'Q');
  struct Case {
    std::string_view what;
    std::string text;
    int line;
    std::string_view hint;
  };
  const Case cases[] = {
      {"bad fingerprint", head + "Fingerprint DFS1 SHA256:tooshort\n", 5,
       "bad fingerprint 'SHA256:tooshort'"},
      {"hex instead of base64", head + "Fingerprint DFS1 " + std::string(64, 'a') + "\n", 5,
       "bad fingerprint"},
      {"fingerprint without a name", head + "Fingerprint " + good + "\n", 5,
       "expected 'Fingerprint NAME SHA256:...'"},
      {"fingerprint alone", head + "Fingerprint\n", 5, "expected 'Fingerprint NAME SHA256:...'"},
      {"fingerprint with an extra token", head + "Fingerprint DFS1 " + good + " x\n", 5,
       "expected 'Fingerprint NAME SHA256:...'"},
      {"unknown server name", head + "Fingerprint DFS9 " + good + "\n", 5,
       "Fingerprint for unknown server 'DFS9'"},
      {"server names are exact", head + "Fingerprint dfs1 " + good + "\n", 5,
       "Fingerprint for unknown server 'dfs1'"},
      {"fingerprint twice",
       head + "Fingerprint DFS2 " + good + "\n# c\nFingerprint DFS2 " + good + "\n", 7,
       "Fingerprint of 'DFS2' given twice"},
      {"KnownServers twice", head + "KnownServers /a\nKnownServers /b\n", 6,
       "KnownServers given twice"},
      {"KnownServers without a path", head + "KnownServers   # none\n", 5,
       "expected 'KnownServers PATH'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto cfg = ParseClientConfig(c.text, "dfc.conf");
    REQUIRE_FALSE(cfg.ok());
    CHECK(cfg.status().code() == Code::kInvalidArgument);
    const std::string& msg = cfg.status().message();
    CAPTURE(msg);
    CHECK(msg.rfind("dfc.conf:" + std::to_string(c.line) + ": ", 0) == 0);
    CHECK(msg.find(c.hint) != std::string::npos);
  }
}

TEST_CASE("names the file and line of every bad dfs.conf line") {
  struct Case {
    std::string_view what;
    std::string text;
    int line;
    std::string_view hint;
  };
  const Case cases[] = {
      {"one token", "Alice pw\nBob\n", 2, "expected 'USERNAME PASSWORD [quota=SIZE]'"},
      {"three tokens", "# c\n\nAlice pw extra\n", 3,
       "unknown option 'extra' (expected quota=SIZE)"},
      {"four tokens", "Alice pw quota=1G extra\n", 1, "expected 'USERNAME PASSWORD [quota=SIZE]'"},
      {"quota without a size", "Alice pw quota=\n", 1, "bad size ''"},
      {"quota with a bad suffix", "Alice pw\nBob pw quota=10X\n", 2, "bad size '10X'"},
      {"quota with a unit word", "Alice pw quota=10GB\n", 1, "bad size '10GB'"},
      {"negative quota", "Alice pw quota=-1\n", 1, "bad size '-1'"},
      {"fractional quota", "Alice pw quota=1.5G\n", 1, "bad size '1.5G'"},
      {"quota beyond 64 bits", "Alice pw quota=99999999999999999999\n", 1, "bad size"},
      {"quota overflowing its suffix", "Alice pw quota=17179869184G\n", 1, "bad size"},
      {"quota spelled otherwise", "Alice pw Quota=1G\n", 1, "unknown option 'Quota=1G'"},
      {"duplicate user", "Alice pw\nBob pw\nAlice other\n", 3, "user 'Alice' listed twice"},
      {"username starting with a dot", ".alice pw\n", 1, "bad username"},
      {"username dot-dot", "Alice pw\n.. pw\n", 2, "bad username"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto cfg = ParseServerConfig(c.text, "dfs.conf");
    REQUIRE_FALSE(cfg.ok());
    CHECK(cfg.status().code() == Code::kInvalidArgument);
    const std::string& msg = cfg.status().message();
    CAPTURE(msg);
    CHECK(msg.rfind("dfs.conf:" + std::to_string(c.line) + ": ", 0) == 0);
    CHECK(msg.find(c.hint) != std::string::npos);
  }
}

TEST_CASE("refuses a dfs.conf without users") {
  for (std::string text : {"", "\n\n", "# only a comment\n   # another\n"}) {
    CAPTURE(text);
    auto cfg = ParseServerConfig(text, "dfs.conf");
    REQUIRE_FALSE(cfg.ok());
    CHECK(cfg.status().code() == Code::kInvalidArgument);
    CHECK(cfg.status().message() == "dfs.conf: no users (expected 'USERNAME PASSWORD' lines)");
  }
}

TEST_CASE("loads config files and names the path in errors") {
  TempFile good("Server DFS1 127.0.0.1:10001\nUsername: Alice\nPassword: pw\n");
  auto client = LoadClientConfig(good.path());
  REQUIRE_MESSAGE(client.ok(), client.status().ToString());
  CHECK(client->username == "Alice");

  TempFile users("Alice pw\n");
  auto server = LoadServerConfig(users.path());
  REQUIRE_MESSAGE(server.ok(), server.status().ToString());
  CHECK(server->users.at("Alice") == "pw");

  TempFile bad("Server DFS1 127.0.0.1:10001\nColor: blue\n");
  auto bad_cfg = LoadClientConfig(bad.path());
  REQUIRE_FALSE(bad_cfg.ok());
  CHECK(bad_cfg.status().message().rfind(bad.path() + ":2: ", 0) == 0);
}

TEST_CASE("reports a missing config file as kNotFound with its path") {
  const std::string path = "/nonexistent-dfs-dir/dfc.conf";
  auto client = LoadClientConfig(path);
  REQUIRE_FALSE(client.ok());
  CHECK(client.status().code() == Code::kNotFound);
  CHECK(client.status().message().find(path) != std::string::npos);

  auto server = LoadServerConfig(path);
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().code() == Code::kNotFound);
  CHECK(server.status().message().find(path) != std::string::npos);
}

TEST_CASE("refuses a file larger than the ReadSmallFile limit") {
  TempFile f(std::string(100, 'x'));
  auto all = ReadSmallFile(f.path(), 100);
  REQUIRE(all.ok());
  CHECK(*all == std::string(100, 'x'));
  auto limited = ReadSmallFile(f.path(), 99);
  REQUIRE_FALSE(limited.ok());
  CHECK(limited.status().code() == Code::kTooLarge);
  CHECK(limited.status().message().find(f.path()) != std::string::npos);
}

}  // namespace
}  // namespace dfs
