#pragma once
// Which CUDA runtime errors leave the context unusable ("sticky"), as plain numbers so that the
// decision is tested without CUDA. After one, every later CUDA call of the process fails the same
// way: cached device state is dropped and the error reported as NoDevice.
namespace cangen::gpu {

// True for the cudaError_t codes whose documentation (CUDA 13, driver_types.h) says the process
// must be terminated and relaunched to use CUDA again.
inline bool isStickyCudaError(int status) {
  switch (status) {
    case 214:  // cudaErrorECCUncorrectable
    case 226:  // cudaErrorContained
    case 700:  // cudaErrorIllegalAddress
    case 702:  // cudaErrorLaunchTimeout
    case 710:  // cudaErrorAssert
    case 714:  // cudaErrorHardwareStackError
    case 715:  // cudaErrorIllegalInstruction
    case 716:  // cudaErrorMisalignedAddress
    case 717:  // cudaErrorInvalidAddressSpace
    case 718:  // cudaErrorInvalidPc
    case 719:  // cudaErrorLaunchFailure
    case 721:  // cudaErrorTensorMemoryLeak
    case 810:  // cudaErrorMpsClientTerminated
    case 911:  // cudaErrorExternalDevice
      return true;
    default:
      return false;
  }
}

}  // namespace cangen::gpu
