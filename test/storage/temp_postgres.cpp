#include "temp_postgres.hpp"

#include <pqxx/connection>
#include <pqxx/nontransaction>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace test {
namespace {

namespace fs = std::filesystem;

std::string bindir() {
  if (const char* env = std::getenv("LLMGW_PG_BINDIR")) return env;
  for (const char* v : {"17", "16", "15", "14", "13"}) {
    fs::path p = fs::path("/usr/lib/postgresql") / v / "bin";
    if (fs::exists(p / "pg_ctl")) return p.string();
  }
  return "";  // rely on PATH
}

std::string tool(const std::string& name) {
  const std::string dir = bindir();
  return dir.empty() ? name : dir + "/" + name;
}

// PostgreSQL refuses to run as root: run its tools as the postgres user then.
std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  std::vector<std::string> out{"runuser", "-u", "postgres", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// Runs argv with stdout+stderr appended to `log`; returns the exit status (-1 if it did not exit).
int run_command(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void must_run(const std::vector<std::string>& argv, const fs::path& log) {
  if (run_command(argv, log) != 0) {
    throw std::runtime_error("command failed: " + argv.front() + " ... (" + argv.back() + ")\n" + slurp(log));
  }
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

pid_t postmaster_pid(const fs::path& data) {
  std::ifstream in(data / "postmaster.pid");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// The direct children of `parent` (a PostgreSQL backend is always one of the postmaster's).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold blanks, so parse after ')'.
    const std::string stat = slurp(entry.path() / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// Freezing stops the postmaster first, so it forks no new backend; a fork already under way shows
// up in the second pass. Thawing does the children first, so none finds a stopped parent.
void signal_server(const fs::path& data, int sig) {
  const pid_t postmaster = postmaster_pid(data);
  if (postmaster <= 0) return;
  if (sig == SIGSTOP) ::kill(postmaster, sig);
  for (int pass = 0; pass < 2; ++pass) {
    for (const pid_t child : children_of(postmaster)) ::kill(child, sig);
  }
  if (sig != SIGSTOP) ::kill(postmaster, sig);
}

}  // namespace

TempPostgres::TempPostgres() {
  std::string tmpl = (fs::temp_directory_path() / "llmgw-pg-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  data_ = dir_ / "data";
  if (::geteuid() == 0) {
    const passwd* pg = ::getpwnam("postgres");
    if (pg == nullptr || ::chown(dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) {
      throw std::runtime_error("running as root needs a 'postgres' user to own " + dir_.string());
    }
  }
  spawn_guardian();
  port_ = free_port();
  must_run(as_postgres({tool("initdb"), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D",
                        data_.string()}),
           dir_ / "initdb.log");
  // Appending keeps the file's owner; a throw-away cluster needs no durability.
  std::ofstream conf(data_ / "postgresql.conf", std::ios::app);
  conf << "\nlisten_addresses = '127.0.0.1'\nport = " << port_
       << "\nunix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n"
          "full_page_writes = off\nmax_connections = 50\n";
  conf.close();
  start();
}

TempPostgres::~TempPostgres() {
  try {
    thaw();
    stop();
  } catch (...) {
  }
  if (guardian_fd_ >= 0) {
    ::close(guardian_fd_);  // guardian wakes up, finds the server stopped, removes the dir
    int status = 0;
    ::waitpid(guardian_, &status, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void TempPostgres::spawn_guardian() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[1]);
    char byte;
    while (::read(fds[0], &byte, 1) != 0) {
      // EOF only when every write end is closed: the test process finished or died.
    }
    // The test may have died while initdb / pg_ctl were still running and writing into the dir:
    // keep stopping and deleting for a few seconds until nothing comes back.
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (fs::exists(data_ / "postmaster.pid")) {
        signal_server(data_, SIGCONT);  // a test may have died with the server frozen
        run_command(as_postgres({tool("pg_ctl"), "-D", data_.string(), "-m", "immediate", "-w", "stop"}),
                    "/dev/null");
      }
      std::error_code ec;
      fs::remove_all(dir_, ec);
      ::usleep(500 * 1000);
      if (!fs::exists(dir_)) break;
    }
    ::_exit(0);
  }
  ::close(fds[0]);
  guardian_ = pid;
  guardian_fd_ = fds[1];
}

void TempPostgres::start() {
  if (running_) return;
  must_run(as_postgres({tool("pg_ctl"), "-D", data_.string(), "-l", (dir_ / "server.log").string(), "-w",
                        "-t", "60", "start"}),
           dir_ / "pg_ctl.log");
  running_ = true;
}

void TempPostgres::stop() {
  if (!running_) return;
  must_run(as_postgres({tool("pg_ctl"), "-D", data_.string(), "-m", "fast", "-w", "stop"}),
           dir_ / "pg_ctl.log");
  running_ = false;
}

void TempPostgres::restart() {
  stop();
  start();
}

void TempPostgres::freeze() {
  if (running_) signal_server(data_, SIGSTOP);
}

void TempPostgres::thaw() {
  if (running_) signal_server(data_, SIGCONT);
}

std::string TempPostgres::url(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string TempPostgres::uri(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

void TempPostgres::create_database(const std::string& dbname) {
  pqxx::connection conn(url("postgres"));
  pqxx::nontransaction tx(conn);
  tx.exec("CREATE DATABASE " + tx.quote_name(dbname));
}

}  // namespace test
