#include "sequence/sequence_encoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "common/threads.h"
#include "sequence/encoders.h"
#include "sequence/gpu_encoder.h"

namespace cangen {

using sequence::Linear;

namespace {

// The item tower once for every row: id embedding plus the mean over the item's non-zero feature
// ids of the feature embeddings, summed over all of its feature slots (slot 0 reads feature row 0,
// the padding row, zero in a trained model), as the trainer's ItemTower computes it.
std::vector<float> buildItemTable(const SequenceModel& m) {
  std::vector<float> table = m.itemIdWeight;
  if (m.featureWeight.empty()) return table;
  const size_t d = m.dim, f = m.featuresPerItem;
  for (size_t row = 0; row <= static_cast<size_t>(m.numItems); ++row) {
    const int32_t* ids = m.featureIds.data() + row * f;
    const float count = static_cast<float>(std::max<size_t>(std::count_if(ids, ids + f, [](int32_t id) { return id > 0; }), 1));
    std::vector<float> sum(d, 0.0f);
    for (size_t s = 0; s < f; ++s) {
      const float* e = m.featureWeight.data() + static_cast<size_t>(ids[s]) * d;
      for (size_t c = 0; c < d; ++c) sum[c] += e[c];
    }
    for (size_t c = 0; c < d; ++c) table[row * d + c] += sum[c] / count;
  }
  return table;
}

constexpr float kLogWeightFloor = -60.0f;  // the trainer's LOG_WEIGHT_FLOOR

// Per layer: the projections (HSTU: uvqk and out, 5 d^2; SASRec: qkv, out and the 4d FFN, 12 d^2)
// and scores plus weighted values over up to maxLen keys (2 maxLen d).
double macsPerEventOf(const SequenceModel& m) {
  const double d = m.dim, projections = m.kind == SequenceKind::Hstu ? 5 * d * d : 12 * d * d;
  return m.layers() * (projections + 2.0 * m.maxLen * d);
}

}  // namespace

void validateSequenceBatch(const SequenceBatch& b) {
  if (b.users < 0) throw Error(ErrorCode::InvalidArgument, "Expected a non-negative number of users");
  if (b.users > 0 && (b.offsets == nullptr || (b.events > 0 && b.items == nullptr))) {
    throw Error(ErrorCode::InvalidArgument, "Expected offsets and items for a non-empty batch");
  }
  for (int64_t u = 0; u < b.users; ++u) {
    if (b.offsets[u + 1] < b.offsets[u]) {
      throw Error(ErrorCode::InvalidArgument, "Expected non-decreasing offsets but offsets[" + std::to_string(u + 1) + "] = " +
                                                  std::to_string(b.offsets[u + 1]) + " < offsets[" + std::to_string(u) +
                                                  "] = " + std::to_string(b.offsets[u]));
    }
  }
  if (b.users > 0 && b.offsets[b.users] > b.events) {
    throw Error(ErrorCode::InvalidArgument, "Expected offsets within the " + std::to_string(b.events) +
                                                " events but the last offset is " + std::to_string(b.offsets[b.users]));
  }
  if (b.times) {
    for (size_t e = 0; e < b.events; ++e) {
      if (!std::isfinite(b.times[e])) {
        throw Error(ErrorCode::NonFinite, "Expected finite times but times[" + std::to_string(e) + "] is " + std::to_string(b.times[e]));
      }
    }
  }
}

SequenceEncoder::SequenceEncoder(const SequenceModel& m)
    : dim_(m.dim), interests_(m.interests), maxLen_(m.maxLen), numItems_(m.numItems), numActions_(m.numActions),
      usesTimes_(m.kind == SequenceKind::Hstu && m.useTimes), normalizeQuery_(m.normalizeQuery), macsPerEvent_(macsPerEventOf(m)) {
  validateSequenceModel(m);
  itemTable_ = buildItemTable(m);
  actionWeight_ = m.actionWeight;
  if (m.kind == SequenceKind::Hstu) hstu_ = std::make_unique<sequence::HstuEncoder>(m);
  else sasrec_ = std::make_unique<sequence::SasRecEncoder>(m);
  if (m.longTerm) {
    longScore_ = m.longScore;
    longProj_ = std::make_unique<Linear>(m.longProj);
    fuseGate_ = std::make_unique<Linear>(m.fuseGate);
  }
  if (m.interests > 1) interestProj_ = std::make_unique<Linear>(m.interestProj);
}

SequenceEncoder::~SequenceEncoder() = default;  // here, where gpu::GpuSequenceEncoder is complete

void SequenceEncoder::encode(const SequenceBatch& batch, float* out, int threads) const {
  validateSequenceBatch(batch);
  if (batch.users == 0) return;
  ThreadLease lease(requestedThreads(threads, 0));
  const size_t perUser = static_cast<size_t>(interests_) * dim_;
  parallelFor(lease.threads(), batch.users, 1, [&](int64_t u) { encodeUser(batch, u, nullptr, out + u * perUser); });
}

SessionUse SequenceEncoder::encodeWithSession(const SequenceBatch& batch, int64_t user, SequenceSession& session, float* out) const {
  return encodeUser(batch, user, &session, out);
}

size_t SequenceSession::bytes() const {
  return sizeof(SequenceSession) + rows.capacity() * sizeof(int32_t) + actions.capacity() * sizeof(int32_t) +
         times.capacity() * sizeof(double) + hstu.bytes();
}

// How many events of the session's window begin the user's window unchanged (0: none usable).
int SequenceEncoder::reusableEvents(const SequenceSession& s, const SequenceBatch& b, const std::vector<uint32_t>& events,
                                    bool times) const {
  const size_t cached = s.rows.size();
  if (cached == 0 || cached > events.size() || s.hstu.length != static_cast<int>(cached)) return 0;
  if (s.hasActions != (b.actions != nullptr) || s.hasTimes != times) return 0;
  for (size_t k = 0; k < cached; ++k) {
    const uint32_t e = events[k];
    if (s.rows[k] != b.items[e] || (s.hasActions && s.actions[k] != b.actions[e]) || (s.hasTimes && s.times[k] != b.times[e])) return 0;
  }
  return static_cast<int>(cached);
}

// Tokens of events [from, events.size()) into rows 0, 1, ... of `tokens`: item row plus action.
void SequenceEncoder::fillTokens(const SequenceBatch& b, const std::vector<uint32_t>& events, int from, float* tokens) const {
  const int d = dim_;
  for (int j = from; j < static_cast<int>(events.size()); ++j) {
    const uint32_t e = events[j];
    float* t = tokens + static_cast<size_t>(j - from) * d;
    std::copy_n(itemTable_.data() + static_cast<size_t>(b.items[e]) * d, d, t);
    if (b.actions && !actionWeight_.empty()) {
      const int32_t a = b.actions[e] >= 0 && b.actions[e] <= numActions_ ? b.actions[e] : 0;
      const float* w = actionWeight_.data() + static_cast<size_t>(a) * d;
      for (int c = 0; c < d; ++c) t[c] += w[c];
    }
  }
}

std::vector<uint32_t> SequenceEncoder::windowOf(const SequenceBatch& b, int64_t user) const {
  std::vector<uint32_t> events;
  for (uint32_t e = b.offsets[user + 1]; e > b.offsets[user] && static_cast<int>(events.size()) < maxLen_; --e) {
    const int32_t row = b.items[e - 1];
    if (row >= 1 && row <= numItems_) events.push_back(e - 1);
  }
  std::reverse(events.begin(), events.end());
  return events;
}

// Only HSTU reuses a session, and only for a window of real events (see encodeWithSession).
SessionUse SequenceEncoder::planWindow(const SequenceBatch& b, const std::vector<uint32_t>& events, const SequenceSession* session) const {
  SessionUse use;
  if (events.empty()) return use;
  if (hstu_ && session) use.reused = reusableEvents(*session, b, events, usesTimes_ && b.times);
  use.encoded = static_cast<int>(events.size()) - use.reused;
  return use;
}

SessionUse SequenceEncoder::plan(const SequenceBatch& b, int64_t user, const SequenceSession* session) const {
  return planWindow(b, windowOf(b, user), session);
}

SessionUse SequenceEncoder::encodeUser(const SequenceBatch& b, int64_t user, SequenceSession* session, float* out) const {
  const int d = dim_;
  const std::vector<uint32_t> events = windowOf(b, user);
  const bool padding = events.empty();
  const int n = padding ? 1 : static_cast<int>(events.size());
  std::vector<double> times(n, 0.0);
  if (b.times)
    for (size_t j = 0; j < events.size(); ++j) times[j] = b.times[events[j]];
  const double* encoderTimes = usesTimes_ && b.times ? times.data() : nullptr;
  const SessionUse use = planWindow(b, events, session);
  if (session && use.reused == 0) session->clear();
  // Tokens (zero for the padding window) from event `first` on: a session needs only the new
  // ones, unless the long-term pool reads them all.
  const bool extends = hstu_ && session && !padding;
  const int first = extends && !longProj_ ? use.reused : 0;
  std::vector<float> tokens(static_cast<size_t>(n - first) * d, 0.0f);
  fillTokens(b, events, first, tokens.data());
  std::vector<float> state(d);
  if (extends) {
    if (use.encoded == 0) {
      state = session->hstu.state;
    } else {
      hstu_->extend(session->hstu, tokens.data() + static_cast<size_t>(use.reused - first) * d, use.encoded,
                    encoderTimes ? encoderTimes + use.reused : nullptr, state.data());
    }
    session->hasActions = b.actions != nullptr;
    session->hasTimes = encoderTimes != nullptr;
    for (int j = use.reused; j < n; ++j) {
      const uint32_t e = events[j];
      session->rows.push_back(b.items[e]);
      if (session->hasActions) session->actions.push_back(b.actions[e]);
      if (session->hasTimes) session->times.push_back(b.times[e]);
    }
  } else if (hstu_) {
    hstu_->lastState(tokens.data(), n, encoderTimes, state.data());
  } else {
    sasrec_->lastState(tokens.data(), n, padding, state.data());
  }
  if (longProj_) fuseLongTerm(tokens.data(), n, padding, state.data());
  finishQueries(state.data(), out);
  return use;
}

// Attention pooling over the window's tokens (before positions), projected, gated with the state.
void SequenceEncoder::fuseLongTerm(const float* tokens, int n, bool padding, float* state) const {
  const int d = dim_;
  std::vector<float> pooled(d, 0.0f), both(2 * d), long_(d), gate(d);
  if (!padding) {
    std::vector<float> logits(n);
    float top = -1e4f;  // the trainer's clamp of the maximum
    for (int j = 0; j < n; ++j) top = std::max(top, logits[j] = sequence::dot(longScore_.data(), tokens + static_cast<size_t>(j) * d, d));
    float total = 0;
    for (int j = 0; j < n; ++j) {
      const float w = std::exp(std::max(logits[j] - top, kLogWeightFloor));
      total += w;
      for (int c = 0; c < d; ++c) pooled[c] += w * tokens[static_cast<size_t>(j) * d + c];
    }
    for (int c = 0; c < d; ++c) pooled[c] /= std::max(total, 1e-30f);
  }
  longProj_->apply(pooled.data(), 1, long_.data());
  std::copy_n(state, d, both.data());
  std::copy_n(long_.data(), d, both.data() + d);
  fuseGate_->apply(both.data(), 1, gate.data());
  for (int c = 0; c < d; ++c) {
    const float g = sequence::sigmoid(gate[c]);
    state[c] = g * state[c] + (1 - g) * long_[c];
  }
}

// The K interest queries (u + W_k u + b_k, or u alone), L2-normalised when the head normalises.
void SequenceEncoder::finishQueries(const float* state, float* out) const {
  const int d = dim_;
  if (interestProj_) {
    interestProj_->apply(state, 1, out);
    for (int k = 0; k < interests_; ++k)
      for (int c = 0; c < d; ++c) out[k * d + c] += state[c];
  } else {
    std::copy_n(state, d, out);
  }
  if (!normalizeQuery_) return;
  for (int k = 0; k < interests_; ++k) {
    float* q = out + static_cast<size_t>(k) * d;
    const float norm = std::sqrt(sequence::dot(q, q, d));
    const float inv = 1.0f / std::max(norm, 1e-12f);
    for (int c = 0; c < d; ++c) q[c] *= inv;
  }
}

}  // namespace cangen
