#include "scorer/scorer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>

#include "common/error.h"
#include "common/limits.h"
#include "common/parallel.h"
#include "common/threads.h"
#include "flat/exact_search.h"
#include "flat/panels.h"
#include "flat/scan.h"
#include "flat/topk.h"
#include "scorer/gpu_scorer.h"
#include "scorer/plan.h"
#include "scorer/scorer_internal.h"

namespace cangen {

using scorer_detail::kTilesPerChunk;
using scorer_detail::offer;
using scorer_detail::tileMask;
using scorer_detail::tilesOf;

namespace {

std::vector<float> unpack(const PackedDense& p) {
  std::vector<float> w(static_cast<size_t>(p.out) * p.in);
  for (int r = 0; r < p.out; ++r)
    for (int c = 0; c < p.in; ++c)
      w[static_cast<size_t>(r) * p.in + c] =
          p.packed[static_cast<size_t>(r / kRowBlock) * p.in * kRowBlock + static_cast<size_t>(c) * kRowBlock + r % kRowBlock];
  return w;
}

}  // namespace

// The ads a search sees. Own: count_ ads in insertion order, all live. Attached: the index's
// slots, `eligible` its live (or filtered) ones.
struct Scorer::Table {
  size_t count = 0;
  const uint64_t* eligible = nullptr;  // null: every slot below count
  std::function<int64_t(size_t)> id;
  std::function<std::optional<uint32_t>(int64_t)> slot;  // live ads only
  bool attached = false;
};

Scorer::Scorer(ScorerModel model, int threads, Precision precision)
    : model_(std::move(model)),
      threads_(std::max(threads, 0)),
      kernels_(bestTileKernels()),
      precision_(precision),
      bf16Kernels_(bestTileKernelsBf16()) {
  validateModel(model_);
  if (precision_ == Precision::Int8 && model_.kind != ScorerKind::Dot) {
    throw Error(ErrorCode::InvalidArgument,
                std::string("Expected precision 'fp32' or 'bf16' for a scorer of kind '") + scorerKindName(model_.kind) +
                    "': int8 is for kind 'dot' (in an MLP or MoL it would reach only the per-ad inputs, a fraction of the work; they scan in bf16)");
  }
  switch (model_.kind) {
    case ScorerKind::Dot:
      planeRows_ = {model_.itemDim};
      break;
    case ScorerKind::Mlp:
      mlp_ = buildMlpPlan(model_, itemHalf_);
      planeRows_ = {mlp_.precomputedFirst ? padRows(model_.hidden[0].out) : model_.itemDim};
      break;
    case ScorerKind::Mol:
      mol_ = buildMolPlan(model_, itemHalf_, gateItem_);
      planeRows_ = {model_.itemComponents * model_.componentDim, padRows(model_.gatingWidth)};
      break;
  }
  planes_.resize(planeRows_.size());
  if (precision_ == Precision::Fp32) return;
  switch (model_.kind) {
    case ScorerKind::Dot: reduced_ = std::make_unique<ReducedPanels>(model_.itemDim, precision_); break;
    case ScorerKind::Mlp:
      mlpBf16_ = buildMlpPlanBf16(mlp_);
      if (!mlp_.precomputedFirst) wordRows_ = (model_.itemDim + 1) / 2;  // else layer 1 is an add of the fp32 plane
      break;
    case ScorerKind::Mol:
      molBf16_ = buildMolPlanBf16(mol_);
      wordRows_ = model_.itemComponents * molBf16_.keyPairs;
      break;
  }
}

void Scorer::resizePlanes(size_t slots) {
  for (size_t p = 0; p < planes_.size(); ++p) planes_[p].resize(tilesOf(slots) * kTileAds * planeRows_[p]);
  if (wordRows_ > 0) words_.resize(tilesOf(slots) * kTileAds * wordRows_);
  if (reduced_) reduced_->resize(slots);
}

Scorer::~Scorer() = default;

TileIn Scorer::planeTile(int plane, size_t tile) const {
  const size_t panel = static_cast<size_t>(planeRows_[plane]) * kPanelWidth;
  const float* lo = planes_[plane].data() + tile * 2 * panel;
  return TileIn{lo, lo + panel, kPanelWidth};
}

double Scorer::flopsPerPair() const {
  const ScorerModel& m = model_;
  switch (m.kind) {
    case ScorerKind::Dot: return 2.0 * m.itemDim;
    case ScorerKind::Mlp: {
      double f = mlp_.precomputedFirst ? m.hidden[0].out : 2.0 * m.hidden[0].out * m.itemDim;
      for (size_t l = 1; l < m.hidden.size(); ++l) f += 2.0 * m.hidden[l].in * m.hidden[l].out;
      return f + 2.0 * m.output.in;
    }
    case ScorerKind::Mol: {
      const double p = m.logits();
      return 2.0 * p * m.componentDim + 2.0 * p * m.gatingWidth + 2.0 * m.gatingWidth * m.heads * p + 4.0 * p * m.heads;
    }
  }
  return 0;
}

size_t Scorer::size() const {
  std::shared_lock lock(mutex_);
  return index_ ? index_->size() : count_;
}

bool Scorer::attached() const {
  std::shared_lock lock(mutex_);
  return index_ != nullptr;
}

void Scorer::withTable(const CompiledFilter* filter, const std::function<void(const Table&)>& read) const {
  std::shared_ptr<AdIndex> index;
  {
    std::shared_lock lock(mutex_);
    if (!index_) {
      if (filter) throw Error(ErrorCode::InvalidArgument, "Expected a scorer attached to the index that compiled the filter");
      read(Table{count_, nullptr, [&](size_t slot) { return ids_[slot]; },
                 [&](int64_t id) -> std::optional<uint32_t> {
                   auto it = slotOfId_.find(id);
                   if (it == slotOfId_.end()) return std::nullopt;
                   return it->second;
                 }});
      return;
    }
    index = index_;
  }
  // The index's lock, not ours: its writes change the planes (stage, commitKeep) under it.
  index->readSlots(filter, [&](const Catalog& catalog, const Bitmap& eligible) {
    read(Table{catalog.slots(), eligible.words.data(), [&](size_t slot) { return catalog.id(slot); },
               [&](int64_t id) { return catalog.find(id); }, true});
  });
}

void Scorer::attach(std::shared_ptr<AdIndex> index) {
  if (index->config().dim != model_.itemDim) {
    throw Error(ErrorCode::DimensionMismatch, "Expected an index of dim " + std::to_string(model_.itemDim) +
                                                  " (the model's itemDim) but received dim " + std::to_string(index->config().dim));
  }
  std::unique_lock lock(mutex_);
  if (index_) throw Error(ErrorCode::InvalidArgument, "Expected a scorer not yet attached: this one reads an index already");
  if (count_ > 0) {
    throw Error(ErrorCode::InvalidArgument, "Expected a scorer with no ads of its own (it holds " + std::to_string(count_) +
                                                "): an attached scorer reads every ad from the index");
  }
  index->attach(shared_from_this());  // stages every slot
  index_ = std::move(index);
}

void Scorer::stage(const float* vectors, size_t n, size_t first) {
  resizePlanes(first + n);
  precompute(vectors, n, first);
  firstDirtyAd_ = std::min(firstDirtyAd_, first);
}

void Scorer::prepareKeep(const std::vector<uint32_t>& keep) {
  keptPlanes_.clear();
  for (size_t p = 0; p < planes_.size(); ++p) {
    const int rows = planeRows_[p];
    AlignedBuffer<float> kept(tilesOf(keep.size()) * kTileAds * rows);
    for (size_t slot = 0; slot < keep.size(); ++slot) {
      const float* from = planes_[p].data() + panelOffset(keep[slot], rows, 0);
      float* to = kept.data() + panelOffset(slot, rows, 0);
      for (int r = 0; r < rows; ++r) to[static_cast<size_t>(r) * kPanelWidth] = from[static_cast<size_t>(r) * kPanelWidth];
    }
    keptPlanes_.push_back(std::move(kept));
  }
  keptWords_ = AlignedBuffer<uint32_t>(tilesOf(keep.size()) * kTileAds * wordRows_);
  if (reduced_) {
    keptReduced_ = std::make_unique<ReducedPanels>(model_.itemDim, precision_);
    keptReduced_->resize(keep.size());
  }
  encodeReduced(0, keep.size(), keptPlanes_, keptWords_, keptReduced_.get());
}

void Scorer::commitKeep() noexcept {
  planes_.swap(keptPlanes_);
  keptPlanes_.clear();
  words_.swap(keptWords_);
  keptWords_ = AlignedBuffer<uint32_t>();
  if (reduced_) reduced_.swap(keptReduced_);
  keptReduced_.reset();
  firstDirtyAd_ = 0;  // every slot moved
}

void Scorer::add(const int64_t* ids, const float* embeddings, size_t n) {
  if (n == 0) return;
  const int dim = model_.itemDim;
  for (size_t i = 0; i < n * dim; ++i) {
    if (!std::isfinite(embeddings[i])) {
      throw Error(ErrorCode::NonFinite, "Expected finite numbers in embeddings but embeddings[" + std::to_string(i / dim) +
                                            "][" + std::to_string(i % dim) + "] is " + std::to_string(embeddings[i]));
    }
  }
  std::unique_lock lock(mutex_);
  if (index_) throw Error(ErrorCode::InvalidArgument, "Expected ads written to the index this scorer is attached to, not added to it");
  std::unordered_set<int64_t> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const bool present = slotOfId_.count(ids[i]) != 0;
    if (present || !batch.insert(ids[i]).second) {
      throw Error(ErrorCode::DuplicateId, "Expected ids not already in the scorer but id " + std::to_string(ids[i]) +
                                              (present ? " is already present" : " appears twice in this batch") +
                                              "; nothing was added");
    }
  }
  if (count_ + n > UINT32_MAX - kTileAds) throw Error(ErrorCode::InvalidArgument, "A scorer holds at most 2^32 - 64 ads");
  const size_t first = count_;
  resizePlanes(first + n);
  precompute(embeddings, n, first);
  ids_.resize(first + n);
  slotOfId_.reserve(first + n);
  for (size_t i = 0; i < n; ++i) {
    ids_[first + i] = ids[i];
    slotOfId_.emplace(ids[i], static_cast<uint32_t>(first + i));
  }
  count_ = first + n;
  firstDirtyAd_ = std::min(firstDirtyAd_, first);
}

