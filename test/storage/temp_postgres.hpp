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
  bool running() const { return running_; }

  // key=value conninfo for `dbname` as user postgres.
  std::string url(const std::string& dbname) const;
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
