// Finding and naming network namespaces, on cgroup paths as container runtimes write them and
// on a fake /proc whose ns/net files are plain files (their inode numbers stand for the
// namespaces': hard links are "the same namespace").
#include "common/namespaces/network_namespaces.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcpstates {
namespace {

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kShort = "0123456789ab";

TEST(NameFromCgroup, ContainerRuntimesAndKubernetes) {
  EXPECT_EQ(NameFromCgroup("/system.slice/docker-" + kId + ".scope", 7),
            (NamespaceName{kShort, "", kShort}));
  EXPECT_EQ(NameFromCgroup("/machine.slice/libpod-" + kId + ".scope", 7),
            (NamespaceName{kShort, "", kShort}));
  EXPECT_EQ(NameFromCgroup("/system.slice/crio-" + kId + ".scope", 7),
            (NamespaceName{kShort, "", kShort}));
  // Kubernetes with the systemd driver: the pod UID's dashes became underscores.
  EXPECT_EQ(NameFromCgroup("/kubepods.slice/kubepods-burstable.slice/"
                           "kubepods-burstable-pod1b2c3d4e_0000_4111_8222_333344445555.slice/"
                           "cri-containerd-" +
                               kId + ".scope",
                           7),
            (NamespaceName{kShort, "1b2c3d4e-0000-4111-8222-333344445555", kShort}));
  // ... and with the cgroupfs driver.
  EXPECT_EQ(
      NameFromCgroup("/kubepods/besteffort/pod1b2c3d4e-0000-4111-8222-333344445555/" + kId, 7),
      (NamespaceName{kShort, "1b2c3d4e-0000-4111-8222-333344445555", kShort}));
  EXPECT_EQ(NameFromCgroup("/docker/" + kId, 7), (NamespaceName{kShort, "", kShort}));
}

TEST(NameFromCgroup, UnitElseInode) {
  EXPECT_EQ(NameFromCgroup("/system.slice/nginx.service", 7),
            (NamespaceName{"nginx.service", "", ""}));
  EXPECT_EQ(NameFromCgroup("/", 4026531840), (NamespaceName{"ino-4026531840", "", ""}));
  EXPECT_EQ(NameFromCgroup("", 5), (NamespaceName{"ino-5", "", ""}));
  // Not quite a container id: a unit like any other; "pod" outside kubepods is no pod.
  EXPECT_EQ(NameFromCgroup("/system.slice/docker-" + kId.substr(1) + ".scope", 7).container, "");
  EXPECT_EQ(NameFromCgroup("/user.slice/podman.service", 7).pod, "");
}

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/tcpstates-netns-XXXXXX";
    root_ = mkdtemp(name);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string Write(const std::string& relative, const std::string& text) {
    const std::string path = root_ + "/" + relative;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }
  // Process `pid` in the namespace of `same_as` (a hard link), or a namespace of its own.
  void Process(int pid, const std::string& cgroup, int same_as = 0) {
    Write("proc/" + std::to_string(pid) + "/cgroup", "0::" + cgroup + "\n");
    const std::string ns = root_ + "/proc/" + std::to_string(pid) + "/ns/net";
    std::filesystem::create_directories(std::filesystem::path(ns).parent_path());
    if (same_as == 0) {
      std::ofstream(ns) << "";
    } else {
      std::filesystem::create_hard_link(root_ + "/proc/" + std::to_string(same_as) + "/ns/net", ns);
    }
  }
  std::string root_;
};

TEST_F(FakeProc, OneEntryPerNamespaceHostFirstNamedByIpNetnsThenCgroup) {
  Process(1, "/init.scope");
  Process(200, "/system.slice/docker-" + kId + ".scope");
  Process(150, "/system.slice/docker-" + kId + ".scope", 200);  // same namespace, lower pid
  Process(300, "/system.slice/worker.service");
  Process(400, "/", 1);  // in the host's namespace
  std::filesystem::create_directories(root_ + "/netns");
  std::filesystem::create_hard_link(root_ + "/proc/300/ns/net", root_ + "/netns/blue");
  Write("netns/empty", "");  // an ip netns no process is in
  const NamespaceScan scan = FindNetworkNamespaces(ProcRoot(root_ + "/proc"), root_ + "/netns");
  ASSERT_EQ(scan.namespaces.size(), 4u);
  EXPECT_TRUE(scan.namespaces[0].host);
  EXPECT_EQ(scan.namespaces[0].name.netns, "host");
  EXPECT_EQ(scan.namespaces[0].pid, 1);
  EXPECT_EQ(scan.namespaces[1].name, (NamespaceName{kShort, "", kShort}));
  EXPECT_EQ(scan.namespaces[1].pid, 150);
  EXPECT_EQ(scan.namespaces[1].ns_path, root_ + "/proc/150/ns/net");
  EXPECT_EQ(scan.namespaces[2].name.netns, "blue");
  EXPECT_EQ(scan.namespaces[2].ns_path, root_ + "/netns/blue");
  EXPECT_EQ(scan.namespaces[3].name.netns, "empty");
  EXPECT_EQ(scan.namespaces[3].pid, 0);
  EXPECT_EQ(scan.processes_unidentified, 0);
}

}  // namespace
}  // namespace tcpstates
