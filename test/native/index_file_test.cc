// Saved AdIndex files: round trips of every kind, and damaged or crafted files (bits flipped with
// the checksum recomputed, counts out of range, sections repeated or reordered) that must be
// rejected as ERR_CORRUPT_FILE / ERR_UNSUPPORTED_FORMAT or load as a consistent index; never a
// crash, an out-of-bounds access (the --sanitize build checks) or an allocation the file cannot justify.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "ann/ad_index.h"
#include "common/error.h"
#include "index_file_helpers.h"

namespace cangen::testing {
namespace {

std::vector<float> randomQueries(int nq, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> q(static_cast<size_t>(nq) * dim);
  for (float& v : q) v = normal(rng);
  return q;
}

ErrorCode loadError(const std::vector<uint8_t>& file) {
  try {
    AdIndex::fromBytes(file.data(), file.size(), 1);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "the damaged file loaded";
  return ErrorCode::Internal;
}

// What any loaded index must support without failing: search, filtered search, stats, a write.
void exercise(AdIndex& index, const char* what) {
  const int dim = index.config().dim;
  const std::vector<float> q = randomQueries(3, dim, 5);
  AnnSearchParams params;
  params.threads = 1;
  const SearchResult r = index.search(q.data(), 3, 10, params);
  for (size_t i = 0; i < r.ids.size(); ++i) {
    if (r.ids[i] >= 0) {
      ASSERT_TRUE(r.counts[i / 10] > 0) << what;
    }
  }
  FilterSpec spec;
  spec.advertisers = std::vector<uint32_t>{1, 2};
  const auto filter = index.compile(spec);
  params.filter = filter.get();
  index.search(q.data(), 3, 10, params);
  index.stats();
  if (index.isTrained()) {
    const int64_t id = 99;
    index.upsert(&id, q.data(), nullptr, 1);
    const SearchResult again = index.search(q.data(), 1, 5, {});
    EXPECT_GE(again.counts[0], 1u) << what;
  }
}

// One index of 300 ads per kind, built once for all tests (training OPQ is slow under ASan).
struct Built {
  KindCase kind;
  std::unique_ptr<AdIndex> index;
  std::vector<uint8_t> bytes;
};
const std::vector<Built>& builtCases() {
  static const std::vector<Built> cases = [] {
    std::vector<Built> out;
    for (const KindCase& c : allKindCases(16)) {
      Built b{c, buildIndex(c, 300, 1), {}};
      b.bytes = savedBytes(*b.index);
      out.push_back(std::move(b));
    }
    return out;
  }();
  return cases;
}

TEST(IndexFile, EveryKindRoundTripsToTheSameResults) {
  for (const Built& built : builtCases()) {
    const KindCase& c = built.kind;
    SCOPED_TRACE(c.name);
    const AdIndex* index = built.index.get();
    const std::vector<uint8_t>& bytes = built.bytes;
    auto loaded = AdIndex::fromBytes(bytes.data(), bytes.size(), 1);
    EXPECT_EQ(loaded->size(), index->size());
    EXPECT_EQ(loaded->isTrained(), index->isTrained());
    const std::vector<float> q = randomQueries(5, 16, 9);
    AnnSearchParams params;
    params.threads = 1;
    const SearchResult a = index->search(q.data(), 5, 10, params), b = loaded->search(q.data(), 5, 10, params);
    EXPECT_EQ(a.ids, b.ids);
    EXPECT_EQ(a.counts, b.counts);
    EXPECT_EQ(savedBytes(*loaded), bytes) << "a loaded index saves to the same bytes";
    exercise(*loaded, c.name.c_str());
  }
}

// The reproduction: a 5k x 32 HNSW file with bit 7 of byte 299,091 flipped and the CRC
// recomputed crashed the loader; here that bit and every bit of the graph's first link words.
TEST(IndexFile, DamagedHnswGraphIsRejectedNotFollowed) {
  KindCase c{"hnsw", {}};
  c.config.kind = AnnKind::Hnsw;
  c.config.dim = 32;
  c.config.hnswM = 32;
  auto index = buildIndex(c, 5000, 3);
  const std::vector<uint8_t> file = savedBytes(*index);
  ASSERT_GT(file.size(), 299091u);
  std::vector<size_t> positions{299091};
  const Section faiss = sectionsOf(file).back();
  ASSERT_EQ(faiss.tag, 5u);
  const size_t step = (faiss.end - faiss.begin) / 48;
  for (size_t p = faiss.begin + 12; p < faiss.end; p += step) positions.push_back(p);
  int rejected = 0;
  for (size_t p : positions) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> damaged = file;
      damaged[p] ^= static_cast<uint8_t>(1u << bit);
      rechecksum(damaged);
      try {
        auto loaded = AdIndex::fromBytes(damaged.data(), damaged.size(), 1);
        exercise(*loaded, "hnsw 5k");
      } catch (const Error& e) {
        ASSERT_TRUE(e.code() == ErrorCode::CorruptFile) << "byte " << p << " bit " << bit << ": " << e.what();
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
}

// Every bit of sampled bytes in every section of every kind, re-checksummed: each load either
// succeeds with an index that searches and takes writes, or is rejected as corrupt/unsupported.
TEST(IndexFile, EveryFlippedBitIsRejectedOrLoadsConsistently) {
  std::mt19937 rng(17);
  for (const Built& built : builtCases()) {
    const KindCase& c = built.kind;
    SCOPED_TRACE(c.name);
    const std::vector<uint8_t>& file = built.bytes;
    std::set<size_t> positions;
    for (const Section& s : sectionsOf(file)) {
      const size_t length = s.end - s.begin;
      for (size_t i = 0; i < std::min<size_t>(length, 28); ++i) positions.insert(s.begin + i);  // header and first fields
      for (size_t i = 1; i <= std::min<size_t>(length, 4); ++i) positions.insert(s.end - i);
      const size_t samples = s.tag == 5 ? 64 : 8;  // the FAISS blob has the most structure
      for (size_t i = 0; i < samples; ++i) positions.insert(s.begin + rng() % length);
    }
    size_t loaded = 0, rejected = 0;
    for (size_t p : positions) {
      for (int bit = 0; bit < 8; ++bit) {
        std::vector<uint8_t> damaged = file;
        damaged[p] ^= static_cast<uint8_t>(1u << bit);
        rechecksum(damaged);
        try {
          auto index = AdIndex::fromBytes(damaged.data(), damaged.size(), 1);
          exercise(*index, c.name.c_str());
          ++loaded;
        } catch (const Error& e) {
          ASSERT_TRUE(e.code() == ErrorCode::CorruptFile || e.code() == ErrorCode::UnsupportedFormat)
              << "byte " << p << " bit " << bit << " gave " << errorCodeName(e.code()) << ": " << e.what();
          ++rejected;
        }
      }
    }
    EXPECT_GT(rejected, 0u);
    EXPECT_GT(loaded, 0u) << "bits in unused fields (padding, parameters) load";
  }
}

// Edits a field at `offset` from the start of section `tag`'s body, and re-checksums.
template <typename T>
std::vector<uint8_t> withField(std::vector<uint8_t> file, uint32_t tag, size_t offset, T value) {
  for (const Section& s : sectionsOf(file)) {
    if (s.tag == tag) {
      std::memcpy(file.data() + s.begin + 12 + offset, &value, sizeof value);
      rechecksum(file);
      return file;
    }
  }
  ADD_FAILURE() << "no section " << tag;
  return file;
}

TEST(IndexFile, HugeSlotCountIsRejectedBeforeAllocating) {
  const std::vector<uint8_t>& file = builtCases()[0].bytes;
  for (uint64_t slots : {uint64_t{UINT32_MAX}, uint64_t{1} << 31, uint64_t{301}, ~uint64_t{0}}) {
    EXPECT_EQ(loadError(withField<uint64_t>(file, 2, 0, slots)), ErrorCode::CorruptFile) << slots;
  }
}

// The configuration section: kind u8, metric u8, opq u8, storeVectors u8, then dim, nlist,
// pqBytes, hnswM, efConstruction, nprobe, efSearch, rerank as i32, then the factory string.
TEST(IndexFile, ConfigurationIsValidatedAsTheConstructorDoes) {
  const std::vector<uint8_t>& ivf = builtCases()[2].bytes;
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 8, 1 << 25)), ErrorCode::CorruptFile);      // nlist above 2^24
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 8, 2147483647)), ErrorCode::CorruptFile);   // IVF2147483647
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 8, 16)), ErrorCode::CorruptFile);           // nlist != the blob's
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 4, 0)), ErrorCode::CorruptFile);            // dim 0
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 4, 17)), ErrorCode::CorruptFile);           // dim != the data's
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 16, 1025)), ErrorCode::CorruptFile);        // hnswM
  EXPECT_EQ(loadError(withField<int32_t>(ivf, 1, 28, 65537)), ErrorCode::CorruptFile);       // efSearch
  EXPECT_EQ(loadError(withField<uint8_t>(ivf, 1, 0, 6)), ErrorCode::CorruptFile);            // kind
  EXPECT_EQ(loadError(withField<uint8_t>(ivf, 1, 0, 4)), ErrorCode::CorruptFile);            // IVF blob as HNSW
  EXPECT_EQ(loadError(withField<uint8_t>(ivf, 1, 1, 3)), ErrorCode::CorruptFile);            // metric
  EXPECT_EQ(loadError(withField<uint8_t>(ivf, 1, 1, 0)), ErrorCode::CorruptFile);            // IP blob, L2 config
  EXPECT_EQ(loadError(withField<uint8_t>(ivf, 1, 2, 2)), ErrorCode::CorruptFile);            // opq flag not 0/1
}

