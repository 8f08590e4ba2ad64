// How the CLI shows a snapshot: an aligned table for people, one JSON object for scripts.
#ifndef TCPSTATES_PLUGINS_CLI_RENDER_H_
#define TCPSTATES_PLUGINS_CLI_RENDER_H_

#include <string>

#include "common/diagnosis/diagnosis.h"
#include "common/model/snapshot.h"

namespace tcpstates::cli {

// The five headline metrics, every state by family, the "why" section when `diagnosis` is
// given, then source and timing. Process names are shown with unprintable bytes escaped
// (\xNN), so a hostile name cannot move the cursor or fake a line.
std::string RenderTable(const Snapshot& snapshot, const Diagnosis* diagnosis = nullptr);

// One line: {"tcp_connections":N, ..., "states":{"ipv4":{...},"ipv6":{...}},
// "totals":{"established":N,...} (every state over both families),
// "close_wait_owners":[...], ..., "source":..., ...}. Strings are valid JSON whatever their
// bytes: control characters are \u-escaped and bytes that are not UTF-8 become \u00XX.
std::string RenderJson(const Snapshot& snapshot, const Diagnosis* diagnosis = nullptr);

}  // namespace tcpstates::cli

#endif  // TCPSTATES_PLUGINS_CLI_RENDER_H_