// Writes the planes of ads [firstSlot, firstSlot + n), 32 new ads at a time: their embeddings
// transposed into a tile, the per-ad layers run by the tile kernels, columns scattered to slots.
void Scorer::precompute(const float* embeddings, size_t n, size_t firstSlot) {
  const int dim = model_.itemDim;
  const size_t groups = (n + kTileAds - 1) / kTileAds;
  const int maxRows = std::max({dim, itemHalf_.outPad, gateItem_.outPad});
  ThreadLease lease(static_cast<int>(std::min<size_t>(requestedThreads(0, threads_), std::max<size_t>(groups, 1))));
  const int teams = lease.threads();
  parallelTeam(teams, [&](int team, int teamSize) {
    AlignedBuffer<float> x(static_cast<size_t>(dim) * kTileAds), out(static_cast<size_t>(maxRows) * kTileAds);
    for (size_t g = team; g < groups; g += teamSize) {
      const size_t begin = g * kTileAds, count = std::min<size_t>(kTileAds, n - begin);
      std::fill(x.data(), x.data() + x.size(), 0.0f);
      for (size_t a = 0; a < count; ++a)
        for (int j = 0; j < dim; ++j) x[static_cast<size_t>(j) * kTileAds + a] = embeddings[(begin + a) * dim + j];
      auto scatter = [&](int plane, const float* tile) {
        float* dst = planes_[plane].data();
        const int rows = planeRows_[plane];
        for (size_t a = 0; a < count; ++a)
          for (int r = 0; r < rows; ++r) dst[panelOffset(firstSlot + begin + a, rows, r)] = tile[r * kTileAds + a];
      };
      const TileIn in{x.data(), x.data() + 16, kTileAds};
      if (model_.kind == ScorerKind::Dot || (model_.kind == ScorerKind::Mlp && !mlp_.precomputedFirst)) {
        scatter(0, x.data());
      } else if (model_.kind == ScorerKind::Mlp) {
        kernels_.dense(itemHalf_, in, nullptr, nullptr, out.data());
        scatter(0, out.data());
      } else {
        kernels_.dense(itemHalf_, in, itemHalf_.bias.data(), nullptr, out.data());
        normalizeComponents(out.data(), model_.itemComponents, model_.componentDim);
        scatter(0, out.data());
        kernels_.dense(gateItem_, in, nullptr, nullptr, out.data());
        scatter(1, out.data());
      }
    }
  });
  encodeReduced(firstSlot, n, planes_, words_, reduced_.get());
}

