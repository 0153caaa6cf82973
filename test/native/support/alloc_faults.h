#pragma once
// Allocation-failure injection for native tests. The test binary replaces the global operator new
// (support/alloc_faults.cc), so every allocation of the core, of FAISS and of the standard library
// passes through it; while armed, the nth one made on the arming thread throws std::bad_alloc.
//
// Allocations inside OpenMP regions are counted out: an exception cannot leave such a region
// (the process terminates), so a core that must survive them has to allocate before the region.
#include <cstddef>

namespace cangen::test {

class FailNthAllocation {
 public:
  // Arms: the nth allocation (1-based) from now on, on this thread, throws.
  explicit FailNthAllocation(size_t nth);
  // Disarms.
  ~FailNthAllocation();
  FailNthAllocation(const FailNthAllocation&) = delete;
  FailNthAllocation& operator=(const FailNthAllocation&) = delete;

  // Whether the nth allocation was reached (and failed).
  bool fired() const;
  // Allocations counted since arming.
  size_t seen() const;
};

}  // namespace cangen::test
