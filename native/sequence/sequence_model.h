#pragma once
// A trained user-sequence model (the trainer's export "cangen-user-model" v1, docs/TRAINING.md) as
// lib/sequence hands it over after checking config.json and model.safetensors. Matrices are
// row-major out x in (PyTorch nn.Linear's layout); d = dim, L = maxLen, H = heads.
//
// token_j = itemTable[item_j] (+ actionWeight[action_j] when the batch has actions), where
//   itemTable[i] = itemIdWeight[i] + sum_f featureWeight[featureIds[i][f]] / max(#non-zero ids, 1)
// HSTU layer:   U,V,Q,K = split(SiLU(uvqk(LN(x))));  a_i = sum_{j allowed} SiLU(q_i.k_j + pos[i-j]
//               (+ time[bucket(t_i - t_j)])) / L * v_j  (per head);  x += out(LN(a) * U)
// SASRec block: x += out(softmax_{j allowed}(q_i.k_j / sqrt(d/H)) v);  x += ffnOut(GELU(ffnIn(LN'(x))))
//               with x_j = token_j + position[L - n + j] for n events
// Both end with finalNorm (affine) at the last event. Allowed keys: j <= i, and i - j < shortWindow
// when shortWindow > 0. LN: layer norm without affine; LN': with (eps 1e-5 everywhere).
// Long term (longTerm): w_j = exp(max(score.token_j - max_k score.token_k, -60)),
//   l = proj(sum_j w_j token_j / sum_j w_j);  g = sigmoid(fuseGate([s; l]));  u = g*s + (1-g)*l
// Interests (K > 1): q_k = u + W_k u + b_k; normalizeQuery: each q_k / max(|q_k|, 1e-12).
#include <cstdint>
#include <vector>

namespace cangen {

enum class SequenceKind { Hstu, SasRec };

// A linear layer as exported: weight out x in, bias out (empty: none).
struct LinearWeights {
  int in = 0;
  int out = 0;
  std::vector<float> weight;
  std::vector<float> bias;
};

struct HstuLayerWeights {
  LinearWeights uvqk;               // 4d x d: rows U, V, Q, K (each d = H heads of d/H)
  LinearWeights out;                // d x d
  std::vector<float> positionBias;  // L, index i - j
  std::vector<float> timeBias;      // timeBuckets + 1, index bucket
};

struct SasRecBlockWeights {
  std::vector<float> attnNormGamma, attnNormBeta;  // d
  LinearWeights qkv;                               // 3d x d: rows Q, K, V
  LinearWeights out;                               // d x d
  std::vector<float> ffnNormGamma, ffnNormBeta;    // d
  LinearWeights ffnIn;                             // 4d x d
  LinearWeights ffnOut;                            // d x 4d
};

struct SequenceModel {
  SequenceKind kind = SequenceKind::Hstu;
  int dim = 0;
  int heads = 1;
  int maxLen = 0;
  int shortWindow = 0;  // 0: attend to every earlier event
  int timeBuckets = 0;
  bool useTimes = false;  // HSTU only: add the time-gap bias when the batch has times
  bool longTerm = false;
  int interests = 1;
  bool normalizeQuery = false;
  int numItems = 0;    // N: item rows 1..N, row 0 padding
  int numActions = 0;  // A: action rows 1..A, row 0 none

  std::vector<float> itemIdWeight;     // (N + 1) x d
  std::vector<float> featureWeight;    // (V + 1) x d, or empty
  std::vector<int32_t> featureIds;     // (N + 1) x featuresPerItem, 0 = none, or empty
  int featuresPerItem = 0;
  std::vector<float> actionWeight;     // (A + 1) x d, or empty

  std::vector<HstuLayerWeights> hstuLayers;    // HSTU
  std::vector<float> position;                 // SASRec: L x d
  std::vector<SasRecBlockWeights> sasrecBlocks;  // SASRec
  std::vector<float> finalNormGamma, finalNormBeta;  // d

  std::vector<float> longScore;  // d (longTerm)
  LinearWeights longProj;        // d x d (longTerm)
  LinearWeights fuseGate;        // d x 2d (longTerm)
  LinearWeights interestProj;    // K d x d (interests > 1)

  int layers() const { return static_cast<int>(kind == SequenceKind::Hstu ? hstuLayers.size() : sasrecBlocks.size()); }
};

// Throws Error(InvalidArgument) naming the first inconsistency (sizes, ranges, non-finite values).
// lib/sequence checks the same with file-level messages first; this keeps the core safe for
// native callers.
void validateSequenceModel(const SequenceModel& model);

}  // namespace cangen
