// checkFaissBlob: a walk over FAISS 1.7's serialisation (faiss/impl/index_write.cpp) of the
// structures AdIndex builds. Layouts are FAISS's: raw little-endian fields, vectors as a u64
// element count followed by the elements.
#include <cstring>
#include <string>

#include "ann/faiss_file_check.h"
#include "common/error.h"

namespace cangen {

namespace {

[[noreturn]] void corrupt(const std::string& what) {
  throw Error(ErrorCode::CorruptFile, "Corrupt index file: the FAISS section " + what);
}

constexpr uint32_t fourcc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

class Blob {
 public:
  Blob(const uint8_t* data, size_t size) : p_(data), left_(size) {}
  template <typename T>
  T get(const char* what) {
    if (left_ < sizeof(T)) corrupt(std::string("ends inside ") + what);
    T v;
    std::memcpy(&v, p_, sizeof(T));
    skip(sizeof(T));
    return v;
  }
  bool flag(const char* what) {
    const uint8_t v = get<uint8_t>(what);
    if (v > 1) corrupt(std::string("has a non-boolean ") + what);
    return v == 1;
  }
  // A vector's element count, after checking its elements are all present.
  uint64_t count(size_t elementBytes, const char* what) {
    const uint64_t n = get<uint64_t>(what);
    if (n > left_ / elementBytes) corrupt(std::string("declares more ") + what + " than it holds");
    return n;
  }
  const uint8_t* here() const { return p_; }
  void skip(uint64_t bytes) {
    if (bytes > left_) corrupt("ends early");
    p_ += bytes;
    left_ -= bytes;
  }
  size_t left() const { return left_; }

