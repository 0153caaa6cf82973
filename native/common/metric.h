#pragma once

namespace cangen {

// How similarity is measured. Every kernel ranks by a "larger is better" internal score:
//   InnerProduct: q.x                      (reported as is, descending)
//   Cosine:       q.x on unit vectors      (vectors and queries normalised on the way in)
//   L2:           2 q.x - |x|^2            (reported as |q - x|^2 = |q|^2 - score, ascending)
enum class Metric { InnerProduct, L2, Cosine };

}  // namespace cangen
