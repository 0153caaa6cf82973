#include "common/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/error.h"

namespace cangen {

int (*syncDirectoryForTest)(int fd) = ::fsync;

namespace {

[[noreturn]] void ioError(const std::string& what, const std::string& path) {
  throw Error(ErrorCode::Io, "Could not " + what + " " + path + ": " + std::strerror(errno));
}

void writeAll(int fd, const uint8_t* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ioError("write", path);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

struct Split {
  std::string dir;
  std::string name;
};

Split splitPath(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

bool allDigits(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// The pid in "<name>.tmp-<pid>-<n>", or -1 when `entry` is not such a name.
long temporaryOwner(const std::string& entry, const std::string& name) {
  const std::string prefix = name + ".tmp-";
  if (entry.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string rest = entry.substr(prefix.size());
  const size_t dash = rest.find('-');
  if (dash == std::string::npos || !allDigits(rest.substr(0, dash)) || !allDigits(rest.substr(dash + 1))) return -1;
  return std::stol(rest.substr(0, dash));
}

}  // namespace

size_t removeStaleTemporaries(const std::string& path) {
  const Split where = splitPath(path);
  DIR* dir = ::opendir(where.dir.c_str());
  if (dir == nullptr) return 0;
  size_t removed = 0;
  const time_t now = std::time(nullptr);
  while (const dirent* entry = ::readdir(dir)) {
    const long pid = temporaryOwner(entry->d_name, where.name);
    if (pid < 0) continue;
    const std::string full = (where.dir == "/" ? "/" : where.dir + "/") + entry->d_name;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const bool old = now - st.st_mtime > kStaleTemporaryAgeSeconds;
    const bool ownerGone = pid != ::getpid() && (pid > INT32_MAX || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH));
    if ((old || ownerGone) && ::unlink(full.c_str()) == 0) ++removed;
  }
  ::closedir(dir);
  return removed;
}

void replaceFileAtomically(const std::string& path, const uint8_t* data, size_t size) {
  removeStaleTemporaries(path);
  static std::atomic<uint64_t> counter{0};
  const std::string temp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) ioError("create", temp);
  try {
    writeAll(fd, data, size, temp);
    if (::fsync(fd) != 0) ioError("fsync", temp);
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) ioError("close", temp);
    if (::rename(temp.c_str(), path.c_str()) != 0) ioError("rename " + temp + " to", path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  const std::string dir = splitPath(path).dir;
  const int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) {
    throw Error(ErrorCode::Io, "Saved " + path + " but could not open its directory to make the rename durable: " +
                                   std::strerror(errno));
  }
  const int synced = syncDirectoryForTest(dirFd);
  const int syncErrno = errno;
  ::close(dirFd);
  // EINVAL: a file system that cannot sync directories (nothing to make durable there).
  if (synced != 0 && syncErrno != EINVAL) {
    throw Error(ErrorCode::Io, "Saved " + path + " but could not fsync its directory " + dir +
                                   " (the new file may not survive a crash or power loss): " + std::strerror(syncErrno));
  }
}

}  // namespace cangen
