#pragma once
// The two short-term encoders, each from a window of n tokens (n x dim, oldest first, n <= maxLen)
// to the final-normed state at the last token. Internal to native/sequence.
#include <vector>

#include "sequence/layers.h"
#include "sequence/sequence_model.h"

namespace cangen::sequence {

// The bucket of a time gap, as the trainer's time_buckets: floor(ln(max(|dt|, 1)) / 0.301) in
// float32, capped at `buckets`.
int timeBucket(double gap, int buckets);

// What HSTU keeps of a window to encode one more event without redoing the others: the attention
// is causal and its biases depend only on i - j, so earlier positions never change. Per layer,
// every position's keys and values (after SiLU); the times; the last final-normed state.
struct HstuCache {
  int length = 0;
  std::vector<double> times;                      // length (with times)
  std::vector<std::vector<float>> keys, values;   // per layer: length x dim
  std::vector<float> state;                       // dim: the state at the last position
  size_t bytes() const;
};

// What both encoders hold besides their layers: the shape and the final norm (read by the CUDA
// path, sequence/gpu_encoder.h, to copy them to its device).
class EncoderCommon {
 public:
  int dim() const { return dim_; }
  int heads() const { return heads_; }
  int maxLen() const { return maxLen_; }
  int window() const { return window_; }
  const std::vector<float>& finalGamma() const { return finalGamma_; }
  const std::vector<float>& finalBeta() const { return finalBeta_; }

 protected:
  explicit EncoderCommon(const SequenceModel& m)
      : dim_(m.dim), heads_(m.heads), maxLen_(m.maxLen), window_(m.shortWindow), finalGamma_(m.finalNormGamma), finalBeta_(m.finalNormBeta) {}
  int dim_, heads_, maxLen_, window_;
  std::vector<float> finalGamma_, finalBeta_;
};

class HstuEncoder : public EncoderCommon {
 public:
  explicit HstuEncoder(const SequenceModel& model);
  // times: n seconds, or null for no time bias.
  void lastState(const float* tokens, int n, const double* times, float* out) const;
  // Encodes m >= 1 tokens after the cache's (whose length + m <= maxLen), adding theirs to it;
  // cache.state and out (may be null) get the state at the last. times: m seconds or null, as
  // for every earlier extend of this cache.
  void extend(HstuCache& cache, const float* tokens, int m, const double* times, float* out) const;

  // The weights as held here, for the CUDA path (sequence/gpu_encoder.h) to copy to its device.
  struct Layer {
    Linear uvqk, out;
    std::vector<float> positionBias, timeBias;
  };
  const std::vector<Layer>& layers() const { return layers_; }
  int timeBuckets() const { return timeBuckets_; }

 private:
  int timeBuckets_;
  std::vector<Layer> layers_;
};

class SasRecEncoder : public EncoderCommon {
 public:
  explicit SasRecEncoder(const SequenceModel& model);
  // padding: the window is one padding token (zero, no position), as PyTorch sees an empty history.
  void lastState(const float* tokens, int n, bool padding, float* out) const;

  // The weights as held here, for the CUDA path (sequence/gpu_encoder.h) to copy to its device.
  struct Block {
    std::vector<float> attnGamma, attnBeta, ffnGamma, ffnBeta;
    Linear qkv, out, ffnIn, ffnOut;
  };
  const std::vector<Block>& blocks() const { return blocks_; }
  const std::vector<float>& position() const { return position_; }

 private:
  std::vector<float> position_;
  std::vector<Block> blocks_;
};

// The first key a query at position i may attend to (causal, within the short window when set).
inline int firstKey(int i, int window) { return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0; }

}  // namespace cangen::sequence