TEST(IndexFile, FactoryStringsOutsideTheCheckedGrammarAreRefused) {
  AnnConfig c;
  c.kind = AnnKind::Factory;
  c.dim = 32;
  for (const char* bad : {"IVF2147483647,Flat", "IVF16777217,Flat", "IVF0,Flat", "IVF16,PQ5", "IVF16,PQ8x17",
                          "HNSW1", "HNSW2000", "HNSW32,PQ8", "IDMap,Flat", "IVF16,Flat,Flat", "PCA16,IVF16,Flat",
                          "OPQ8_64,IVF16,PQ8", "LSH", "IVF16", "IVF999999999999,Flat", ""}) {
    c.factory = bad;
    try {
      AdIndex index(c, 1);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << bad;
    }
  }
  for (const char* good : {"Flat", "HNSW16", "HNSW16,Flat", "IVF16,Flat", "IVF16,PQ8", "IVF16,PQ8x4np", "IVF16,SQ8",
                           "IVF16,SQfp16", "OPQ8,IVF16,PQ8", "OPQ4_16,IVF16,SQ4"}) {
    c.factory = good;
    EXPECT_NO_THROW(AdIndex(c, 1)) << good;
  }
  AnnConfig ivf;
  ivf.kind = AnnKind::IvfFlat;
  ivf.dim = 8;
  ivf.nlist = (1 << 24) + 1;
  EXPECT_THROW(AdIndex(ivf, 1), Error);
  ivf.nlist = 8;
  ivf.factory = "IVF8,Flat";  // a factory string belongs to kind 'faiss' only
  EXPECT_THROW(AdIndex(ivf, 1), Error);
}

