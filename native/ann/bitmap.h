#pragma once
// A bitmap over ad slots: bit s of words[s / 64]. On little-endian machines its bytes are also
// FAISS's IDSelectorBitmap layout, so one bitmap serves our kernels and FAISS alike.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cangen {

struct Bitmap {
  std::vector<uint64_t> words;

  explicit Bitmap(size_t bits = 0, bool value = false) { resize(bits, value); }
  void resize(size_t bits, bool value = false) {
    words.resize((bits + 63) / 64, value ? ~uint64_t{0} : 0);
    if (value && bits % 64) words.back() &= (uint64_t{1} << (bits % 64)) - 1;
  }
  bool test(size_t bit) const { return bit / 64 < words.size() && ((words[bit / 64] >> (bit % 64)) & 1u); }
  void set(size_t bit) { words[bit / 64] |= uint64_t{1} << (bit % 64); }
  void clear(size_t bit) { words[bit / 64] &= ~(uint64_t{1} << (bit % 64)); }
  size_t count() const {
    size_t n = 0;
    for (uint64_t w : words) n += static_cast<size_t>(__builtin_popcountll(w));
    return n;
  }
  // Calls f(bit) for every set bit in ascending order.
  template <typename F>
  void forEach(F&& f) const {
    for (size_t w = 0; w < words.size(); ++w) {
      for (uint64_t bits = words[w]; bits != 0; bits &= bits - 1) f(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
    }
  }
};

}  // namespace cangen
