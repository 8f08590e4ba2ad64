// absl::Status from an errno value, keeping the errno's canonical code so callers can tell
// "not there" (NotFound) and "not allowed" (PermissionDenied) from other failures.
#ifndef TCPSTATES_COMMON_KERNEL_POSIX_ERROR_H_
#define TCPSTATES_COMMON_KERNEL_POSIX_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tcpstates {

// "<what>: <strerror> (errno N)" with absl::ErrnoToStatusCode(error_number).
absl::Status PosixError(int error_number, absl::string_view what);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_POSIX_ERROR_H_
