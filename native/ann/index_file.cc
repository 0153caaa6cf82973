// AdIndex persistence. File layout (little-endian):
//   "CGNINDEX" | u32 format version | u32 reserved | u64 payload bytes | payload | u32 CRC-32C
// where the CRC covers everything before it, and the payload is a sequence of sections
//   u32 tag | u64 length | bytes
// in ascending tag order, each at most once: the configuration (version 2, written only for a
// reduced precision, ends it with the precision as an int32), the catalog, then the exact
// kind's panels or the FAISS kinds' optional row vectors and FAISS index.
// A save replaces the file atomically (common/atomic_file.h). A load trusts nothing that passes
// the checksum: every count is checked against the bytes present before anything is allocated,
// the configuration is validated as the constructor validates it, and the FAISS blob and the
// index it becomes are checked against the configuration and the catalog (ann/faiss_file_check.h).
#include <faiss/Index.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "ann/ad_index.h"
#include "ann/faiss_call.h"
#include "ann/faiss_file_check.h"
#include "common/atomic_file.h"
#include "common/crc32c.h"
#include "common/error.h"

namespace cangen {

namespace {

constexpr char kMagic[8] = {'C', 'G', 'N', 'I', 'N', 'D', 'E', 'X'};
constexpr uint32_t kFormatVersion = 2;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8;
enum Tag : uint32_t { kConfig = 1, kCatalog = 2, kPanels = 3, kRows = 4, kFaiss = 5 };

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}
  template <typename T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
  }
  void string(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  // Opens a section; close it with end(mark).
  size_t begin(uint32_t tag) {
    put(tag);
    put<uint64_t>(0);
    return out_.size();
  }
  void end(size_t mark) {
    const uint64_t length = out_.size() - mark;
    std::memcpy(out_.data() + mark - sizeof(uint64_t), &length, sizeof length);
  }

 private:
  std::vector<uint8_t>& out_;
};

[[noreturn]] void corrupt(const std::string& what) {
  throw Error(ErrorCode::CorruptFile, "Corrupt index file: " + what);
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  const uint8_t* take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) corrupt("a section ends early");
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  // Copies the next n bytes to `to` (which may be null when n is 0).
  void copy(void* to, size_t n) {
    const uint8_t* from = take(n);
    if (n > 0) std::memcpy(to, from, n);
  }
  std::string string() {
    const uint32_t n = get<uint32_t>();
    const auto* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  bool done() const { return p_ == end_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

bool readFlag(Reader& r) {
  const uint8_t v = r.get<uint8_t>();
  if (v > 1) corrupt("a configuration flag is neither 0 nor 1");
  return v == 1;
}

// Whether serialize() writes a rows section for this configuration and slot count.
bool rowsStoredFor(const AnnConfig& config, size_t slots) {
  return config.kind != AnnKind::Flat && config.kind != AnnKind::IvfFlat && config.storeVectors &&
         !faissShape(config).hnsw() && slots > 0;
}

// IVF-PQ over L2 residuals keeps a table of nlist x M x ksub floats that FAISS recomputes on load
// (up to 2 GB, from a file that may be a few MB). It is rebuilt only when the file justifies its
// size; without it searches compute the same distances list by list.
void restorePqTable(faiss::Index* index, size_t blobBytes) {
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) index = pre->index;
  auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(index);
  if (ivfpq == nullptr || !ivfpq->is_trained || !ivfpq->by_residual || ivfpq->metric_type != faiss::METRIC_L2) return;
  const uint64_t tableBytes = uint64_t{ivfpq->pq.M} * ivfpq->pq.ksub * ivfpq->nlist * sizeof(float);
  if (tableBytes > std::max<uint64_t>(uint64_t{256} << 20, uint64_t{16} * blobBytes)) return;
  callFaiss("precompute_table", [&] { ivfpq->precompute_table(); });
}

}  // namespace

