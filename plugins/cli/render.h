// How the CLI shows a snapshot: an aligned table for people, one JSON object for scripts.
#ifndef TCPSTATES_PLUGINS_CLI_RENDER_H_
#define TCPSTATES_PLUGINS_CLI_RENDER_H_

#include <string>

#include "common/collection/collector.h"
#include "common/collection/namespaces_collector.h"

namespace tcpstates::cli {

// The five headline metrics, every state by family, the "why" section when the collection
// has a diagnosis, then source and timing. Names from outside (processes, units) are shown
// with every byte that is not printable ASCII escaped (\xNN), so a hostile name cannot move
// the cursor, retitle the terminal or fake a line.
std::string RenderTable(const Collection& collection);

// One line: {"tcp_connections":N, ..., "states":{"ipv4":{...},"ipv6":{...}},
// "totals":{"established":N,...} (every state over both families),
// "close_wait_owners":[...], ..., "source":..., ...}. Strings are valid JSON whatever their
// bytes, and safe on a terminal: C0 and C1 control characters and DEL are \u-escaped, and
// bytes that are not UTF-8 become \u00XX.
std::string RenderJson(const Collection& collection);

// --all-namespaces: one row per namespace (the five headline metrics, netns, pod and
// container), most CLOSE_WAIT first, then most sockets; the namespaces beyond the cap summed
// as "other"; then the CLOSE_WAIT owners of each namespace that has CLOSE_WAIT sockets.
std::string RenderNamespacesTable(const NamespacesCollection& collection);

// {"namespaces":[{"netns":...,"pod":...,"container":...,"inode":N, <RenderJson's fields>}
// or {..., "error":"..."} for one that could not be read], "other":{...},
// "other_namespaces":N, "processes_unidentified":N}
std::string RenderNamespacesJson(const NamespacesCollection& collection);

}  // namespace tcpstates::cli

#endif  // TCPSTATES_PLUGINS_CLI_RENDER_H_
