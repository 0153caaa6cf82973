#include "scorer/model.h"

#include <cmath>

#include "common/error.h"

namespace cangen {

namespace {

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

void checkValues(const std::vector<float>& values, size_t expected, const std::string& name, bool optional) {
  if (optional && values.empty()) return;
  if (values.size() != expected) {
    bad("Expected " + std::to_string(expected) + " values for " + name + " but received " +
        std::to_string(values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) bad("Expected finite values in " + name + " but element " + std::to_string(i) + " is not");
  }
}

void checkDense(const DenseWeights& d, int in, int out, bool biasRequired, const std::string& name) {
  if (d.in != in || d.out != out) {
    bad("Expected " + name + " to be " + std::to_string(out) + " x " + std::to_string(in) + " but it is " +
        std::to_string(d.out) + " x " + std::to_string(d.in));
  }
  checkValues(d.weight, static_cast<size_t>(in) * out, name + ".weight", false);
  checkValues(d.bias, static_cast<size_t>(out), name + ".bias", !biasRequired);
  checkValues(d.normGamma, static_cast<size_t>(out), name + ".norm.weight", true);
  checkValues(d.normBeta, static_cast<size_t>(out), name + ".norm.bias", true);
  if (d.normGamma.empty() != d.normBeta.empty()) bad("Expected both or neither of " + name + ".norm weight and bias");
}

void checkDim(int value, const char* name, int max) {
  if (value < 1 || value > max) bad(std::string("Expected ") + name + " between 1 and " + std::to_string(max) + " but received " + std::to_string(value));
}

}  // namespace

const char* scorerKindName(ScorerKind kind) {
  switch (kind) {
    case ScorerKind::Dot: return "dot";
    case ScorerKind::Mlp: return "mlp";
    case ScorerKind::Mol: return "mol";
  }
  return "?";
}

void validateModel(const ScorerModel& m) {
  checkDim(m.userDim, "userDim", 65536);
  checkDim(m.itemDim, "itemDim", 65536);
  checkDim(m.heads, "heads", 1024);
  if (!(m.normEps > 0)) bad("Expected a positive layer-norm epsilon");
  switch (m.kind) {
    case ScorerKind::Dot:
      if (m.dotProjection.empty() && m.userDim != m.itemDim) {
        bad("A dot scorer without a projection needs userDim == itemDim (" + std::to_string(m.userDim) + " vs " +
            std::to_string(m.itemDim) + ")");
      }
      checkValues(m.dotProjection, static_cast<size_t>(m.heads) * m.itemDim * m.userDim, "dot.proj", true);
      if (m.dotProjection.empty() && m.heads != 1) bad("A dot scorer with several heads needs dot.proj");
      break;
    case ScorerKind::Mlp: {
      if (!m.useItem && !m.useCross) bad("An MLP scorer needs the item or cross feature: otherwise no score depends on the ad");
      if (m.useCross && m.userDim != m.itemDim) bad("The cross feature u*x needs userDim == itemDim");
      if (m.hidden.empty()) bad("An MLP scorer needs at least one hidden layer");
      int in = m.firstLayerIn();
      for (size_t l = 0; l < m.hidden.size(); ++l) {
        checkDim(m.hidden[l].out, "a hidden width", 65536);
        checkDense(m.hidden[l], in, m.hidden[l].out, false, "mlp.layers." + std::to_string(l));
        in = m.hidden[l].out;
      }
      checkDense(m.output, in, m.heads, false, "mlp.out");
      break;
    }
    case ScorerKind::Mol: {
      checkDim(m.queryComponents, "queryComponents", 256);
      checkDim(m.itemComponents, "itemComponents", 256);
      checkDim(m.componentDim, "componentDim", 4096);
      checkDim(m.gatingWidth, "gatingWidth", 65536);
      if (!(m.temperature > 0) || !std::isfinite(m.temperature)) bad("Expected a positive finite temperature");
      const int dc = m.componentDim, p = m.logits(), g = m.gatingWidth;
      checkDense(m.queryProj, m.userDim, m.queryComponents * dc, false, "mol.query_proj");
      checkDense(m.itemProj, m.itemDim, m.itemComponents * dc, false, "mol.item_proj");
      checkDense(m.gateUser, m.userDim, g, false, "mol.gate.user");
      checkDense(m.gateItem, m.itemDim, g, false, "mol.gate.item");
      checkDense(m.gateLogits, p, g, false, "mol.gate.logits");
      checkDense(m.gateOut, g, m.heads * p, false, "mol.gate.out");
      break;
    }
  }
}

}  // namespace cangen
