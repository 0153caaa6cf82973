#include "index_file_helpers.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

#include <faiss/utils/distances.h>

#include "common/crc32c.h"
#include "test_data.h"

namespace cangen::testing {

std::vector<KindCase> allKindCases(int dim) {
  auto make = [dim](AnnKind kind, Metric metric) {
    AnnConfig c = testdata::smallConfig(kind, dim, metric);
    c.nprobe = 4;
    c.efConstruction = 40;
    return c;
  };
  std::vector<KindCase> cases;
  cases.push_back({"flat-ip", make(AnnKind::Flat, Metric::InnerProduct)});
  cases.push_back({"flat-l2", make(AnnKind::Flat, Metric::L2)});
  cases.push_back({"ivf-flat-l2", make(AnnKind::IvfFlat, Metric::L2)});
  cases.push_back({"ivf-flat-untrained", make(AnnKind::IvfFlat, Metric::InnerProduct), false});
  KindCase pq{"ivf-pq-rerank", make(AnnKind::IvfPq, Metric::L2)};
  pq.config.rerank = 4;
  cases.push_back(pq);
  KindCase opq{"ivf-pq-opq", make(AnnKind::IvfPq, Metric::InnerProduct)};
  opq.config.opq = true;
  opq.config.storeVectors = false;
  cases.push_back(opq);
  cases.push_back({"ivf-sq8-cosine", make(AnnKind::IvfSq8, Metric::Cosine)});
  cases.push_back({"hnsw-ip", make(AnnKind::Hnsw, Metric::InnerProduct)});
  KindCase factoryPq{"faiss-ivf-pq", make(AnnKind::Factory, Metric::L2)};
  factoryPq.config.factory = "IVF8,PQ4x6np";
  cases.push_back(factoryPq);
  KindCase factoryOpq{"faiss-opq-sq", make(AnnKind::Factory, Metric::InnerProduct)};
  factoryOpq.config.factory = "OPQ4_8,IVF8,SQ4";
  cases.push_back(factoryOpq);
  KindCase factoryHnsw{"faiss-hnsw", make(AnnKind::Factory, Metric::L2)};
  factoryHnsw.config.factory = "HNSW6,Flat";
  cases.push_back(factoryHnsw);
  KindCase factoryFlat{"faiss-flat", make(AnnKind::Factory, Metric::InnerProduct)};
  factoryFlat.config.factory = "Flat";
  cases.push_back(factoryFlat);
  return cases;
}

std::unique_ptr<AdIndex> buildIndex(const KindCase& c, size_t n, uint32_t seed) {
  // FAISS's BLAS distance path allocates 16 MB blocks per call, which ASan makes slow; the direct
  // path computes the same distances for these small sets.
  faiss::distance_compute_blas_threshold = 1 << 30;
  auto index = std::make_unique<AdIndex>(c.config, 1);  // one thread: no OpenMP spinning on a busy machine
  if (!c.train) return index;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  // PQ codebooks of 256 centroids need at least 256 training vectors, however few ads follow.
  const size_t sample = std::max<size_t>(n, 300);
  std::vector<float> vectors(sample * static_cast<size_t>(c.config.dim));
  for (float& v : vectors) v = normal(rng);
  index->train(vectors.data(), sample);
  std::vector<int64_t> ids(n);
  std::vector<AdAttributes> attributes(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = static_cast<int64_t>(1000 + 3 * i);
    attributes[i].advertiser = static_cast<uint32_t>(i % 5);
    attributes[i].budget = static_cast<uint8_t>(i % 3);
  }
  index->upsert(ids.data(), vectors.data(), attributes.data(), n);
  std::vector<int64_t> removed;
  for (size_t i = 0; i < n; i += 7) removed.push_back(ids[i]);
  index->remove(removed.data(), removed.size());
  return index;
}

std::vector<uint8_t> savedBytes(const AdIndex& index) {
  TempDir dir;
  const std::string path = dir.path() + "/index.cgn";
  index.save(path);
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void rechecksum(std::vector<uint8_t>& file) {
  const uint32_t crc = crc32c(file.data(), file.size() - 4);
  std::memcpy(file.data() + file.size() - 4, &crc, 4);
}

std::vector<Section> sectionsOf(const std::vector<uint8_t>& file) {
  constexpr size_t kHeaderBytes = 24;
  std::vector<Section> sections{{0, 0, kHeaderBytes}};
  size_t at = kHeaderBytes;
  while (at + 12 <= file.size() - 4) {
    uint32_t tag;
    uint64_t length;
    std::memcpy(&tag, file.data() + at, 4);
    std::memcpy(&length, file.data() + at + 4, 8);
    sections.push_back({tag, at, at + 12 + length});
    at += 12 + length;
  }
  if (at != file.size() - 4) throw std::runtime_error("not a well-formed index file");
  return sections;
}

TempDir::TempDir() {
  char pattern[] = "/tmp/cangen-test-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  if (DIR* dir = ::opendir(path_.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
        ::unlink((path_ + "/" + entry->d_name).c_str());
      }
    }
    ::closedir(dir);
  }
  ::rmdir(path_.c_str());
}

}  // namespace cangen::testing
