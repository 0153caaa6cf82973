// The test binary's global operator new and delete (replacing the standard library's), with the
// failure injection of alloc_faults.h. Memory comes from malloc / aligned_alloc and goes back to
// free, as in libstdc++'s own, so sanitizers see matching pairs.
#include "support/alloc_faults.h"

#include <omp.h>

#include <cstdlib>
#include <new>

namespace {

struct Armed {
  bool on = false;
  bool fired = false;
  size_t nth = 0;
  size_t seen = 0;
};
thread_local Armed armed;

void maybeFail() {
  if (!armed.on || omp_get_level() > 0) return;
  if (++armed.seen == armed.nth) {
    armed.on = false;
    armed.fired = true;
    throw std::bad_alloc();
  }
}

void* allocate(std::size_t size, std::size_t alignment) {
  maybeFail();
  if (size == 0) size = 1;
  void* p = alignment > alignof(std::max_align_t)
                ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                : std::malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* allocateNoThrow(std::size_t size, std::size_t alignment) noexcept {
  try {
    return allocate(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

namespace cangen::test {

FailNthAllocation::FailNthAllocation(size_t nth) { armed = Armed{true, false, nth, 0}; }
FailNthAllocation::~FailNthAllocation() { armed.on = false; }
bool FailNthAllocation::fired() const { return armed.fired; }
size_t FailNthAllocation::seen() const { return armed.seen; }

}  // namespace cangen::test

void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocateNoThrow(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocateNoThrow(size, 0); }
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocateNoThrow(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocateNoThrow(size, static_cast<std::size_t>(a));
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
