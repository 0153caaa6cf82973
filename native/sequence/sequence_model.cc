#include "sequence/sequence_model.h"

#include <cmath>
#include <string>

#include "common/error.h"

namespace cangen {

namespace {

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

void checkValues(const std::vector<float>& values, size_t expected, const std::string& name) {
  if (values.size() != expected) {
    bad("Expected " + std::to_string(expected) + " values for " + name + " but received " + std::to_string(values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) bad("Expected finite values in " + name + " but element " + std::to_string(i) + " is not");
  }
}

void checkLinear(const LinearWeights& l, int in, int out, const std::string& name) {
  if (l.in != in || l.out != out) {
    bad("Expected " + name + " to be " + std::to_string(out) + " x " + std::to_string(in) + " but it is " +
        std::to_string(l.out) + " x " + std::to_string(l.in));
  }
  checkValues(l.weight, static_cast<size_t>(in) * out, name + ".weight");
  checkValues(l.bias, static_cast<size_t>(out), name + ".bias");
}

void checkRange(int value, const char* name, int min, int max) {
  if (value < min || value > max) {
    bad(std::string("Expected ") + name + " between " + std::to_string(min) + " and " + std::to_string(max) +
        " but received " + std::to_string(value));
  }
}

}  // namespace

void validateSequenceModel(const SequenceModel& m) {
  checkRange(m.dim, "dim", 1, 65536);
  checkRange(m.heads, "heads", 1, m.dim);
  if (m.dim % m.heads) bad("Expected dim divisible by heads");
  checkRange(m.maxLen, "maxLen", 1, 1 << 20);
  checkRange(m.shortWindow, "shortWindow", 0, 1 << 20);
  checkRange(m.timeBuckets, "timeBuckets", 0, 1 << 20);
  checkRange(m.interests, "interests", 1, 1024);
  checkRange(m.numItems, "numItems", 0, INT32_MAX - 1);
  checkRange(m.numActions, "numActions", 0, INT32_MAX - 1);
  checkRange(m.layers(), "layers", 1, 1024);
  const size_t d = m.dim, rows = static_cast<size_t>(m.numItems) + 1;
  checkValues(m.itemIdWeight, rows * d, "items.id.weight");
  if (!m.featureWeight.empty() || !m.featureIds.empty()) {
    if (m.featureWeight.empty() || m.featureWeight.size() % d) bad("Expected items.features.weight of (V + 1) x dim values");
    checkValues(m.featureWeight, m.featureWeight.size(), "items.features.weight");
    checkRange(m.featuresPerItem, "featuresPerItem", 1, 1 << 20);
    if (m.featureIds.size() != rows * m.featuresPerItem) bad("Expected items.feature_ids of (N + 1) x featuresPerItem values");
    const int64_t features = static_cast<int64_t>(m.featureWeight.size() / d);
    for (size_t i = 0; i < m.featureIds.size(); ++i) {
      if (m.featureIds[i] < 0 || m.featureIds[i] >= features) {
        bad("Expected items.feature_ids in [0, " + std::to_string(features) + ") but element " + std::to_string(i) + " is " +
            std::to_string(m.featureIds[i]));
      }
    }
  }
  if (m.numActions > 0) checkValues(m.actionWeight, (static_cast<size_t>(m.numActions) + 1) * d, "actions.weight");
  const int dim = m.dim;
  if (m.kind == SequenceKind::Hstu) {
    for (size_t l = 0; l < m.hstuLayers.size(); ++l) {
      const auto& layer = m.hstuLayers[l];
      const std::string name = "encoder.layers." + std::to_string(l);
      checkLinear(layer.uvqk, dim, 4 * dim, name + ".uvqk");
      checkLinear(layer.out, dim, dim, name + ".out");
      checkValues(layer.positionBias, m.maxLen, name + ".bias.position");
      checkValues(layer.timeBias, static_cast<size_t>(m.timeBuckets) + 1, name + ".bias.time");
    }
  } else {
    checkValues(m.position, static_cast<size_t>(m.maxLen) * d, "encoder.position.weight");
    for (size_t l = 0; l < m.sasrecBlocks.size(); ++l) {
      const auto& block = m.sasrecBlocks[l];
      const std::string name = "encoder.blocks." + std::to_string(l);
      checkValues(block.attnNormGamma, d, name + ".attn_norm.weight");
      checkValues(block.attnNormBeta, d, name + ".attn_norm.bias");
      checkLinear(block.qkv, dim, 3 * dim, name + ".attn.qkv");
      checkLinear(block.out, dim, dim, name + ".attn.out");
      checkValues(block.ffnNormGamma, d, name + ".ffn_norm.weight");
      checkValues(block.ffnNormBeta, d, name + ".ffn_norm.bias");
      checkLinear(block.ffnIn, dim, 4 * dim, name + ".ffn_in");
      checkLinear(block.ffnOut, 4 * dim, dim, name + ".ffn_out");
    }
  }
  checkValues(m.finalNormGamma, d, "encoder.final_norm.weight");
  checkValues(m.finalNormBeta, d, "encoder.final_norm.bias");
  if (m.longTerm) {
    checkValues(m.longScore, d, "long.score.weight");
    checkLinear(m.longProj, dim, dim, "long.proj");
    checkLinear(m.fuseGate, 2 * dim, dim, "fuse.gate");
  }
  if (m.interests > 1) checkLinear(m.interestProj, dim, m.interests * dim, "interests");
}

}  // namespace cangen
