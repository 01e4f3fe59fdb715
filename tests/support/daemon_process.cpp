#include "support/daemon_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace rillflow::e2e {

HttpReply http_get(int port, const std::string& path) {
  HttpReply reply;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return reply;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return reply;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return reply;
  }
  std::string raw;
  char buf[8192];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) raw.append(buf, static_cast<std::size_t>(n));
  close(fd);
  if (raw.rfind("HTTP/1.", 0) != 0) return reply;
  reply.status = std::atoi(raw.c_str() + 9);
  const auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = raw.substr(body + 4);
  return reply;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/rillflow-e2e-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

DaemonProcess::DaemonProcess(const std::string& binary, const std::string& config_path,
                             std::vector<std::string> env)
    : DaemonProcess(std::vector<std::string>{binary, "--config", config_path}, std::move(env)) {}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::vector<std::string> env) {
  const std::string binary = args.at(0);
  static int counter = 0;
  log_path_ = "/tmp/rillflow-e2e-" + std::to_string(getpid()) + "-daemon-" +
              std::to_string(++counter) + ".log";
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data()) != 0)
    pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(10));
  }
  std::remove(log_path_.c_str());
}

std::string DaemonProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int DaemonProcess::port() {
  if (port_ > 0) return port_;
  static const std::regex kServing("serving HTTP on [^ ]+:([0-9]+)");
  eventually(
      [&] {
        std::smatch m;
        const auto text = log();
        if (std::regex_search(text, m, kServing)) port_ = std::stoi(m[1]);
        return port_ > 0 || !running();
      },
      std::chrono::seconds(20));
  return port_;
}

bool DaemonProcess::wait_ready(std::chrono::milliseconds timeout) {
  const int p = port();
  if (p <= 0) return false;
  return eventually([&] { return http_get(p, "/health/ready").status == 200; }, timeout);
}

void DaemonProcess::signal(int sig) const {
  kill(pid_, sig);
}

bool DaemonProcess::running() {
  if (exit_code_ != -3 || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return false;
}

int DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (!eventually([&] { return !running(); }, timeout)) return -2;
  return exit_code_;
}

}  // namespace rillflow::e2e