Scorer::Prepared Scorer::prepare(const float* users, int nu, const float* w) const {
  const int dim = model_.userDim;
  for (size_t i = 0; i < static_cast<size_t>(nu) * dim; ++i) {
    if (!std::isfinite(users[i])) {
      throw Error(ErrorCode::NonFinite, "Expected finite numbers in users but users[" + std::to_string(i / dim) + "][" +
                                            std::to_string(i % dim) + "] is " + std::to_string(users[i]));
    }
  }
  for (int h = 0; h < model_.heads; ++h) {
    if (!std::isfinite(w[h])) throw Error(ErrorCode::NonFinite, "Expected finite head weights but weight " + std::to_string(h) + " is not");
  }
  Prepared p;
  for (int u = 0; u < nu; ++u) {
    const float* user = users + static_cast<size_t>(u) * dim;
    switch (model_.kind) {
      case ScorerKind::Dot: {
        std::vector<float> q = buildDotQuery(model_, user, w);
        p.dotQueries.insert(p.dotQueries.end(), q.begin(), q.end());
        p.dotPacked.emplace_back();
        packDense(q.data(), model_.itemDim, 1, p.dotPacked.back());
        break;
      }
      case ScorerKind::Mlp: p.mlp.push_back(buildMlpUser(model_, mlp_, user, w)); break;
      case ScorerKind::Mol: p.mol.push_back(buildMolUser(model_, mol_, user, w)); break;
    }
  }
  return p;
}

