#include "common/search_result.h"

#include <cmath>

#include "common/limits.h"

namespace cangen {

SearchResult SearchResult::padded(int nq, int k) {
  checkResultBudget(nq, k, kSearchResultBytes, "search results");
  SearchResult r;
  r.nq = nq;
  r.k = k;
  r.ids.assign(static_cast<size_t>(nq) * k, -1);
  r.scores.assign(static_cast<size_t>(nq) * k, std::nanf(""));
  r.counts.assign(nq, 0);
  return r;
}

}  // namespace cangen
