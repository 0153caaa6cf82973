#pragma once
// The one exception type of the native core. Bindings map `code` to the JavaScript error
// class with the same code, so every failure reaches the user typed and explained.
#include <stdexcept>
#include <string>

namespace cangen {

enum class ErrorCode {
  InvalidArgument,   // a value of the wrong shape, range or type
  DimensionMismatch, // a vector whose length does not match the index
  NonFinite,         // NaN or +-Infinity in an embedding or query
  DuplicateId,       // an id that is already in the index, or twice in one batch
  Closed,            // use after close()
  NoDevice,          // a CUDA device was requested but none is usable
  CorruptFile,       // a saved index that is truncated, damaged, or not an index at all
  UnsupportedFormat, // a saved index written by a newer cangen
  Io,                // the file system refused (permissions, space, missing file)
  Aborted,           // the caller raised the call's cancel flag (common/cancel.h)
  Internal,          // a bug or an exhausted resource: the message says which
  ResourceLimit,     // a request larger than a configured limit (e.g. the result memory budget)
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace cangen