void AdIndex::serialize(std::vector<uint8_t>& out) const {
  Writer w(out);
  size_t mark = w.begin(kConfig);
  w.put<uint8_t>(static_cast<uint8_t>(config_.kind));
  w.put<uint8_t>(static_cast<uint8_t>(config_.metric));
  w.put<uint8_t>(config_.opq);
  w.put<uint8_t>(config_.storeVectors);
  for (int v : {config_.dim, config_.nlist, config_.pqBytes, config_.hnswM, config_.efConstruction, config_.nprobe,
                config_.efSearch, config_.rerank}) {
    w.put<int32_t>(v);
  }
  w.string(config_.factory);
  // Four bytes, so that the sections after it stay 4-byte aligned (the panels are read as floats).
  if (config_.precision != Precision::Fp32) w.put<int32_t>(static_cast<int32_t>(config_.precision));
  w.end(mark);

  mark = w.begin(kCatalog);
  w.put<uint64_t>(catalog_.slots());
  w.bytes(catalog_.ids().data(), catalog_.slots() * sizeof(int64_t));
  w.bytes(catalog_.allAttributes().data(), catalog_.slots() * sizeof(AdAttributes));
  w.bytes(catalog_.liveSlots().words.data(), catalog_.liveSlots().words.size() * sizeof(uint64_t));
  w.end(mark);

  if (!faiss_) {
    mark = w.begin(kPanels);
    std::vector<float> row(config_.dim);
    for (size_t s = 0; s < panels_.size(); ++s) {
      panels_.read(s, row.data());
      w.bytes(row.data(), row.size() * sizeof(float));
    }
    w.end(mark);
    return;
  }
  if (rows_.size() > 0) {
    mark = w.begin(kRows);
    w.bytes(rows_.data(), rows_.size() * sizeof(float));
    w.end(mark);
  }
  mark = w.begin(kFaiss);
  faiss::VectorIOWriter blob;
  faiss::write_index(faiss_.get(), &blob);
  w.bytes(blob.data.data(), blob.data.size());
  w.end(mark);
}

void AdIndex::deserialize(const uint8_t* data, size_t size) {
  Reader r(data, size);
  uint32_t previous = kConfig;
  bool sawRows = false;
  while (!r.done()) {
    const uint32_t tag = r.get<uint32_t>();
    const uint64_t length = r.get<uint64_t>();
    if (tag <= previous) corrupt("section " + std::to_string(tag) + " is repeated or out of order");
    if (tag != kCatalog && previous < kCatalog) corrupt("the catalog must come before section " + std::to_string(tag));
    previous = tag;
    Reader s(r.take(length), length);
    const uint64_t vectorBytes = static_cast<uint64_t>(catalog_.slots()) * config_.dim * sizeof(float);
    switch (tag) {
      case kCatalog: {
        // Every count is checked against the section's length before anything is allocated.
        constexpr uint64_t perSlot = sizeof(int64_t) + sizeof(AdAttributes);
        const uint64_t slots = s.get<uint64_t>();
        if (slots > UINT32_MAX || slots > (length - sizeof(uint64_t)) / perSlot) corrupt("the slot count exceeds the catalog");
        const uint64_t words = (slots + 63) / 64;
        if (length != sizeof(uint64_t) + slots * perSlot + words * sizeof(uint64_t)) corrupt("the catalog has the wrong length");
        std::vector<int64_t> ids(slots);
        s.copy(ids.data(), slots * sizeof(int64_t));
        std::vector<AdAttributes> attributes(slots);
        s.copy(attributes.data(), slots * sizeof(AdAttributes));
        for (const AdAttributes& a : attributes) {
          if (a.active > 1 || a.budget > static_cast<uint8_t>(BudgetState::Exhausted)) corrupt("an ad has attributes out of range");
        }
        Bitmap live(slots);
        s.copy(live.words.data(), words * sizeof(uint64_t));
        if (slots % 64 != 0 && (live.words.back() >> (slots % 64)) != 0) corrupt("live bits beyond the last slot");
        catalog_.restore(std::move(ids), std::move(attributes), std::move(live));
        break;
      }
      case kPanels: {
        if (config_.kind != AnnKind::Flat) corrupt("exact vectors in a FAISS-backed index");
        if (length != vectorBytes) corrupt("vector count mismatch");
        panels_.append(reinterpret_cast<const float*>(s.take(length)), catalog_.slots());
        break;
      }
      case kRows: {
        if (!rowsStoredFor(config_, catalog_.slots())) corrupt("stored rows where this configuration keeps none");
        if (length != vectorBytes) corrupt("vector count mismatch");
        rows_.resize(length / sizeof(float));
        s.copy(rows_.data(), length);
        sawRows = true;
        break;
      }
      case kFaiss: {
        if (config_.kind == AnnKind::Flat) corrupt("a FAISS index in an exact index");
        if (rowsStoredFor(config_, catalog_.slots()) && !sawRows) corrupt("the stored rows are missing");
        const uint8_t* bytes = s.take(length);
        checkFaissBlob(bytes, length, config_);
        faiss::VectorIOReader blob;
        blob.data.assign(bytes, bytes + length);
        try {
          faiss_.reset(faiss::read_index(&blob, faiss::IO_FLAG_SKIP_PRECOMPUTE_TABLE));
        } catch (const std::bad_alloc&) {
          throw;
        } catch (const std::exception& e) {
          corrupt(std::string("the FAISS section does not parse (") + e.what() + ")");
        }
        checkFaissIndex(*faiss_, config_, catalog_);
        if (faiss::ArrayInvertedLists* lists = ListPositions::trackedLists(*faiss_)) positions_.rebuild(*lists, catalog_.slots());
        restorePqTable(faiss_.get(), length);
        coarse_.rebuild(faiss_.get());
        break;
      }
      default:
        corrupt("unknown section " + std::to_string(tag));
    }
  }
  if (previous < kCatalog) corrupt("no catalog section");
  if (config_.kind == AnnKind::Flat) {
    if (panels_.size() != catalog_.slots() || (catalog_.slots() > 0 && previous != kPanels)) corrupt("vector count mismatch");
    trained_ = true;
  } else {
    if (!faiss_) corrupt("no FAISS section");
    trained_ = faiss_->is_trained;
  }
  live_ = catalog_.live();
}