size_t Scorer::scratchFloats() const {
  switch (model_.kind) {
    case ScorerKind::Dot: return static_cast<size_t>(kRowBlock) * kTileAds;
    case ScorerKind::Mlp: return mlpScratchFloats(mlp_);
    case ScorerKind::Mol: return molScratchFloats(mol_);
  }
  return 0;
}

void Scorer::scoreTile(const Prepared& p, int user, const TileIn* planes, float* scratch, float* scores) const {
  switch (model_.kind) {
    case ScorerKind::Dot:
      kernels_.dense(p.dotPacked[user], planes[0], nullptr, nullptr, scratch);
      std::copy(scratch, scratch + kTileAds, scores);
      break;
    case ScorerKind::Mlp: kernels_.mlp(mlp_, p.mlp[user], planes[0], scratch, scores); break;
    case ScorerKind::Mol: kernels_.mol(mol_, p.mol[user], planes[0], planes[1], scratch, scores); break;
  }
}

// The request's own eligibility as bits over the table's slots, or empty: the table's.
std::vector<uint64_t> Scorer::eligibility(const ScorerRequest& r, const Table& t) const {
  if ((r.filter != nullptr) + (r.eligibleMask != nullptr) + (r.eligibleIds != nullptr) > 1) {
    throw Error(ErrorCode::InvalidArgument, "Expected at most one of an eligibility mask, eligible ids and a filter");
  }
  std::vector<uint64_t> bits;
  if (r.eligibleMask != nullptr) {
    if (t.attached) {
      throw Error(ErrorCode::InvalidArgument, "Expected eligible ids or a filter compiled by the attached index: "
                                              "an attached scorer has no insertion order for a mask to follow");
    }
    if (r.eligibleMaskLength != t.count) {
      throw Error(ErrorCode::DimensionMismatch, "Expected an eligibility mask of one byte per ad (" + std::to_string(t.count) +
                                                    ") but received " + std::to_string(r.eligibleMaskLength));
    }
    bits.assign((t.count + 63) / 64 + 1, 0);
    for (size_t i = 0; i < t.count; ++i)
      if (r.eligibleMask[i]) bits[i / 64] |= uint64_t{1} << (i % 64);
  } else if (r.eligibleIds != nullptr) {
    bits.assign((t.count + 63) / 64 + 1, 0);
    for (size_t i = 0; i < r.eligibleIdCount; ++i) {
      if (auto s = t.slot(r.eligibleIds[i])) bits[*s / 64] |= uint64_t{1} << (*s % 64);
    }
  }
  return bits;
}

