#pragma once
// Helpers for writes that are all or nothing: every allocation a write needs is made while it
// prepares (where a failure leaves the index as it was), so that its commit cannot fail.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cangen {

// Room for `needed` elements without a later reallocation, growing geometrically so that many
// small writes stay linear in total.
template <typename T>
void reserveRoom(std::vector<T>& v, size_t needed) {
  if (needed > v.capacity()) v.reserve(std::max(needed, v.capacity() + v.capacity() / 2));
}

// Inserts key -> valueOf(i) for each keys[i] that `wanted(i)` selects; if any insertion throws,
// the ones made so far are erased again and the exception passes on. Returns the keys inserted,
// so that a caller whose later step fails can erase them (eraseKeys) as well.
template <typename Map, typename Wanted, typename ValueOf>
std::vector<int64_t> insertAllOrNothing(Map& map, const int64_t* keys, size_t n, Wanted&& wanted, ValueOf&& valueOf) {
  std::vector<int64_t> inserted;
  inserted.reserve(n);
  map.reserve(map.size() + n);
  try {
    for (size_t i = 0; i < n; ++i) {
      if (!wanted(i)) continue;
      map.emplace(keys[i], valueOf(i));
      inserted.push_back(keys[i]);  // cannot reallocate: reserved above
    }
  } catch (...) {
    for (int64_t key : inserted) map.erase(key);
    throw;
  }
  return inserted;
}

template <typename Map>
void eraseKeys(Map& map, const std::vector<int64_t>& keys) noexcept {
  for (int64_t key : keys) map.erase(key);
}

}  // namespace cangen
