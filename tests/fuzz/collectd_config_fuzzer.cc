// libFuzzer target for the collectd plugin's <Plugin tcpstates> handling. The bytes describe
// a config tree as collectd's parser would build it (keys, typed values, nested blocks);
// properties: no crash or leak; an accepted block yields options within their documented
// bounds; a refused one says why, naming a key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "plugins/collectd/plugin_options.h"

namespace {

// Keys the parser knows (so the fuzzer reaches their value checks quickly) and a few it
// does not, in any case.
constexpr const char* kKeys[] = {"Source",
                                 "Counting",
                                 "ReportByFamily",
                                 "ReportListenChange",
                                 "CloseWaitOwners",
                                 "TopOwners",
                                 "ListenPorts",
                                 "MaxListenPorts",
                                 "NotifyVanishedListeners",
                                 "PortPressure",
                                 "source",
                                 "PORTPRESSURE",
                                 "Bogus",
                                 ""};
constexpr const char* kStrings[] = {"auto", "netlink", "proc", "full", "counters",
                                    "true", "false",   "TRUE", "",     "nonsense"};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool done() const { return pos_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Owns the strings and arrays an oconfig tree points to.
struct Tree {
  std::vector<std::string> strings;
  std::vector<std::vector<oconfig_value_t>> values;
  std::vector<std::vector<oconfig_item_t>> children;
};

void Fill(Reader* in, Tree* tree, int depth, oconfig_item_t* item) {
  const uint8_t choice = in->Byte();
  tree->strings.emplace_back(choice < 200 ? kKeys[choice % std::size(kKeys)]
                                          : std::string(1, static_cast<char>(in->Byte())));
  item->key = tree->strings.back().data();
  auto& values = tree->values.emplace_back(in->Byte() % 4);
  for (oconfig_value_t& value : values) {
    const uint8_t kind = in->Byte();
    switch (kind % 3) {
      case 0:
        value.type = OCONFIG_TYPE_STRING;
        tree->strings.emplace_back(kStrings[in->Byte() % std::size(kStrings)]);
        value.value.string = tree->strings.back().data();
        break;
      case 1:
        value.type = OCONFIG_TYPE_NUMBER;
        value.value.number =
            static_cast<double>(static_cast<int8_t>(in->Byte())) * (kind & 0x80 ? 1000.5 : 1.0);
        break;
      default:
        value.type = OCONFIG_TYPE_BOOLEAN;
        value.value.boolean = in->Byte() & 1;
    }
  }
  item->values = values.data();
  item->values_num = static_cast<int>(values.size());
  const int count = depth < 2 ? in->Byte() % 4 : 0;
  auto& kids = tree->children.emplace_back(count);
  for (oconfig_item_t& kid : kids) {
    kid = oconfig_item_t{};
    kid.parent = item;
    Fill(in, tree, depth + 1, &kid);
  }
  item->children = kids.data();
  item->children_num = count;
}

// A refusal names what it refuses: an option of the block (its message starts with the key as
// written, or is `unknown option "<key>"`), or, every option accepted on its own, the
// combination the core cannot serve (its message starts with the core's).
bool SaysWhy(absl::string_view message, const std::vector<oconfig_item_t>& items,
             const tcpstates::PluginOptions& options) {
  for (const oconfig_item_t& item : items) {
    const absl::string_view key = item.key;
    if (absl::StartsWith(message, absl::StrCat(key, " ")) ||
        absl::StartsWith(message, absl::StrCat(key, ": ")) ||
        absl::StartsWith(message, absl::StrCat("unknown option \"", key, "\"; "))) {
      return true;
    }
  }
  const absl::Status served = tcpstates::ValidateRequest(options.Request());
  return !served.ok() && !served.message().empty() && absl::StartsWith(message, served.message());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  Tree tree;
  tree.strings.reserve(4096);  // item keys point into these strings: no reallocation
  tree.values.reserve(1024);
  tree.children.reserve(1024);
  oconfig_item_t block{};
  static char plugin_key[] = "Plugin";
  block.key = plugin_key;
  const int count = in.Byte() % 8;
  auto& items = tree.children.emplace_back(count);
  for (oconfig_item_t& item : items) {
    item = oconfig_item_t{};
    item.parent = &block;
    Fill(&in, &tree, 1, &item);
  }
  block.children = items.data();
  block.children_num = count;

  tcpstates::PluginOptions options;
  absl::Status status = tcpstates::ParsePluginOptions(block, &options);
  if (status.ok()) {
    if (options.analyses.top_owners < 1 || options.analyses.top_owners > tcpstates::kMaxTopOwners)
      std::abort();
    if (options.analyses.max_listen_ports < 1 ||
        options.analyses.max_listen_ports > tcpstates::kMaxMaxListenPorts)
      std::abort();
    // An accepted configuration is one the core can serve.
    if (!tcpstates::ValidateRequest(options.Request()).ok()) std::abort();
  } else if (!SaysWhy(status.message(), items, options)) {
    std::abort();
  }
  return 0;
}
