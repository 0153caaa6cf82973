#pragma once
// Turning a model into what the tile kernels run: shared layers packed once at construction, and
// per request what depends on the user and the head weights (folded, so the scan never sees them).
#include <vector>

#include "scorer/model.h"
#include "scorer/tile.h"

namespace cangen {

// Shared parts. The per-ad precomputation layers (W_x when the MLP has no cross feature, the MoL
// item projection K and gating item half G_x) go to itemHalf / gateItem.
MlpPlan buildMlpPlan(const ScorerModel& model, PackedDense& itemHalf);
MolPlan buildMolPlan(const ScorerModel& model, PackedDense& itemHalf, PackedDense& gateItem);

// Per user u (userDim) and head weights w (heads).
MlpUserPlan buildMlpUser(const ScorerModel& model, const MlpPlan& plan, const float* u, const float* w);
MolUserPlan buildMolUser(const ScorerModel& model, const MolPlan& plan, const float* u, const float* w);
// dot: the blended query sum_h w_h P_h u (itemDim floats).
std::vector<float> buildDotQuery(const ScorerModel& model, const float* u, const float* w);

// In place: each of `components` consecutive groups of `dim` values (of each of the 32 ads of a
// tile, rows of 32) scaled to unit L2 norm (norms below 1e-12 count as 1e-12, as F.normalize).
void normalizeComponents(float* tile, int components, int dim);

}  // namespace cangen
