/* The static OpenBLAS archive's LAPACK objects reference two libgfortran helpers, only on error
 * reporting and timing paths. Defining them here lets the addon link OpenBLAS statically without
 * shipping libgfortran (which Debian provides only as a non-PIC archive or a shared library).
 * Weak, so a real libgfortran wins wherever one is linked. */
#include <stddef.h>
#include <string.h>
#include <time.h>

/* Fortran string concatenation: dest (length destlen) = s1 // s2, blank-padded or truncated. */
__attribute__((weak, visibility("hidden"))) void _gfortran_concat_string(size_t destlen, char* dest, size_t len1,
                                                                      const char* s1, size_t len2, const char* s2) {
  size_t n1 = len1 < destlen ? len1 : destlen;
  memmove(dest, s1, n1);
  size_t n2 = len2 < destlen - n1 ? len2 : destlen - n1;
  memmove(dest + n1, s2, n2);
  memset(dest + n1 + n2, ' ', destlen - n1 - n2);
}

/* ETIME(array): process CPU seconds; the array descriptor's first field points at two reals. */
__attribute__((weak, visibility("hidden"))) float _gfortran_etime(void* descriptor) {
  float seconds = (float)clock() / (float)CLOCKS_PER_SEC;
  float* values = descriptor ? *(float**)descriptor : NULL;
  if (values) {
    values[0] = seconds;
    values[1] = 0.0f;
  }
  return seconds;
}
