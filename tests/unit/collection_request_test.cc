// The one collection policy every adapter calls: which requests are refused, and how the
// rest are counted - the whole table, written out.
#include "common/collection/collection_request.h"

#include "gtest/gtest.h"

namespace tcpstates {
namespace {

struct Row {
  CountingChoice counting;
  SourceKind source;
  bool per_family;
  bool port_pressure;
  bool valid;
  Counting planned;  // when valid
};

CollectionRequest RequestOf(const Row& row) {
  CollectionRequest request{
      .source = row.source, .counting = row.counting, .per_family = row.per_family};
  if (row.port_pressure) {
    request.diagnosis.emplace();
    request.diagnosis->port_pressure = true;
  }
  return request;
}

constexpr Counting kFull = Counting::kFullDump;
constexpr Counting kCounters = Counting::kKernelCounters;
constexpr SourceKind kAuto = SourceKind::kAuto;
constexpr SourceKind kNetlink = SourceKind::kNetlink;
constexpr SourceKind kProc = SourceKind::kProc;

TEST(CollectionPolicy, TheWholeTable) {
  const Row table[] = {
      // auto: counters unless something needs every socket, or /proc is the source
      {CountingChoice::kAuto, kAuto, false, false, true, kCounters},
      {CountingChoice::kAuto, kNetlink, false, false, true, kCounters},
      {CountingChoice::kAuto, kProc, false, false, true, kFull},
      {CountingChoice::kAuto, kAuto, true, false, true, kFull},
      {CountingChoice::kAuto, kAuto, false, true, true, kFull},
      {CountingChoice::kAuto, kAuto, true, true, true, kFull},
      // full: always served
      {CountingChoice::kFull, kAuto, false, false, true, kFull},
      {CountingChoice::kFull, kProc, true, true, true, kFull},
      // counters: refused together with what needs every socket, and with /proc
      {CountingChoice::kCounters, kAuto, false, false, true, kCounters},
      {CountingChoice::kCounters, kNetlink, false, false, true, kCounters},
      {CountingChoice::kCounters, kAuto, true, false, false, kFull},
      {CountingChoice::kCounters, kAuto, false, true, false, kFull},
      {CountingChoice::kCounters, kAuto, true, true, false, kFull},
      {CountingChoice::kCounters, kProc, false, false, false, kFull},
  };
  for (const Row& row : table) {
    const CollectionRequest request = RequestOf(row);
    SCOPED_TRACE(testing::Message()
                 << CountingChoiceName(row.counting) << " " << SourceKindName(row.source)
                 << " per_family " << row.per_family << " port_pressure " << row.port_pressure);
    EXPECT_EQ(ValidateRequest(request).ok(), row.valid) << ValidateRequest(request);
    if (row.valid) {
      EXPECT_EQ(PlanCounting(request).counting, row.planned);
    }
  }
}

TEST(CollectionPolicy, OneErrorTextNamingWhatNeedsEverySocket) {
  CollectionRequest request =
      RequestOf({CountingChoice::kCounters, kAuto, true, true, false, kFull});
  EXPECT_EQ(ValidateRequest(request).message(),
            "counting \"counters\" cannot serve this request: the per-family split and port "
            "pressure need every socket in the dump; ask for counting \"auto\" (counters "
            "wherever nothing needs every socket) or \"full\"");
  request.per_family = false;
  EXPECT_EQ(PlanCounting(RequestOf({CountingChoice::kAuto, kAuto, false, true, true, kFull})).why,
            "counting auto: port pressure needs every socket");
}

TEST(CollectionPolicy, ParsesWhatAdaptersAccept) {
  EXPECT_EQ(*ParseCountingChoice("Counters"), CountingChoice::kCounters);
  EXPECT_EQ(*ParseSourceKind("NETLINK"), SourceKind::kNetlink);
  EXPECT_EQ(ParseCountingChoice("sometimes").status().message(),
            "unknown counting \"sometimes\": expected auto, full or counters");
  EXPECT_EQ(ParseSourceKind("ebpf").status().message(),
            "unknown source \"ebpf\": expected auto, netlink or proc");
}

}  // namespace
}  // namespace tcpstates
