// libFuzzer target for the AdIndex file loader (scripts/fuzz-index-file.sh builds and runs it
// with ASan and UBSan). The input is a saved index whose length field and CRC-32C are repaired
// before loading, so mutations reach the sections instead of stopping at the checksum. A load
// must either give an index that searches, or fail with ERR_CORRUPT_FILE / ERR_UNSUPPORTED_FORMAT.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ann/ad_index.h"
#include "common/crc32c.h"
#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeaderBytes = 24;
  std::vector<uint8_t> file(data, data + size);
  if (file.size() >= kHeaderBytes + 4) {
    const uint64_t payload = file.size() - kHeaderBytes - 4;
    std::memcpy(file.data() + 16, &payload, 8);
    const uint32_t crc = cangen::crc32c(file.data(), file.size() - 4);
    std::memcpy(file.data() + file.size() - 4, &crc, 4);
  }
  try {
    auto index = cangen::AdIndex::fromBytes(file.data(), file.size(), 1);
    const int dim = index->config().dim;
    if (dim <= 4096) {
      std::vector<float> query(static_cast<size_t>(dim), 0.5f);
      cangen::AnnSearchParams params;
      params.threads = 1;
      index->search(query.data(), 1, 5, params);
      if (index->isTrained()) {
        const int64_t id = -7;
        index->upsert(&id, query.data(), nullptr, 1);
        index->search(query.data(), 1, 5, params);
      }
    }
  } catch (const cangen::Error& e) {
    if (e.code() != cangen::ErrorCode::CorruptFile && e.code() != cangen::ErrorCode::UnsupportedFormat) {
      std::fprintf(stderr, "unexpected %s: %s\n", cangen::errorCodeName(e.code()), e.what());
      std::abort();
    }
  }
  return 0;
}
