#include "common/limits.h"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/error.h"

namespace cangen {

namespace {

size_t startingBudget() {
  if (const char* env = std::getenv("CANGEN_MAX_RESULT_BYTES")) {
    const unsigned long long bytes = std::strtoull(env, nullptr, 10);
    if (bytes > 0) return static_cast<size_t>(bytes);
  }
  return kDefaultResultBudgetBytes;
}

std::atomic<size_t>& budget() {
  static std::atomic<size_t> bytes{startingBudget()};
  return bytes;
}

}  // namespace

size_t resultBudgetBytes() { return budget().load(std::memory_order_relaxed); }

void setResultBudgetBytes(size_t bytes) { budget().store(bytes > 0 ? bytes : startingBudget()); }

uint64_t resultBytes(int64_t rows, int64_t perRow, uint64_t bytesPerResult) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  if (rows <= 0 || perRow <= 0 || bytesPerResult == 0) return 0;
  const uint64_t r = static_cast<uint64_t>(rows), p = static_cast<uint64_t>(perRow);
  if (r > max / p) return max;
  const uint64_t entries = r * p;
  return entries > max / bytesPerResult ? max : entries * bytesPerResult;
}

void checkResultBudget(int64_t rows, int64_t perRow, uint64_t bytesPerResult, const char* what) {
  const uint64_t bytes = resultBytes(rows, perRow, bytesPerResult);
  const size_t limit = resultBudgetBytes();
  if (bytes <= limit) return;
  throw Error(ErrorCode::ResourceLimit,
              std::string("Expected ") + what + " within the result budget of " + std::to_string(limit) +
                  " bytes but " + std::to_string(rows) + " x " + std::to_string(perRow) + " results need " +
                  std::to_string(bytes) +
                  " bytes; ask for fewer queries or a smaller k, split the batch, or raise the budget with "
                  "setLimits({ resultBytes })");
}

}  // namespace cangen
