# Prefer a static OpenBLAS so the addon (and its prebuild) needs no BLAS installed at run time.
option(CANGEN_STATIC_BLAS "Link OpenBLAS statically when libopenblas.a is found" ON)
if(CANGEN_STATIC_BLAS)
  find_library(CANGEN_OPENBLAS_STATIC NAMES libopenblas.a
               PATHS /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib
               NO_DEFAULT_PATH)
  if(CANGEN_OPENBLAS_STATIC)
    set(BLAS_LIBRARIES "${CANGEN_OPENBLAS_STATIC}")
    set(LAPACK_LIBRARIES "${CANGEN_OPENBLAS_STATIC}")
    set(BLAS_FOUND TRUE)
    set(LAPACK_FOUND TRUE)
    set(CANGEN_BLAS_IS_STATIC ON)
    message(STATUS "cangen: static OpenBLAS ${CANGEN_OPENBLAS_STATIC}")
  endif()
endif()
