#include "common/error.h"

namespace cangen {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::DimensionMismatch: return "ERR_DIMENSION_MISMATCH";
    case ErrorCode::NonFinite: return "ERR_NON_FINITE";
    case ErrorCode::DuplicateId: return "ERR_DUPLICATE_ID";
    case ErrorCode::Closed: return "ERR_CLOSED";
    case ErrorCode::NoDevice: return "ERR_NO_DEVICE";
    case ErrorCode::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

}  // namespace cangen