TEST(IndexFile, SectionsRepeatedReorderedOrUnknownAreRejected) {
  const std::vector<uint8_t>& file = builtCases()[2].bytes;
  const std::vector<Section> s = sectionsOf(file);  // header, config, catalog, faiss
  ASSERT_EQ(s.size(), 4u);
  auto assemble = [&](const std::vector<size_t>& order) {
    std::vector<uint8_t> out(file.begin(), file.begin() + 24);
    for (size_t i : order) out.insert(out.end(), file.begin() + s[i].begin, file.begin() + s[i].end);
    out.resize(out.size() + 4);
    const uint64_t payload = out.size() - 28;
    std::memcpy(out.data() + 16, &payload, 8);
    rechecksum(out);
    return out;
  };
  const std::vector<uint8_t> same = assemble({1, 2, 3});
  EXPECT_EQ(same, file);
  EXPECT_EQ(loadError(assemble({1, 2, 2, 3})), ErrorCode::CorruptFile);
  EXPECT_EQ(loadError(assemble({1, 2, 3, 3})), ErrorCode::CorruptFile);
  EXPECT_EQ(loadError(assemble({1, 3, 2})), ErrorCode::CorruptFile);
  EXPECT_EQ(loadError(assemble({1, 3})), ErrorCode::CorruptFile);
  EXPECT_EQ(loadError(assemble({1, 2})), ErrorCode::CorruptFile);
  std::vector<uint8_t> unknown = assemble({1, 2, 3});
  const uint32_t tag = 9;
  std::memcpy(unknown.data() + sectionsOf(unknown).back().begin, &tag, 4);
  rechecksum(unknown);
  EXPECT_EQ(loadError(unknown), ErrorCode::CorruptFile);
  std::vector<uint8_t> newer = file;
  newer[8] = 3;  // this build writes versions 1 and 2
  rechecksum(newer);
  EXPECT_EQ(loadError(newer), ErrorCode::UnsupportedFormat);
}

}  // namespace
}  // namespace cangen::testing

