# FAISS acquisition. Defines the imported target cangen::faiss and CANGEN_FAISS_VERSION.
#   CANGEN_FAISS=build  (default) build FAISS from source once into a cache outside the build dir:
#                       Debian's 1.7.3 source fetched with apt, or CANGEN_FAISS_SOURCE_DIR
#   CANGEN_FAISS=system use an installed FAISS found by find_package(faiss) (e.g. a GPU build)
set(CANGEN_FAISS "build" CACHE STRING "Where FAISS comes from: build or system")
set_property(CACHE CANGEN_FAISS PROPERTY STRINGS build system)
set(CANGEN_FAISS_SOURCE_DIR "$ENV{CANGEN_FAISS_SOURCE_DIR}" CACHE PATH "FAISS source tree to build instead of Debian's 1.7.3")
set(CANGEN_FAISS_OPT_LEVEL "avx2" CACHE STRING "FAISS SIMD level: generic or avx2")

find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED)  # FAISS's config does not look for it itself
include(${CMAKE_CURRENT_LIST_DIR}/BlasStatic.cmake)
if(NOT CANGEN_BLAS_IS_STATIC)
  find_package(BLAS REQUIRED)
  find_package(LAPACK REQUIRED)
endif()

if(CANGEN_FAISS STREQUAL "system")
  find_package(faiss REQUIRED)
  add_library(cangen::faiss INTERFACE IMPORTED)
  target_link_libraries(cangen::faiss INTERFACE faiss)
  set(CANGEN_FAISS_VERSION "${faiss_VERSION}")
  return()
endif()

# Cache key: version of the source and the flags that change the binary.
if(DEFINED ENV{CANGEN_CACHE_DIR})
  set(_cache_root "$ENV{CANGEN_CACHE_DIR}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(_cache_root "$ENV{XDG_CACHE_HOME}/cangen")
else()
  set(_cache_root "$ENV{HOME}/.cache/cangen")
endif()
if(CANGEN_FAISS_SOURCE_DIR)
  string(SHA1 _src_key "${CANGEN_FAISS_SOURCE_DIR}")
  string(SUBSTRING "${_src_key}" 0 10 _src_key)
  set(_faiss_key "faiss-src-${_src_key}-${CANGEN_FAISS_OPT_LEVEL}")
else()
  set(_faiss_key "faiss-1.7.3-${CANGEN_FAISS_OPT_LEVEL}")
endif()
set(CANGEN_FAISS_PREFIX "${_cache_root}/${_faiss_key}" CACHE PATH "Where the FAISS build is cached")

if(NOT EXISTS "${CANGEN_FAISS_PREFIX}/.complete")
  message(STATUS "cangen: FAISS not cached in ${CANGEN_FAISS_PREFIX}; building it (about a minute per core-pair)")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -E env
            "CANGEN_FAISS_SOURCE_DIR=${CANGEN_FAISS_SOURCE_DIR}"
            "CANGEN_FAISS_OPT_LEVEL=${CANGEN_FAISS_OPT_LEVEL}"
            bash "${CMAKE_CURRENT_LIST_DIR}/build-faiss.sh" "${CANGEN_FAISS_PREFIX}"
    RESULT_VARIABLE _faiss_rc)
  if(NOT _faiss_rc EQUAL 0)
    message(FATAL_ERROR "cangen: building FAISS failed (see above). Point CANGEN_FAISS_SOURCE_DIR at a FAISS "
                        "source tree, or use an installed FAISS with -DCANGEN_FAISS=system.")
  endif()
endif()

file(READ "${CANGEN_FAISS_PREFIX}/version" CANGEN_FAISS_VERSION)
string(STRIP "${CANGEN_FAISS_VERSION}" CANGEN_FAISS_VERSION)
add_library(cangen::faiss STATIC IMPORTED)
set_target_properties(cangen::faiss PROPERTIES
  IMPORTED_LOCATION "${CANGEN_FAISS_PREFIX}/lib/libfaiss.a"
  INTERFACE_INCLUDE_DIRECTORIES "${CANGEN_FAISS_PREFIX}/include")
target_link_libraries(cangen::faiss INTERFACE OpenMP::OpenMP_CXX ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})
if(CANGEN_BLAS_IS_STATIC)
  target_link_libraries(cangen::faiss INTERFACE Threads::Threads m)
endif()