 private:
  const uint8_t* p_;
  size_t left_;
};

struct Header {
  int64_t ntotal = 0;
  bool trained = false;
};

// faiss::Index's common fields: d, ntotal, two unused words, is_trained, metric.
Header indexHeader(Blob& b, int dim, int32_t metric, const char* what) {
  const int32_t d = b.get<int32_t>("a dimension");
  if (d != dim) corrupt(std::string("has a ") + what + " of dimension " + std::to_string(d) + ", not " + std::to_string(dim));
  Header h;
  h.ntotal = b.get<int64_t>("a vector count");
  if (h.ntotal < 0 || h.ntotal > INT32_MAX) corrupt("has a vector count out of range");
  b.get<int64_t>("the header");
  b.get<int64_t>("the header");
  h.trained = b.flag("trained flag");
  if (b.get<int32_t>("a metric") != metric) corrupt(std::string("has a ") + what + " with another metric");
  return h;
}

// IndexFlatIP / IndexFlatL2: the header, then ntotal x d floats (counted in 4-byte words).
Header flat(Blob& b, int dim, int32_t metric, const char* what) {
  if (b.get<uint32_t>("a type tag") != (metric == 0 ? fourcc("IxFI") : fourcc("IxF2"))) {
    corrupt(std::string("has no flat ") + what + " where one belongs");
  }
  const Header h = indexHeader(b, dim, metric, what);
  if (!h.trained) corrupt(std::string("has an untrained flat ") + what + " (flat indexes need no training)");
  const uint64_t words = b.count(4, "vector values");
  if (words != static_cast<uint64_t>(h.ntotal) * static_cast<uint64_t>(dim)) corrupt("has a flat store of the wrong size");
  b.skip(words * 4);
  return h;
}

// ArrayInvertedLists: nlist and code size, the list sizes (all, or the non-empty ones as
// ascending (list, size) pairs), then each non-empty list's codes and ids.
void invertedLists(Blob& b, uint64_t nlist, uint64_t codeSize, int64_t ntotal) {
  if (b.get<uint32_t>("a type tag") != fourcc("ilar")) corrupt("has no inverted lists");
  if (b.get<uint64_t>("the list count") != nlist) corrupt("has inverted lists of another nlist");
  if (b.get<uint64_t>("the code size") != codeSize) corrupt("has inverted lists of another code size");
  const uint32_t layout = b.get<uint32_t>("the list layout");
  const uint64_t entryBytes = codeSize + sizeof(int64_t);
  uint64_t entries = 0;
  auto addList = [&](uint64_t size) {
    const uint64_t room = b.left() / entryBytes;  // an upper bound: the entries follow the table
    if (entries > room || size > room - entries) corrupt("declares more list entries than it holds");
    entries += size;
  };
  if (layout == fourcc("full")) {
    if (b.count(8, "list sizes") != nlist) corrupt("has a list size table of the wrong length");
    for (uint64_t l = 0; l < nlist; ++l) addList(b.get<uint64_t>("a list size"));
  } else if (layout == fourcc("sprs")) {
    const uint64_t n = b.count(8, "list sizes");
    if (n % 2 != 0) corrupt("has an odd sparse list table");
    int64_t previous = -1;
    for (uint64_t i = 0; i < n; i += 2) {
      const uint64_t list = b.get<uint64_t>("a list number");
      if (list >= nlist || static_cast<int64_t>(list) <= previous) corrupt("has list numbers out of range or order");
      previous = static_cast<int64_t>(list);
      addList(b.get<uint64_t>("a list size"));
    }
  } else {
    corrupt("has an unknown inverted list layout");
  }
  if (entries != static_cast<uint64_t>(ntotal)) corrupt("has list sizes that do not add up to its vector count");
  b.skip(entries * entryBytes);
}

struct Ivf {
  Header header;
  uint64_t nlist = 0;
};

// IndexIVF's common part: header, nlist, nprobe, the flat coarse quantizer, an empty direct map.
Ivf ivfHeader(Blob& b, int dim, int32_t metric, int nlist) {
  Ivf ivf;
  ivf.header = indexHeader(b, dim, metric, "IVF index");
  ivf.nlist = b.get<uint64_t>("nlist");
  if (ivf.nlist != static_cast<uint64_t>(nlist)) corrupt("has nlist " + std::to_string(ivf.nlist) + ", not " + std::to_string(nlist));
  const uint64_t nprobe = b.get<uint64_t>("nprobe");
  if (nprobe < 1 || nprobe > ivf.nlist) corrupt("has nprobe out of range");
  const Header quantizer = flat(b, dim, metric, "coarse quantizer");
  if (quantizer.ntotal != (ivf.header.trained ? nlist : 0)) corrupt("has a coarse quantizer without one centroid per list");
  if (b.get<uint8_t>("the direct map type") != 0 || b.get<uint64_t>("the direct map") != 0) corrupt("has a direct map");
  return ivf;
}

uint64_t sqCodeSize(int32_t qtype, uint64_t d) {
  switch (qtype) {
    case 0: case 2: case 5: return d;  // 8 bits, 8 bits uniform, 8 bits direct
    case 1: case 3: return (d + 1) / 2;
    case 6: return (d * 6 + 7) / 8;
    case 4: return d * 2;  // fp16
  }
  return 0;
}

// Range parameters a trained scalar quantizer keeps: per dimension (2 d), shared (2), or none.
uint64_t sqTrainedFloats(int32_t qtype, uint64_t d) {
  switch (qtype) {
    case 0: case 1: case 6: return 2 * d;
    case 2: case 3: return 2;
  }
  return 0;
}

int32_t sqType(FaissShape::Codes codes) {
  switch (codes) {
    case FaissShape::Codes::Sq8: return 0;
    case FaissShape::Codes::Sq4: return 1;
    case FaissShape::Codes::Sq6: return 6;
    case FaissShape::Codes::SqFp16: return 4;
    default: return -1;
  }
}

Header ivf(Blob& b, const FaissShape& shape, int dim, int32_t metric) {
  const uint32_t tag = b.get<uint32_t>("a type tag");
  const bool wantFlat = shape.codes == FaissShape::Codes::Flat, wantPq = shape.codes == FaissShape::Codes::Pq;
  if (tag != (wantFlat ? fourcc("IwFl") : wantPq ? fourcc("IwPQ") : fourcc("IwSq"))) corrupt("is not the configured IVF type");
  const Ivf h = ivfHeader(b, dim, metric, shape.nlist);
  uint64_t codeSize = 0;
  if (wantFlat) {
    codeSize = static_cast<uint64_t>(dim) * sizeof(float);
  } else if (wantPq) {
    b.flag("by_residual flag");
    codeSize = b.get<uint64_t>("the code size");
    const uint64_t d = b.get<uint64_t>("the PQ dimension"), m = b.get<uint64_t>("the PQ sub-quantizers"),
                   bits = b.get<uint64_t>("the PQ bits");
    if (d != static_cast<uint64_t>(dim) || m != static_cast<uint64_t>(shape.pqM) || bits != static_cast<uint64_t>(shape.pqBits)) {
      corrupt("has a product quantizer of another shape");
    }
    if (codeSize != (m * bits + 7) / 8) corrupt("has a PQ code size that does not match its quantizer");
    if (b.count(4, "PQ centroids") != d << bits) corrupt("has a PQ codebook of the wrong size");
    b.skip((d << bits) * sizeof(float));
  } else {
    const int32_t qtype = b.get<int32_t>("the SQ type");
    if (qtype != sqType(shape.codes)) corrupt("has a scalar quantizer of another type");
    const uint32_t rangeStat = b.get<uint32_t>("the SQ range statistic");
    if (rangeStat > 3) corrupt("has an unknown SQ range statistic");
    b.get<float>("the SQ range argument");
    const uint64_t d = b.get<uint64_t>("the SQ dimension");
    if (d != static_cast<uint64_t>(dim)) corrupt("has a scalar quantizer of another dimension");
    codeSize = b.get<uint64_t>("the SQ code size");
    if (codeSize != sqCodeSize(qtype, d)) corrupt("has an SQ code size that does not match its type");
    const uint64_t trained = b.count(4, "SQ ranges");
    const uint64_t expected = sqTrainedFloats(qtype, d);
    if (trained != expected && !(trained == 0 && !h.header.trained)) corrupt("has SQ ranges of the wrong size");
    b.skip(trained * sizeof(float));
    if (b.get<uint64_t>("the code size") != codeSize) corrupt("has an IVF code size that does not match its quantizer");
    b.flag("by_residual flag");
  }
  invertedLists(b, h.nlist, codeSize, h.header.ntotal);
  return h.header;
}

// An OPQ rotation (a LinearTransform without bias) in front of the IVF.
void preTransform(Blob& b, const FaissShape& shape, int dim, int32_t metric) {
  if (b.get<uint32_t>("a type tag") != fourcc("IxPT")) corrupt("is not the configured OPQ + IVF type");
  const Header h = indexHeader(b, dim, metric, "pre-transformed index");
  if (b.get<int32_t>("the transform count") != 1) corrupt("has another number of transforms than one rotation");
  if (b.get<uint32_t>("a type tag") != fourcc("LTra")) corrupt("has a transform that is not a rotation");
  if (b.flag("bias flag")) corrupt("has a rotation with a bias");
  const uint64_t matrix = b.count(4, "rotation values");
  b.skip(matrix * sizeof(float));
  if (b.count(4, "bias values") != 0) corrupt("has a rotation with a bias");
  const int32_t in = b.get<int32_t>("the rotation input"), out = b.get<int32_t>("the rotation output");
  const bool trained = b.flag("trained flag");
  if (in != dim || out != shape.opqOut) corrupt("has a rotation of another shape");
  if (matrix != (trained ? static_cast<uint64_t>(in) * static_cast<uint64_t>(out) : 0)) corrupt("has a rotation matrix of the wrong size");
  if (trained != h.trained) corrupt("has a rotation and an index that disagree on training");
  const Header inner = ivf(b, shape, shape.opqOut, metric);
  if (inner.trained != h.trained || inner.ntotal != h.ntotal) corrupt("has a rotation and an index that disagree");
}

// IndexHNSWFlat: header, the graph's five arrays and five scalars, then the flat storage.
void hnsw(Blob& b, int dim, int32_t metric) {
  if (b.get<uint32_t>("a type tag") != fourcc("IHNf")) corrupt("is not the configured HNSW type");
  const Header h = indexHeader(b, dim, metric, "HNSW index");
  if (!h.trained) corrupt("has an untrained HNSW index (HNSW over flat vectors needs no training)");
  b.skip(b.count(sizeof(double), "level probabilities") * sizeof(double));
  b.skip(b.count(sizeof(int32_t), "neighbour counts") * sizeof(int32_t));
  b.skip(b.count(sizeof(int32_t), "levels") * sizeof(int32_t));
  b.skip(b.count(sizeof(uint64_t), "offsets") * sizeof(uint64_t));
  b.skip(b.count(sizeof(int32_t), "links") * sizeof(int32_t));
  b.skip(5 * sizeof(int32_t));  // entry point, max level, efConstruction, efSearch, upper beam
  if (flat(b, dim, metric, "HNSW storage").ntotal != h.ntotal) corrupt("has an HNSW storage of another size");
}

}  // namespace

void checkFaissBlob(const uint8_t* data, size_t size, const AnnConfig& config) {
  const FaissShape shape = faissShape(config);
  const int32_t metric = config.metric == Metric::L2 ? 1 : 0;  // faiss::METRIC_L2 : METRIC_INNER_PRODUCT
  Blob b(data, size);
  if (shape.hnsw()) {
    hnsw(b, config.dim, metric);
  } else if (shape.opqM > 0) {
    preTransform(b, shape, config.dim, metric);
  } else if (shape.ivf()) {
    ivf(b, shape, config.dim, metric);
  } else {
    flat(b, config.dim, metric, "flat index");
  }
  if (b.left() != 0) corrupt("has bytes after the index");
}

}  // namespace cangen
