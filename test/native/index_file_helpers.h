#pragma once
// Shared by the index-file tests: one small index of every kind, saved to bytes, and the
// section layout of a saved file (native/ann/index_file.cc).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ann/ad_index.h"

namespace cangen::testing {

struct KindCase {
  std::string name;
  AnnConfig config;
  bool train = true;  // false: left untrained and empty
};

// Every kind and variant the file format carries, at test sizes.
std::vector<KindCase> allKindCases(int dim);

// An index of `n` random ads (every 7th removed again), trained first when the kind needs it.
std::unique_ptr<AdIndex> buildIndex(const KindCase& c, size_t n, uint32_t seed);  // trained on >= 300

// The bytes save() writes for `index` (through a temporary directory).
std::vector<uint8_t> savedBytes(const AdIndex& index);

// Rewrites the trailing CRC-32C after an edit.
void rechecksum(std::vector<uint8_t>& file);

struct Section {
  uint32_t tag;
  size_t begin;  // of the section's 12-byte header
  size_t end;    // one past its last byte
};
// The file header (tag 0) and every section, in file order.
std::vector<Section> sectionsOf(const std::vector<uint8_t>& file);

// A temporary directory removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cangen::testing
