// The reduced-precision dot-product steps, shared by the flat index's bf16 / int8 scan
// (flat/scan_reduced_kernel.inl) and the learned scorer's bf16 tiles (scorer/tile_bf16_kernel.inl).
// Included inside the including kernel's namespace, after it defined W (lanes), vf (W floats) and
// broadcast(); CANGEN_REDUCED_DOT selects the AVX-512 instructions (VDPBF16PS, VPDPBUSD), else
// the same sums are computed with shifts and fused multiply-adds.
typedef int32_t vi __attribute__((vector_size(W * sizeof(int32_t))));

inline vi loadWords(const uint32_t* p) {
  vi v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One step of a 32-bit lane's dot product: two bf16 products (VDPBF16PS semantics).
inline vf dotBf16(vf acc, uint32_t queryWord, vi ads) {
#ifdef CANGEN_REDUCED_DOT
  return reinterpret_cast<vf>(_mm512_dpbf16_ps(reinterpret_cast<__m512>(acc),
                                               reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(queryWord))),
                                               reinterpret_cast<__m512bh>(ads)));
#else
  const vf low = reinterpret_cast<vf>(ads << 16);
  const vf high = reinterpret_cast<vf>(ads & static_cast<int32_t>(0xFFFF0000u));
  uint32_t bits[2] = {queryWord << 16, queryWord & 0xFFFF0000u};
  float q[2];
  std::memcpy(q, bits, sizeof q);
  return acc + broadcast(q[0]) * low + broadcast(q[1]) * high;
#endif
}

// Four unsigned query bytes times four signed ad codes, summed into each 32-bit lane (VPDPBUSD).
inline vi dotInt8(vi acc, uint32_t queryWord, vi ads) {
#ifdef CANGEN_REDUCED_DOT
  return reinterpret_cast<vi>(_mm512_dpbusd_epi32(reinterpret_cast<__m512i>(acc),
                                                  _mm512_set1_epi32(static_cast<int>(queryWord)),
                                                  reinterpret_cast<__m512i>(ads)));
#else
  for (int b = 0; b < 4; ++b) {
    const vi codes = (ads << (24 - 8 * b)) >> 24;  // sign-extended byte b
    acc += codes * static_cast<int32_t>((queryWord >> (8 * b)) & 0xFFu);
  }
  return acc;
#endif
}
