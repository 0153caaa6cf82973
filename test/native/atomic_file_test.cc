// Atomic file replacement: stale temporary files of killed saves are removed on the next save or
// load of the same path (only those of dead processes, or old ones), and a failing directory
// fsync is reported as ERR_IO instead of being ignored.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "ann/ad_index.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "index_file_helpers.h"

namespace cangen::testing {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void touch(const std::string& path, long ageSeconds = 0) {
  std::ofstream(path) << "partial";
  if (ageSeconds > 0) {
    struct timeval times[2];
    ::gettimeofday(&times[0], nullptr);
    times[0].tv_sec -= ageSeconds;
    times[1] = times[0];
    ::utimes(path.c_str(), times);
  }
}

// A pid that belonged to a process which has exited and been reaped.
pid_t deadPid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

std::unique_ptr<AdIndex> smallIndex() { return buildIndex(allKindCases(8)[0], 20, 1); }

TEST(AtomicFile, SaveAndLoadRemoveTemporariesOfDeadProcessesOnly) {
  TempDir dir;
  const std::string path = dir.path() + "/ads.cgn";
  const std::string dead = path + ".tmp-" + std::to_string(deadPid()) + "-3";
  const std::string liveOther = path + ".tmp-1-0";  // pid 1 is alive
  const std::string liveOld = path + ".tmp-1-1";
  const std::string mine = path + ".tmp-" + std::to_string(::getpid()) + "-77";  // a save in progress here
  const std::string otherFile = path + ".tmp-notapid-1";
  const std::string otherTarget = dir.path() + "/other.cgn.tmp-" + std::to_string(deadPid()) + "-0";
  for (const std::string& p : {dead, liveOther, mine, otherFile, otherTarget}) touch(p);
  touch(liveOld, kStaleTemporaryAgeSeconds + 60);

  smallIndex()->save(path);
  EXPECT_FALSE(exists(dead)) << "a dead process's temporary is removed by save";
  EXPECT_FALSE(exists(liveOld)) << "one older than the stated age is removed even if its pid is in use";
  EXPECT_TRUE(exists(liveOther));
  EXPECT_TRUE(exists(mine));
  EXPECT_TRUE(exists(otherFile)) << "names that are not <path>.tmp-<pid>-<n> are left alone";
  EXPECT_TRUE(exists(otherTarget)) << "temporaries of other targets are left alone";

  const std::string deadAgain = path + ".tmp-" + std::to_string(deadPid()) + "-9";
  touch(deadAgain);
  AdIndex::load(path, 1);
  EXPECT_FALSE(exists(deadAgain)) << "load removes them too";
  EXPECT_TRUE(exists(liveOther));
}

int failingSync(int) {
  errno = EIO;
  return -1;
}

TEST(AtomicFile, DirectoryFsyncFailureIsReportedAsIo) {
  TempDir dir;
  const std::string path = dir.path() + "/ads.cgn";
  auto index = smallIndex();
  syncDirectoryForTest = failingSync;
  try {
    index->save(path);
    ADD_FAILURE() << "the fsync failure was ignored";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Io);
    EXPECT_NE(std::string(e.what()).find("fsync its directory"), std::string::npos) << e.what();
  }
  syncDirectoryForTest = ::fsync;
  EXPECT_EQ(AdIndex::load(path, 1)->size(), index->size()) << "the file itself was written and renamed";
}

TEST(AtomicFile, UnwritableTargetIsIoAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.path() + "/missing-dir/ads.cgn";
  try {
    smallIndex()->save(path);
    ADD_FAILURE() << "saved into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Io);
  }
}

}  // namespace
}  // namespace cangen::testing
