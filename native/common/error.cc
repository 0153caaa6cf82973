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
    case ErrorCode::CorruptFile: return "ERR_CORRUPT_FILE";
    case ErrorCode::UnsupportedFormat: return "ERR_UNSUPPORTED_FORMAT";
    case ErrorCode::Io: return "ERR_IO";
    case ErrorCode::Aborted: return "ERR_ABORTED";
    case ErrorCode::Internal: return "ERR_INTERNAL";
    case ErrorCode::ResourceLimit: return "ERR_RESOURCE_LIMIT";
  }
  return "ERR_INTERNAL";
}

}  // namespace cangen
