#pragma once
// Serves a trained user-sequence model (sequence_model.h): a batch of users' recent events in,
// one query embedding per user and interest out, equal to the trainer's PyTorch module at the
// last event. CPU implementation here; encodeOnGpu runs the encoder's layers on a CUDA device
// (sequence/gpu_encoder.h) from the same windows, and the same host code finishes the queries.
//
// Per user: events whose item row is outside [1, numItems] (unknown ids, newer than the model)
// are skipped; of the rest, the most recent maxLen are encoded (the trainer's window). A user
// with no known event gets the model's output for an all-padding window, as PyTorch gives it:
// the encoder over one zero token (time gap 0) with an empty long-term pool. It is finite and
// the same for every such user: the model's "no history" query.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sequence/encoders.h"
#include "sequence/sequence_model.h"

namespace cangen {

namespace gpu {
class GpuSequenceEncoder;
}

// Row-major flat arrays, as the bindings copy them from typed arrays.
struct SequenceBatch {
  int64_t users = 0;
  const uint32_t* offsets = nullptr;  // users + 1, non-decreasing: user u's events are [offsets[u], offsets[u+1])
  size_t events = 0;                  // the length of items (and of actions and times when given)
  const int32_t* items = nullptr;     // model item rows (lib/sequence maps original ids to rows)
  const int32_t* actions = nullptr;   // action rows (0: none; out of range: 0), or null: no action embedding
  const double* times = nullptr;      // seconds (any order, any sign: only |t_i - t_j| is used), or null
};

// One user's window as last encoded, kept by SequenceSessionCache so that a history that only
// grew can be encoded from where it stopped (HSTU; see encodeWithSession).
struct SequenceSession {
  std::vector<int32_t> rows, actions;  // the window's events as given (actions when hasActions)
  std::vector<double> times;           // when hasTimes
  bool hasActions = false, hasTimes = false;
  sequence::HstuCache hstu;
  void clear() { *this = SequenceSession(); }
  size_t bytes() const;
};

// How much of a user's window a session saved.
struct SessionUse {
  int reused = 0;   // events whose keys and values came from the session
  int encoded = 0;  // events run through the encoder
};

class SequenceEncoder {
 public:
  explicit SequenceEncoder(const SequenceModel& model);
  ~SequenceEncoder();
  SequenceEncoder(const SequenceEncoder&) = delete;
  SequenceEncoder& operator=(const SequenceEncoder&) = delete;

  // out: users x interests x dim. Thread-safe (const; all scratch is per call).
  // Throws Error(InvalidArgument) for offsets that decrease or pass `events`, NonFinite for a
  // NaN or infinite time.
  void encode(const SequenceBatch& batch, float* out, int threads) const;

  // User `user` of `batch` (validated), as encode() gives it, reusing and updating `session`.
  // HSTU: when the user's window starts with the session's window, only the events after it are
  // encoded (exact: the attention is causal and its biases depend only on i - j); otherwise,
  // e.g. once the history passes maxLen and the window slides, the whole window is. SASRec's
  // positions count back from the last event, so every event moves: always the whole window.
  SessionUse encodeWithSession(const SequenceBatch& batch, int64_t user, SequenceSession& session, float* out) const;

  // What encodeWithSession would reuse and encode for user `user` of `batch` (validated) with
  // `session` (null: none), without encoding anything.
  SessionUse plan(const SequenceBatch& batch, int64_t user, const SequenceSession* session) const;
  // Multiply-adds of one encoded event attending to a full window (an upper bound per event).
  double macsPerEvent() const { return macsPerEvent_; }

  // As encode(), with the short-term encoder's layers (HSTU or SASRec) on CUDA device `gpuDevice`
  // for the whole batch at once (equal to encode() to about 1e-5 relative: the device sums in
  // another order). The windows are chosen and the long-term fusion and interest heads run on the
  // host, with encode()'s code. Throws Error(NoDevice) when CUDA is not compiled in or the device
  // is not usable (or was lost), Error(Internal) with the CUDA error on other failures. Device
  // calls are serialised per encoder. Sessions (encodeWithSession) stay on the CPU.
  void encodeOnGpu(const SequenceBatch& batch, float* out, int gpuDevice, int threads) const;

  int dim() const { return dim_; }
  int interests() const { return interests_; }
  int maxLen() const { return maxLen_; }
  int numItems() const { return numItems_; }
  // The item tower's output per row, (numItems + 1) x dim: the tokens the encoder reads.
  const std::vector<float>& itemTable() const { return itemTable_; }

 private:
  SessionUse encodeUser(const SequenceBatch& batch, int64_t user, SequenceSession* session, float* out) const;
  // The events encoded for `user`: the most recent maxLen known ones, oldest first (empty: none).
  std::vector<uint32_t> windowOf(const SequenceBatch& batch, int64_t user) const;
  SessionUse planWindow(const SequenceBatch& batch, const std::vector<uint32_t>& events, const SequenceSession* session) const;
  void fillTokens(const SequenceBatch& batch, const std::vector<uint32_t>& events, int from, float* tokens) const;
  int reusableEvents(const SequenceSession& s, const SequenceBatch& b, const std::vector<uint32_t>& events, bool times) const;
  void fuseLongTerm(const float* tokens, int n, bool padding, float* state) const;
  void finishQueries(const float* state, float* out) const;

  int dim_, interests_, maxLen_, numItems_, numActions_;
  bool usesTimes_, normalizeQuery_;
  double macsPerEvent_;
  std::vector<float> itemTable_;
  std::vector<float> actionWeight_;
  std::unique_ptr<sequence::HstuEncoder> hstu_;
  std::unique_ptr<sequence::SasRecEncoder> sasrec_;
  // Long-term fusion and interests (absent when the model has none).
  std::vector<float> longScore_;
  std::unique_ptr<sequence::Linear> longProj_, fuseGate_, interestProj_;
  // The device copy for encodeOnGpu, made on first use (and dropped when its context is lost).
  mutable std::mutex gpuMutex_;
  mutable std::unique_ptr<gpu::GpuSequenceEncoder> gpu_;
};

// The checks encode() makes before it starts (offsets, times); throws as encode() does.
void validateSequenceBatch(const SequenceBatch& batch);

}  // namespace cangen