std::vector<std::vector<uint32_t>> Scorer::candidateSlots(const ScorerRequest& r, const Table& t, const uint64_t* eligible) const {
  std::vector<std::vector<uint32_t>> lists(r.nu);
  for (int u = 0; u < r.nu; ++u) {
    const int64_t* ids = r.candidates + static_cast<size_t>(u) * r.candidatesPerUser;
    std::vector<uint32_t>& slots = lists[u];
    slots.reserve(r.candidatesPerUser);
    for (int i = 0; i < r.candidatesPerUser; ++i) {
      if (ids[i] == -1) continue;
      const std::optional<uint32_t> found = t.slot(ids[i]);
      if (!found) {
        if (t.attached) continue;  // removed since the first stage saw it
        throw Error(ErrorCode::InvalidArgument, "Expected candidate ids among the scorer's ads but candidates[" +
                                                    std::to_string(u) + "][" + std::to_string(i) + "] = " +
                                                    std::to_string(ids[i]) + " is not one of them");
      }
      const uint32_t s = *found;
      if (eligible == nullptr || ((eligible[s / 64] >> (s % 64)) & 1)) slots.push_back(s);
    }
    // Sorted for locality, repeats ranked once.
    std::sort(slots.begin(), slots.end());
    slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  }
  return lists;
}

