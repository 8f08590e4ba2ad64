// Running work on a thread of its own (common/kernel/network_namespace.h): what the work throws
// comes back to the caller - inside collectd, to the plugin's guard - instead of ending the
// process from a thread nobody guards, and nothing is left open behind it.
#include "common/kernel/network_namespace.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <new>
#include <stdexcept>

#include "gtest/gtest.h"

namespace tcpstates {
namespace {

int OpenFds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count - 1;  // the directory's own
}

TEST(RunOnOwnThread, RunsTheWorkOnAnotherThread) {
  const pid_t caller = gettid();
  pid_t worker = caller;
  ASSERT_TRUE(RunOnOwnThread([&] { worker = gettid(); }).ok());
  EXPECT_NE(worker, caller);
}

TEST(RunOnOwnThread, AnExceptionComesBackToTheCaller) {
  EXPECT_THROW(RunOnOwnThread([] { throw std::bad_alloc(); }).IgnoreError(), std::bad_alloc);
  EXPECT_THROW(RunOnOwnThread([] { throw std::runtime_error("x"); }).IgnoreError(),
               std::runtime_error);
}

TEST(RunInNetworkNamespace, AnExceptionComesBackAndTheNamespaceFileIsClosed) {
  if (geteuid() != 0 && std::getenv("CI") == nullptr) GTEST_SKIP() << "needs root (setns)";
  const int before = OpenFds();
  bool ran = false;
  EXPECT_THROW(RunInNetworkNamespace("/proc/self/ns/net",
                                     [&] {
                                       ran = true;
                                       throw std::bad_alloc();
                                     })
                   .IgnoreError(),
               std::bad_alloc);
  EXPECT_TRUE(ran);
  EXPECT_EQ(OpenFds(), before);
  // And without an exception, the work's effects are there when it returns.
  int value = 0;
  ASSERT_TRUE(RunInNetworkNamespace("/proc/self/ns/net", [&] { value = 7; }).ok());
  EXPECT_EQ(value, 7);
  EXPECT_EQ(OpenFds(), before);
}

TEST(RunInNetworkNamespace, AMissingNamespaceIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(RunInNetworkNamespace("/proc/self/ns/no-such", [] {})));
}

}  // namespace
}  // namespace tcpstates
