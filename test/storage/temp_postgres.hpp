#pragma once
// A private PostgreSQL server for one test run: initdb in a temp dir, listening on a free port of
// 127.0.0.1, trust auth, no unix socket. The destructor stops it and deletes the dir; a guardian
// child process does the same if the test binary dies without unwinding (crash, SIGKILL).
#include <sys/types.h>
#include <filesystem>
#include <string>

namespace test {

class TempPostgres {
 public:
  TempPostgres();  // initdb + start; throws std::runtime_error with the tool's output on failure
  ~TempPostgres();
  TempPostgres(const TempPostgres&) = delete;
  TempPostgres& operator=(const TempPostgres&) = delete;

  void start();
  void stop();
  void restart();  // same port, same data dir: every open session is gone afterwards
  bool running() const { return running_; }

  // SIGSTOP / SIGCONT the postmaster and all its children: a server that hangs without closing
  // anything, like a frozen VM or a network black hole (the kernel still answers TCP). thaw() is
  // harmless on a server that is not frozen.
  void freeze();
  void thaw();

  // key=value conninfo for `dbname` as user postgres.
  std::string url(const std::string& dbname) const;
  // The same as a postgresql:// URI.
  std::string uri(const std::string& dbname) const;
  void create_database(const std::string& dbname);

 private:
  void spawn_guardian();

  std::filesystem::path dir_;
  std::filesystem::path data_;
  int port_ = 0;
  bool running_ = false;
  pid_t guardian_ = -1;
  int guardian_fd_ = -1;  // closing it tells the guardian to clean up
};

}  // namespace test