void Scorer::searchCpu(const Prepared& p, const ScorerRequest& r, size_t count, const uint64_t* eligible,
                       const std::vector<std::vector<uint32_t>>* candidates, int64_t* outSlots, float* outScores) const {
  const int nu = r.nu, k = r.k;
  const size_t tiles = tilesOf(count);
  const size_t nPlanes = planes_.size();

  // Work items: (user or -1 for every user, tile index or first candidate position).
  std::vector<std::pair<int, size_t>> items;
  if (candidates == nullptr) {
    for (size_t t = 0; t < tiles; t += kTilesPerChunk) items.emplace_back(-1, t);
  } else {
    for (int u = 0; u < nu; ++u)
      for (size_t i = 0; i < (*candidates)[u].size(); i += kTilesPerChunk * kTileAds) items.emplace_back(u, i);
  }
  // Lease only what the scan (items) and the merge (users) can keep busy.
  ThreadLease lease(static_cast<int>(std::min<size_t>(requestedThreads(r.threads, threads_), std::max<size_t>({items.size(), static_cast<size_t>(nu), 1}))));
  const int threads = lease.threads();
  const int teams = static_cast<int>(std::max<size_t>(1, std::min<size_t>(threads, items.size())));
  const size_t scratchSize = scratchFloats();
  size_t gatherFloats = 0;
  for (int rows : planeRows_) gatherFloats += static_cast<size_t>(rows) * kTileAds;

  // Fused: per-team collectors. Unfused: a score per (user, slot), selected afterwards.
  std::vector<std::vector<TopKCollector>> collectors;
  std::vector<float> all;
  if (r.fused) {
    collectors.assign(teams, std::vector<TopKCollector>(nu, TopKCollector(k)));
  } else {
    checkResultBudget(nu, static_cast<int64_t>(count), sizeof(float), "unfused scores (one per user and ad)");
    all.assign(static_cast<size_t>(nu) * count, std::numeric_limits<float>::quiet_NaN());
  }
  auto sink = [&](int team, int user, const uint32_t* slots, size_t first, uint32_t mask, const float* scores) {
    if (r.fused) {
      offer(collectors[team][user], scores, mask, slots, first);
      return;
    }
    float* row = all.data() + static_cast<size_t>(user) * count;
    for (uint32_t m = mask; m != 0; m &= m - 1) {
      const int a = __builtin_ctz(m);
      row[slots ? slots[first + a] : first + a] = scores[a];
    }
  };

  const bool dotScan = model_.kind == ScorerKind::Dot && candidates == nullptr && r.fused;
  std::atomic<size_t> next{0};
  parallelTeam(teams, [&](int team, int) {
    AlignedBuffer<float> scratch(scratchSize), gathered(gatherFloats);
    alignas(64) float scores[kTileAds];
    TileIn in[2];
    for (size_t item = next.fetch_add(1); item < items.size() && !r.cancel.raised(); item = next.fetch_add(1)) {
      const auto [user, start] = items[item];
      if (dotScan) {
        // The dot kind is the exact index's problem: reuse its fused scan over the same panels.
        const PanelView view{planes_[0].data(), nullptr, count, model_.itemDim};
        const size_t endTile = std::min(tiles, start + kTilesPerChunk);
        bestScanFunction()(view, p.dotQueries.data(), nu, start * 2, std::min(endTile * 2, panelCount(count)), eligible,
                           collectors[team].data());
        continue;
      }
      if (user < 0) {
        for (size_t t = start; t < std::min(tiles, start + kTilesPerChunk); ++t) {
          const uint32_t mask = tileMask(t, count, eligible);
          if (mask == 0) continue;
          for (size_t pl = 0; pl < nPlanes; ++pl) in[pl] = planeTile(static_cast<int>(pl), t);
          for (int u = 0; u < nu; ++u) {
            scoreTile(p, u, in, scratch.data(), scores);
            sink(team, u, nullptr, t * kTileAds, mask, scores);
          }
        }
        continue;
      }
      const std::vector<uint32_t>& slots = (*candidates)[user];
      const size_t end = std::min(slots.size(), start + kTilesPerChunk * kTileAds);
      for (size_t first = start; first < end; first += kTileAds) {
        const size_t n = std::min<size_t>(kTileAds, end - first);
        float* dst = gathered.data();
        for (size_t pl = 0; pl < nPlanes; ++pl) {
          const int rows = planeRows_[pl];
          const float* src = planes_[pl].data();
          std::fill(dst, dst + static_cast<size_t>(rows) * kTileAds, 0.0f);
          for (size_t a = 0; a < n; ++a) {
            const size_t base = panelOffset(slots[first + a], rows, 0);
            for (int row = 0; row < rows; ++row) dst[row * kTileAds + a] = src[base + static_cast<size_t>(row) * kPanelWidth];
          }
          in[pl] = TileIn{dst, dst + 16, kTileAds};
          dst += static_cast<size_t>(rows) * kTileAds;
        }
        scoreTile(p, user, in, scratch.data(), scores);
        sink(team, user, slots.data(), first, n == kTileAds ? 0xffffffffu : (1u << n) - 1, scores);
      }
    }
  });
  r.cancel.check();

  // Merge (fused) or select (unfused) per user.
  const int userTeams = std::max(1, std::min(threads, nu));
  parallelTeam(userTeams, [&](int team, int teamSize) {
    for (int u = team; u < nu; u += teamSize) {
      std::vector<ScoredSlot> best;
      if (r.fused) {
        TopKCollector& merged = collectors[0][u];
        for (int t = 1; t < teams; ++t) merged.append(collectors[t][u]);
        best = merged.sorted();
      } else {
        const float* row = all.data() + static_cast<size_t>(u) * count;
        for (size_t s = 0; s < count; ++s)
          if (!std::isnan(row[s])) best.push_back({row[s], static_cast<uint32_t>(s)});
        auto better = [](const ScoredSlot& a, const ScoredSlot& b) { return a.score > b.score || (a.score == b.score && a.slot < b.slot); };
        const size_t keep = std::min<size_t>(k, best.size());
        std::nth_element(best.begin(), best.begin() + (keep ? keep - 1 : 0), best.end(), better);
        best.resize(keep);
        std::sort(best.begin(), best.end(), better);
      }
      for (size_t i = 0; i < best.size() && i < static_cast<size_t>(k); ++i) {
        outSlots[static_cast<size_t>(u) * k + i] = best[i].slot;
        outScores[static_cast<size_t>(u) * k + i] = best[i].score;
      }
    }
  });
}

