#pragma once
// A learned scorer's weights and shape, as lib/scorer hands them over after parsing config.json
// and model.safetensors. Matrices are row-major out x in (PyTorch nn.Linear's layout).
//
// Kinds (u: user vector of userDim, x: ad vector of itemDim, H heads):
//   dot:  head_h = (P_h u) . x            P_h: itemDim x userDim (absent: identity)
//   mlp:  z0 = [u, x, u*x] (the features the config lists, in that order);
//         z_{l+1} = act(norm(W_l z_l + b_l)) for each hidden layer; heads = W_out z_L + b_out
//   mol:  q_p = normalize(Q u + b_Q)[p], k_j = normalize(K x + b_K)[j]  (PQ and PX components of dc)
//         l_{p,j} = q_p . k_j / temperature                            (P = PQ * PX logits)
//         g = act(G_u u + b_G + G_x x + G_l l);  gate_h = softmax(G_out g + b_out)[h*P .. h*P+P)
//         head_h = sum_{p,j} gate_h[p*PX + j] * l_{p,j}
// A request blends the heads with one weight per head: score = sum_h w_h head_h.
#include <cstdint>
#include <string>
#include <vector>

namespace cangen {

enum class ScorerKind { Dot, Mlp, Mol };
enum class Activation { Relu, Silu };

// A dense layer: weight out x in, bias out (empty: no bias); norm (LayerNorm) gamma and beta of
// length out, or empty.
struct DenseWeights {
  int in = 0;
  int out = 0;
  std::vector<float> weight;
  std::vector<float> bias;
  std::vector<float> normGamma;
  std::vector<float> normBeta;
};

struct ScorerModel {
  ScorerKind kind = ScorerKind::Dot;
  int userDim = 0;
  int itemDim = 0;
  int heads = 1;
  Activation activation = Activation::Relu;
  float normEps = 1e-5f;

  // dot
  std::vector<float> dotProjection;  // heads x itemDim x userDim, or empty (identity)

  // mlp
  bool useUser = true, useItem = true, useCross = true;  // first-layer input features
  std::vector<DenseWeights> hidden;                      // at least one
  DenseWeights output;                                   // heads x last hidden width

  // mol
  int queryComponents = 0, itemComponents = 0, componentDim = 0, gatingWidth = 0;
  float temperature = 1.0f;
  DenseWeights queryProj;   // (PQ * dc) x userDim
  DenseWeights itemProj;    // (PX * dc) x itemDim
  DenseWeights gateUser;    // G x userDim (+ bias)
  DenseWeights gateItem;    // G x itemDim (no bias)
  DenseWeights gateLogits;  // G x P (no bias)
  DenseWeights gateOut;     // (heads * P) x G (+ bias)

  int logits() const { return queryComponents * itemComponents; }
  int firstLayerIn() const { return (useUser ? userDim : 0) + (useItem ? itemDim : 0) + (useCross ? itemDim : 0); }
};

// Throws Error(InvalidArgument) naming the first inconsistency (shapes, sizes, non-finite values).
// lib/scorer validates the same things with file-level messages first; this keeps the core safe
// for native callers.
void validateModel(const ScorerModel& model);

const char* scorerKindName(ScorerKind kind);

}  // namespace cangen
