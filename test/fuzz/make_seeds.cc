// Writes the fuzzer's seed corpus: one small saved index (40 ads) of every kind (test/native's
// cases), generated at build time rather than committed.
#include <cstdio>
#include <fstream>
#include <string>

#include "index_file_helpers.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  for (const cangen::testing::KindCase& c : cangen::testing::allKindCases(8)) {
    const std::vector<uint8_t> bytes = cangen::testing::savedBytes(*cangen::testing::buildIndex(c, 40, 1));
    std::ofstream(std::string(argv[1]) + "/" + c.name + ".cgn", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    std::printf("%s: %zu bytes\n", c.name.c_str(), bytes.size());
  }
  return 0;
}
