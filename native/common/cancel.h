#pragma once
// A flag the caller raises to stop a long search early (from JavaScript: an Int32Array over a
// SharedArrayBuffer, set with Atomics.store when the request's AbortSignal fires). Loops poll it
// between units of work (chunks of ads, queries); a raised flag ends the call with
// ErrorCode::Aborted. Default-constructed, it is never raised and costs one pointer test.
#include <cstdint>

#include "common/error.h"

namespace cangen {

struct CancelFlag {
  const int32_t* word = nullptr;

  bool raised() const { return word != nullptr && __atomic_load_n(word, __ATOMIC_RELAXED) != 0; }

  // Call outside parallel regions (it throws).
  void check() const {
    if (raised()) throw Error(ErrorCode::Aborted, "The search was aborted by its caller before it finished");
  }
};

}  // namespace cangen
