#pragma once
// A memory budget for what one call returns: nq x k results are allocated natively, copied into
// JavaScript and held there, so a request with many queries and a large k could ask for more than
// the machine has. Every entry point checks its result size in 64-bit arithmetic against this
// budget, before allocating, and refuses with ErrorCode::ResourceLimit.
#include <cstddef>
#include <cstdint>

namespace cangen {

constexpr size_t kDefaultResultBudgetBytes = size_t{1} << 30;

// Process-wide; CANGEN_MAX_RESULT_BYTES sets the starting value.
size_t resultBudgetBytes();
void setResultBudgetBytes(size_t bytes);  // 0: back to the default

// Bytes of `rows` x `perRow` results of `bytesPerResult` bytes, saturating instead of wrapping.
uint64_t resultBytes(int64_t rows, int64_t perRow, uint64_t bytesPerResult);

// Throws Error(ResourceLimit) when `rows` x `perRow` results of `bytesPerResult` bytes exceed the
// budget; `what` names them for the message (e.g. "search results").
void checkResultBudget(int64_t rows, int64_t perRow, uint64_t bytesPerResult, const char* what);

// Bytes one (id, score) result row entry takes through a search: the native result (id, score),
// the slots it is built from, and the JavaScript copy (id, score).
constexpr uint64_t kSearchResultBytes = 8 + 4 + 8 + 8 + 4;

}  // namespace cangen