bool Scorer::searchGpu(const Prepared& p, const ScorerRequest& r, size_t count, const uint64_t* eligible, int64_t* outSlots,
                       float* outScores, std::string* fallbackReason) const {
  if (r.k > gpu::kMaxScorerGpuK) {
    throw Error(ErrorCode::InvalidArgument, "Expected k <= " + std::to_string(gpu::kMaxScorerGpuK) + " on the GPU but received " +
                                                std::to_string(r.k));
  }
  std::lock_guard<std::mutex> gpuLock(gpuMutex_);
  try {
    return searchGpuLocked(p, r, count, eligible, outSlots, outScores, fallbackReason);
  } catch (const Error& e) {
    // No device, or a lost CUDA context: the cached device state is dropped and rebuilt next call.
    if (e.code() == ErrorCode::NoDevice) gpu_.reset();
    throw;
  }
}

bool Scorer::searchGpuLocked(const Prepared& p, const ScorerRequest& r, size_t count, const uint64_t* eligible, int64_t* outSlots,
                             float* outScores, std::string* fallbackReason) const {
  if (!gpu_ || gpuDeviceId_ != r.gpuDevice) {
    gpu_ = std::make_unique<gpu::GpuScorer>(r.gpuDevice, model_);
    gpuDeviceId_ = r.gpuDevice;
    firstDirtyAd_ = 0;
  }
  gpu::GpuPlaneView view;
  for (size_t pl = 0; pl < planes_.size(); ++pl) view.planes.push_back(planes_[pl].data());
  view.rows = planeRows_;
  view.count = count;
  gpu_->sync(view, firstDirtyAd_);
  firstDirtyAd_ = count;
  std::vector<gpu::GpuUserInputs> users(r.nu);
  for (int u = 0; u < r.nu; ++u) {
    gpu::GpuUserInputs& in = users[u];
    switch (model_.kind) {
      case ScorerKind::Dot:
        in.query.assign(p.dotQueries.begin() + static_cast<size_t>(u) * model_.itemDim,
                        p.dotQueries.begin() + static_cast<size_t>(u + 1) * model_.itemDim);
        break;
      case ScorerKind::Mlp:
        if (!mlp_.precomputedFirst) in.first = unpack(p.mlp[u].first);
        in.firstBias.assign(p.mlp[u].firstBias.begin(), p.mlp[u].firstBias.begin() + model_.hidden[0].out);
        in.outWeights.assign(p.mlp[u].outWeights.begin(), p.mlp[u].outWeights.begin() + model_.output.in);
        in.outBias = p.mlp[u].outBias;
        break;
      case ScorerKind::Mol:
        in.query = unpack(p.mol[u].query);
        in.gateBias.assign(p.mol[u].gateBias.begin(), p.mol[u].gateBias.begin() + model_.gatingWidth);
        in.headWeights = p.mol[u].headWeights;
        break;
    }
  }
  return gpu_->search(users, eligible, r.k, outSlots, outScores, fallbackReason);
}

SearchResult Scorer::search(const ScorerRequest& r) const {
  if (r.nu < 1) throw Error(ErrorCode::InvalidArgument, "Expected at least one user but received " + std::to_string(r.nu));
  if (r.k < 1) throw Error(ErrorCode::InvalidArgument, "Expected k >= 1 but received " + std::to_string(r.k));
  checkPrecisionRequest(r);
  Prepared prepared = prepare(r.users, r.nu, r.headWeights);
  SearchResult result = SearchResult::padded(r.nu, r.k);
  std::vector<int64_t> slots(static_cast<size_t>(r.nu) * r.k, -1);

  withTable(r.filter, [&](const Table& t) {
    std::vector<uint64_t> eligible = eligibility(r, t);
    const uint64_t* bits = eligible.empty() ? t.eligible : eligible.data();
    if (t.count > 0) {
      if (r.candidates != nullptr) {
        std::vector<std::vector<uint32_t>> lists = candidateSlots(r, t, bits);
        searchCpu(prepared, r, t.count, nullptr, &lists, slots.data(), result.scores.data());
      } else if (precision_ != Precision::Fp32) {
        searchReduced(prepared, r, t.count, bits, slots.data(), result.scores.data());
      } else if (r.device == Device::Gpu) {
        if (!searchGpu(prepared, r, t.count, bits, slots.data(), result.scores.data(), &result.gpuFallback)) {
          std::fill(slots.begin(), slots.end(), int64_t{-1});
          searchCpu(prepared, r, t.count, bits, nullptr, slots.data(), result.scores.data());
        }
      } else {
        searchCpu(prepared, r, t.count, bits, nullptr, slots.data(), result.scores.data());
      }
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] >= 0) {
        result.ids[i] = t.id(static_cast<size_t>(slots[i]));
        result.counts[i / r.k]++;
      } else {
        result.scores[i] = std::nanf("");
      }
    }
  });
  return result;
}