void AdIndex::save(const std::string& path) const {
  std::vector<uint8_t> file(kHeaderBytes);
  {
    std::shared_lock lock(mutex_);
    serialize(file);
  }
  const uint64_t payload = file.size() - kHeaderBytes;
  std::memcpy(file.data(), kMagic, 8);
  // Version 2 adds the precision field; an fp32 index is written as version 1, which older builds read.
  const uint32_t version = config_.precision == Precision::Fp32 ? 1 : kFormatVersion;
  std::memcpy(file.data() + 8, &version, 4);
  std::memset(file.data() + 12, 0, 4);
  std::memcpy(file.data() + 16, &payload, 8);
  const uint32_t crc = crc32c(file.data(), file.size());
  file.insert(file.end(), reinterpret_cast<const uint8_t*>(&crc), reinterpret_cast<const uint8_t*>(&crc) + 4);
  replaceFileAtomically(path, file.data(), file.size());
}

std::unique_ptr<AdIndex> AdIndex::load(const std::string& path, int threads) {
  removeStaleTemporaries(path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::Io, "Could not open " + path + ": " + std::strerror(errno));
  const std::streamsize size = in.tellg();
  if (size < 0) throw Error(ErrorCode::Io, "Could not read " + path);
  in.seekg(0);
  std::vector<uint8_t> file(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(file.data()), size)) {
    throw Error(ErrorCode::Io, "Could not read " + path);
  }
  const std::string where = " (" + path + ")";
  try {
    return fromBytes(file.data(), file.size(), threads);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::CorruptFile && e.code() != ErrorCode::UnsupportedFormat) throw;
    throw Error(e.code(), e.what() + where);
  }
}

std::unique_ptr<AdIndex> AdIndex::fromBytes(const uint8_t* data, size_t size, int threads) {
  if (size < kHeaderBytes + 4 || std::memcmp(data, kMagic, 8) != 0) {
    corrupt("not a cangen index, or truncated before its header");
  }
  uint32_t version;
  std::memcpy(&version, data + 8, 4);
  if (version > kFormatVersion) {
    throw Error(ErrorCode::UnsupportedFormat, "This index file has format version " + std::to_string(version) +
                                                ", written by a newer cangen; this build reads up to version " +
                                                std::to_string(kFormatVersion));
  }
  if (version == 0) corrupt("format version 0 does not exist");
  uint64_t payload;
  std::memcpy(&payload, data + 16, 8);
  if (payload != size - kHeaderBytes - 4) {
    corrupt("expected " + std::to_string(payload + kHeaderBytes + 4) + " bytes but the file has " + std::to_string(size) +
            " (truncated or extended)");
  }
  uint32_t stored;
  std::memcpy(&stored, data + size - 4, 4);
  if (crc32c(data, size - 4) != stored) corrupt("checksum mismatch");

  Reader r(data + kHeaderBytes, payload);
  if (r.get<uint32_t>() != kConfig) corrupt("the first section is not the configuration");
  const uint64_t configBytes = r.get<uint64_t>();
  Reader c(r.take(configBytes), configBytes);
  AnnConfig config;
  config.kind = static_cast<AnnKind>(c.get<uint8_t>());
  config.metric = static_cast<Metric>(c.get<uint8_t>());
  config.opq = readFlag(c);
  config.storeVectors = readFlag(c);
  for (int* v : {&config.dim, &config.nlist, &config.pqBytes, &config.hnswM, &config.efConstruction, &config.nprobe,
                 &config.efSearch, &config.rerank}) {
    *v = c.get<int32_t>();
  }
  config.factory = c.string();
  if (version >= 2 && !c.done()) {
    const int32_t precision = c.get<int32_t>();
    if (precision < 0 || precision > static_cast<int32_t>(Precision::Int8)) corrupt("unknown precision " + std::to_string(precision));
    config.precision = static_cast<Precision>(precision);
  }
  if (!c.done()) corrupt("the configuration has trailing bytes");
  try {
    validateAnnConfig(config);
  } catch (const Error& e) {
    corrupt(std::string("bad configuration: ") + e.what());
  }
  // No FAISS structure is built from the configuration: the file's own, once checked, is used.
  std::unique_ptr<AdIndex> index(new AdIndex(config, threads, Unbuilt{}));
  const size_t rest = kHeaderBytes + 12 + configBytes;
  index->deserialize(data + rest, size - 4 - rest);
  return index;
}

}  // namespace cangen
