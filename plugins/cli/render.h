// How the CLI shows a snapshot: an aligned table for people, one JSON object for scripts.
#ifndef TCPSTATES_PLUGINS_CLI_RENDER_H_
#define TCPSTATES_PLUGINS_CLI_RENDER_H_

#include <string>

#include "common/snapshot.h"

namespace tcpstates::cli {

// The five headline metrics, then every state by family, then source and timing.
std::string RenderTable(const Snapshot& snapshot);

// {"tcp_connections":N, ..., "states":{"ipv4":{...},"ipv6":{...}}, "source":..., ...}
std::string RenderJson(const Snapshot& snapshot);

}  // namespace tcpstates::cli

#endif  // TCPSTATES_PLUGINS_CLI_RENDER_H_