std::vector<float> Scorer::score(const float* users, int nu, const float* w, const int64_t* ids, size_t n,
                                 int threads) const {
  if (nu < 1) throw Error(ErrorCode::InvalidArgument, "Expected at least one user but received " + std::to_string(nu));
  Prepared prepared = prepare(users, nu, w);
  std::vector<float> out;
  withTable(nullptr, [&](const Table& t) {
    // One candidate list (the ids, or every ad: the own in insertion order, the index's live
    // ones in slot order) for every user, scored unfused.
    std::vector<uint32_t> slots;
    if (ids == nullptr) {
      for (size_t s = 0; s < t.count; ++s)
        if (t.eligible == nullptr || ((t.eligible[s / 64] >> (s % 64)) & 1)) slots.push_back(static_cast<uint32_t>(s));
    } else {
      slots.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        const std::optional<uint32_t> found = t.slot(ids[i]);
        if (!found) throw Error(ErrorCode::InvalidArgument, "Expected ids among the scorer's ads but ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " is not one of them");
        slots.push_back(*found);
      }
    }
    out = scoreSlots(prepared, nu, slots, threads);
  });
  return out;
}

std::vector<float> Scorer::scoreSlots(const Prepared& prepared, int nu, const std::vector<uint32_t>& slots, int threads) const {
  const size_t n = slots.size();
  checkResultBudget(nu, static_cast<int64_t>(n), 2 * sizeof(float), "scores");  // native, then the JS copy
  std::vector<float> out(static_cast<size_t>(nu) * n);
  if (n == 0) return out;
  ThreadLease lease(static_cast<int>(std::min<size_t>(requestedThreads(threads, threads_), (n + kTileAds - 1) / kTileAds)));
  const int teams = lease.threads();
  size_t gatherFloats = 0;
  for (int rows : planeRows_) gatherFloats += static_cast<size_t>(rows) * kTileAds;
  parallelTeam(teams, [&](int team, int teamSize) {
    AlignedBuffer<float> scratch(scratchFloats()), gathered(gatherFloats);
    alignas(64) float scores[kTileAds];
    TileIn in[2];
    for (size_t first = static_cast<size_t>(team) * kTileAds; first < n; first += static_cast<size_t>(teamSize) * kTileAds) {
      const size_t m = std::min<size_t>(kTileAds, n - first);
      float* dst = gathered.data();
      for (size_t pl = 0; pl < planes_.size(); ++pl) {
        const int rows = planeRows_[pl];
        std::fill(dst, dst + static_cast<size_t>(rows) * kTileAds, 0.0f);
        for (size_t a = 0; a < m; ++a)
          for (int row = 0; row < rows; ++row) dst[row * kTileAds + a] = planes_[pl][panelOffset(slots[first + a], rows, row)];
        in[pl] = TileIn{dst, dst + 16, kTileAds};
        dst += static_cast<size_t>(rows) * kTileAds;
      }
      for (int u = 0; u < nu; ++u) {
        scoreTile(prepared, u, in, scratch.data(), scores);
        std::copy(scores, scores + m, out.begin() + static_cast<size_t>(u) * n + first);
      }
    }
  });
  return out;
}

}  // namespace cangen
