// Doing things inside another network namespace without moving the process there.
//
// A network namespace belongs to each thread, not to the process: a short-lived thread can
// enter a namespace (setns), open a netlink socket there - which stays bound to that
// namespace for its whole life - or read that namespace's /proc/sys/net, and end, while the
// rest of the process never leaves its own namespace.
#ifndef TCPSTATES_COMMON_KERNEL_NETWORK_NAMESPACE_H_
#define TCPSTATES_COMMON_KERNEL_NETWORK_NAMESPACE_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tcpstates {

// Runs `work` on a short-lived thread of its own and waits for it: how one thread changes
// namespace (setns, unshare) while the process stays. An exception `work` throws
// (std::bad_alloc) is rethrown in the caller's thread, where the caller's guard catches it,
// instead of ending the process from a thread nobody guards; a thread that cannot be started
// (a tasks limit) is ResourceExhausted.
absl::Status RunOnOwnThread(absl::FunctionRef<void()> work);

// Runs `work` on a thread of its own inside the network namespace at `ns_path` (a
// /proc/PID/ns/net or /run/netns/NAME file), and waits for it. PermissionDenied without
// CAP_SYS_ADMIN (setns); NotFound when the namespace is gone.
absl::Status RunInNetworkNamespace(const std::string& ns_path, absl::FunctionRef<void()> work);

// The inode number that identifies the network namespace at `ns_path` (what
// `readlink /proc/PID/ns/net` shows as net:[INODE]). Needs ptrace-read access to a process
// (another user's: CAP_SYS_PTRACE); a /run/netns file needs nothing.
absl::StatusOr<uint64_t> NetworkNamespaceInode(const std::string& ns_path);

// Sets the loopback interface of the calling thread's network namespace up: a fresh
// namespace (unshare) starts with it down. Needs CAP_NET_ADMIN there.
absl::Status BringLoopbackUp();

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_NETWORK_NAMESPACE_H_
