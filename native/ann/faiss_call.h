#pragma once
// Runs a FAISS call, turning its exceptions (faiss::FaissException and friends) into our Error
// with FAISS's own text kept; out-of-memory passes through unchanged.
#include <exception>
#include <new>
#include <string>

#include "common/error.h"

namespace cangen {

template <typename F>
auto callFaiss(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::InvalidArgument, std::string("FAISS ") + what + " failed: " + e.what());
  }
}

}  // namespace cangen