namespace cangen::testing {
namespace {

// A centroid that is not a finite number (the fuzzer's find: the coarse step packed it into its
// int8 copy, undefined behaviour) is a corrupt file, whatever the checksum says.
TEST(IndexFile, NonFiniteCentroidIsRejected) {
  for (const KindCase& c : allKindCases(16)) {
    if (c.name != "ivf-flat-l2") continue;
    auto index = buildIndex(c, 600, 5);
    const std::vector<uint8_t> file = savedBytes(*index);
    const Section faiss = sectionsOf(file).back();
    // The flat quantizer's fourcc, then its header, then its centroids: NaN written at every
    // offset in a window after the fourcc must either be rejected as a non-finite centroid, or
    // land in a header field and be rejected as corrupt or load consistently.
    const std::string fourcc = "IxF2";
    auto at = std::search(file.begin() + faiss.begin, file.begin() + faiss.end, fourcc.begin(), fourcc.end());
    ASSERT_NE(at, file.begin() + faiss.end) << "no flat quantizer in the FAISS section";
    const size_t start = static_cast<size_t>(at - file.begin()) + 4;
    const float nan = std::nanf("");
    int centroidRejections = 0;
    for (size_t p = start; p < start + 64 && p + 4 <= faiss.end; ++p) {
      std::vector<uint8_t> damaged = file;
      std::memcpy(&damaged[p], &nan, 4);
      rechecksum(damaged);
      try {
        auto loaded = AdIndex::fromBytes(damaged.data(), damaged.size(), 1);
        exercise(*loaded, ("ivf-flat with a NaN written at " + std::to_string(p)).c_str());
      } catch (const Error& e) {
        ASSERT_TRUE(e.code() == ErrorCode::CorruptFile || e.code() == ErrorCode::UnsupportedFormat) << e.what();
        if (std::string(e.what()).find("centroid") != std::string::npos) ++centroidRejections;
      }
    }
    EXPECT_GT(centroidRejections, 0) << "no write of NaN into a centroid was caught";
  }
}

}  // namespace
}  // namespace cangen::testing
