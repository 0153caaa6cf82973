#include "scorer/plan.h"

#include <algorithm>
#include <cmath>

namespace cangen {

namespace {

// sum_j W[o][offset + j] * v[j] for o < out, in double.
std::vector<double> matVec(const DenseWeights& d, int offset, const float* v, int n) {
  std::vector<double> y(d.out, 0.0);
  for (int o = 0; o < d.out; ++o) {
    const float* row = d.weight.data() + static_cast<size_t>(o) * d.in + offset;
    double s = 0;
    for (int j = 0; j < n; ++j) s += static_cast<double>(row[j]) * v[j];
    y[o] = s;
  }
  return y;
}

std::vector<float> paddedBias(const std::vector<float>& bias, int out) {
  std::vector<float> b(padRows(out), 0.0f);
  std::copy(bias.begin(), bias.end(), b.begin());
  return b;
}

// Columns of the first MLP layer: [user | item | cross], present ones only.
struct FirstLayerColumns {
  int user = -1, item = -1, cross = -1;
  explicit FirstLayerColumns(const ScorerModel& m) {
    int at = 0;
    if (m.useUser) user = at, at += m.userDim;
    if (m.useItem) item = at, at += m.itemDim;
    if (m.useCross) cross = at;
  }
};

}  // namespace

MlpPlan buildMlpPlan(const ScorerModel& m, PackedDense& itemHalf) {
  MlpPlan plan;
  plan.activation = m.activation;
  plan.eps = m.normEps;
  const DenseWeights& first = m.hidden[0];
  plan.firstOut = first.out;
  plan.firstGamma = first.normGamma;
  plan.firstBeta = first.normBeta;
  // Without the cross term the ad's half of the first layer depends on the ad alone: precompute it.
  plan.precomputedFirst = !m.useCross;
  if (plan.precomputedFirst) {
    const int item = FirstLayerColumns(m).item;
    packDense(first.weight.data(), first.in, m.itemDim, first.out, [&](int c) { return item + c; },
              [](int r) { return r; }, itemHalf);
  }
  int prevOut = first.out;
  for (size_t l = 1; l < m.hidden.size(); ++l) {
    const DenseWeights& d = m.hidden[l];
    PackedDense p;
    packDense(d.weight.data(), d.in, padRows(prevOut), d.out, [&](int c) { return c < prevOut ? c : -1; },
              [](int r) { return r; }, p);
    p.bias = paddedBias(d.bias, d.out);
    p.gamma = d.normGamma;
    p.beta = d.normBeta;
    plan.layers.push_back(std::move(p));
    prevOut = d.out;
  }
  return plan;
}

MlpUserPlan buildMlpUser(const ScorerModel& m, const MlpPlan& plan, const float* u, const float* w) {
  MlpUserPlan user;
  const DenseWeights& first = m.hidden[0];
  const FirstLayerColumns cols(m);
  std::vector<double> c(first.out, 0.0);
  if (cols.user >= 0) c = matVec(first, cols.user, u, m.userDim);
  user.firstBias.assign(padRows(first.out), 0.0f);
  for (int o = 0; o < first.out; ++o) user.firstBias[o] = static_cast<float>(c[o] + (first.bias.empty() ? 0 : first.bias[o]));
  if (!plan.precomputedFirst) {
    // W_x x + W_c (u * x) = (W_x + W_c diag(u)) x: the cross term costs nothing extra per ad.
    std::vector<float> folded(static_cast<size_t>(first.out) * m.itemDim);
    for (int o = 0; o < first.out; ++o) {
      const float* row = first.weight.data() + static_cast<size_t>(o) * first.in;
      for (int j = 0; j < m.itemDim; ++j) {
        float v = cols.item >= 0 ? row[cols.item + j] : 0.0f;
        if (cols.cross >= 0) v += row[cols.cross + j] * u[j];
        folded[static_cast<size_t>(o) * m.itemDim + j] = v;
      }
    }
    packDense(folded.data(), m.itemDim, first.out, user.first);
  }
  // Blending is linear in the heads: fold it into one output row.
  const DenseWeights& out = m.output;
  user.outWeights.assign(padRows(out.in), 0.0f);
  double bias = 0;
  for (int h = 0; h < m.heads; ++h) {
    for (int i = 0; i < out.in; ++i) user.outWeights[i] += w[h] * out.weight[static_cast<size_t>(h) * out.in + i];
    if (!out.bias.empty()) bias += static_cast<double>(w[h]) * out.bias[h];
  }
  user.outBias = static_cast<float>(bias);
  return user;
}

MolPlan buildMolPlan(const ScorerModel& m, PackedDense& itemHalf, PackedDense& gateItem) {
  MolPlan plan;
  plan.activation = m.activation;
  plan.queryComponents = m.queryComponents;
  plan.queryPad = padRows(m.queryComponents);
  plan.itemComponents = m.itemComponents;
  plan.componentDim = m.componentDim;
  plan.heads = m.heads;
  const int pq = m.queryComponents, px = m.itemComponents, p = m.logits(), qpad = plan.queryPad;
  packDense(m.itemProj.weight.data(), m.itemDim, px * m.componentDim, itemHalf);
  itemHalf.bias = paddedBias(m.itemProj.bias, px * m.componentDim);
  packDense(m.gateItem.weight.data(), m.itemDim, m.gatingWidth, gateItem);
  // The kernels keep logits in (item component j, query component i) order with i padded to
  // qpad; the model's order is i * PX + j. Reorder the gating weights to match.
  packDense(m.gateLogits.weight.data(), p, px * qpad, m.gatingWidth,
            [&](int c) { return c % qpad < pq ? (c % qpad) * px + c / qpad : -1; }, [](int r) { return r; },
            plan.gateLogits);
  auto sourceRow = [&](int r) {
    const int h = r / p, rem = r % p;
    return h * p + (rem % pq) * px + rem / pq;
  };
  packDense(m.gateOut.weight.data(), m.gatingWidth, padRows(m.gatingWidth), m.heads * p,
            [&](int c) { return c < m.gatingWidth ? c : -1; }, sourceRow, plan.gateOut);
  plan.gateOut.bias.assign(plan.gateOut.outPad, 0.0f);
  if (!m.gateOut.bias.empty())
    for (int r = 0; r < m.heads * p; ++r) plan.gateOut.bias[r] = m.gateOut.bias[sourceRow(r)];
  return plan;
}

MolUserPlan buildMolUser(const ScorerModel& m, const MolPlan& plan, const float* u, const float* w) {
  MolUserPlan user;
  const int pq = m.queryComponents, dc = m.componentDim;
  std::vector<double> q = matVec(m.queryProj, 0, u, m.userDim);
  std::vector<float> rows(static_cast<size_t>(pq) * dc);
  for (int i = 0; i < pq; ++i) {
    double norm = 0;
    for (int c = 0; c < dc; ++c) {
      double v = q[i * dc + c] + (m.queryProj.bias.empty() ? 0 : m.queryProj.bias[i * dc + c]);
      q[i * dc + c] = v;
      norm += v * v;
    }
    // Normalised and divided by the temperature, so the kernel's dot products are the logits.
    const double scale = 1.0 / (std::max(std::sqrt(norm), 1e-12) * m.temperature);
    for (int c = 0; c < dc; ++c) rows[i * dc + c] = static_cast<float>(q[i * dc + c] * scale);
  }
  packDense(rows.data(), dc, pq, user.query);
  std::vector<double> g = matVec(m.gateUser, 0, u, m.userDim);
  user.gateBias.assign(padRows(m.gatingWidth), 0.0f);
  for (int o = 0; o < m.gatingWidth; ++o) user.gateBias[o] = static_cast<float>(g[o] + (m.gateUser.bias.empty() ? 0 : m.gateUser.bias[o]));
  user.headWeights.assign(w, w + m.heads);
  return user;
}

std::vector<float> buildDotQuery(const ScorerModel& m, const float* u, const float* w) {
  std::vector<float> q(m.itemDim, 0.0f);
  if (m.dotProjection.empty()) {
    for (int j = 0; j < m.itemDim; ++j) q[j] = w[0] * u[j];
    return q;
  }
  for (int j = 0; j < m.itemDim; ++j) {
    double s = 0;
    for (int h = 0; h < m.heads; ++h) {
      const float* row = m.dotProjection.data() + (static_cast<size_t>(h) * m.itemDim + j) * m.userDim;
      double t = 0;
      for (int i = 0; i < m.userDim; ++i) t += static_cast<double>(row[i]) * u[i];
      s += w[h] * t;
    }
    q[j] = static_cast<float>(s);
  }
  return q;
}

void normalizeComponents(float* tile, int components, int dim) {
  for (int i = 0; i < components; ++i) {
    float* block = tile + static_cast<size_t>(i) * dim * kTileAds;
    for (int a = 0; a < kTileAds; ++a) {
      double norm = 0;
      for (int c = 0; c < dim; ++c) norm += static_cast<double>(block[c * kTileAds + a]) * block[c * kTileAds + a];
      const float scale = static_cast<float>(1.0 / std::max(std::sqrt(norm), 1e-12));
      for (int c = 0; c < dim; ++c) block[c * kTileAds + a] *= scale;
    }
  }
}

}  // namespace cangen
