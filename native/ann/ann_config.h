#pragma once
// How an AdIndex is built: its kind and parameters. One validation serves every way a
// configuration arrives (the JavaScript constructor and a loaded file), so a saved file can never
// describe an index the API would have refused.
#include <cstdint>
#include <string>

#include "common/metric.h"
#include "flat/reduced_panels.h"

namespace cangen {

enum class AnnKind : uint8_t { Flat = 0, IvfFlat = 1, IvfPq = 2, IvfSq8 = 3, Hnsw = 4, Factory = 5 };

struct AnnConfig {
  AnnKind kind = AnnKind::Flat;
  int dim = 0;
  Metric metric = Metric::InnerProduct;
  int nlist = 1024;            // IVF: coarse clusters
  int pqBytes = 16;            // IVF-PQ: code bytes per ad (sub-quantizers of 8 bits)
  bool opq = false;            // IVF-PQ: learn a rotation first
  int hnswM = 32;              // HNSW: links per node
  int efConstruction = 80;     // HNSW: build-time beam width
  std::string factory;         // Factory: a FAISS index_factory string
  bool storeVectors = true;    // keep full vectors (re-ranking, exact fallback, compaction)
  int nprobe = 16;             // default search parameters
  int efSearch = 64;
  int rerank = 0;              // IVF-PQ: re-rank k * rerank candidates exactly (0: off)
  Precision precision = Precision::Fp32;  // Flat: scan a bf16 or int8 copy first (still exact)
};

// The ranges lib/ad-index.ts enforces, kept equal to it.
struct AnnLimits {
  static constexpr int kMaxDim = 65536;
  static constexpr int kMaxNlist = 1 << 24;
  static constexpr int kMaxHnswM = 1024;
  static constexpr int kMaxBeam = 65536;  // efConstruction, efSearch
  static constexpr int kMaxRerank = 1024;
  static constexpr int kMaxPqBits = 16;
  static constexpr uint64_t kMaxCodebookFloats = uint64_t{1} << 28;  // a PQ codebook of 1 GiB
};

// Throws Error(InvalidArgument) naming the first value out of range, including the numbers inside
// a factory string (kind 'faiss' accepts the subset of FAISS's grammar the loader can verify).
void validateAnnConfig(const AnnConfig& config);

// The FAISS index_factory description of a configuration ("" for the flat kind).
std::string factoryString(const AnnConfig& config);

// The FAISS structure a configuration builds, for the kinds backed by FAISS:
//   [OPQ<m>[_<d>],]IVF<n>,<Flat|PQ<m>[x<bits>][np]|SQ4|SQ6|SQ8|SQfp16>  or  HNSW<M>[,Flat]  or  Flat
struct FaissShape {
  enum class Codes { Flat, Pq, Sq4, Sq6, Sq8, SqFp16 };
  int opqM = 0;       // OPQ sub-quantizers, 0 without a rotation
  int opqOut = 0;     // the rotation's output dimension
  int nlist = 0;      // 0: not an IVF
  int hnswM = 0;      // 0: not HNSW
  Codes codes = Codes::Flat;
  int pqM = 0;
  int pqBits = 0;
  bool ivf() const { return nlist > 0; }
  bool hnsw() const { return hnswM > 0; }
};

// The shape of a validated configuration of a FAISS-backed kind (not Flat).
FaissShape faissShape(const AnnConfig& config);

}  // namespace cangen
