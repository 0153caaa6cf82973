#include "sequence/session_cache.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "common/parallel.h"
#include "common/threads.h"

namespace cangen {

namespace {
constexpr int64_t kPlannedUsers = 8;
}  // namespace

SequenceSessionCache::SequenceSessionCache(std::shared_ptr<const SequenceEncoder> encoder, size_t maxBytes)
    : encoder_(std::move(encoder)), maxBytes_(maxBytes) {
  if (!encoder_) throw Error(ErrorCode::InvalidArgument, "Expected an encoder for the session cache");
}

void SequenceSessionCache::encode(const std::vector<std::string>& users, const SequenceBatch& batch, float* out, int threads) {
  ThreadLease lease(requestedThreads(threads, 0));
  encodeUsers(users, batch, out, lease.threads());
}

void SequenceSessionCache::encodeHere(const std::vector<std::string>& users, const SequenceBatch& batch, float* out) {
  encodeUsers(users, batch, out, 1);
}

// `threads`: already leased (or the calling thread alone).
void SequenceSessionCache::encodeUsers(const std::vector<std::string>& users, const SequenceBatch& batch, float* out, int threads) {
  validateSequenceBatch(batch);
  if (users.size() != static_cast<size_t>(batch.users)) {
    throw Error(ErrorCode::DimensionMismatch, "Expected one user id per history (" + std::to_string(batch.users) +
                                                  ") but received " + std::to_string(users.size()));
  }
  if (batch.users == 0) return;
  // Sessions leave the cache while their users are encoded, so no two threads share one.
  std::vector<std::unique_ptr<SequenceSession>> sessions(users.size());
  for (size_t u = 0; u < users.size(); ++u) sessions[u] = take(users[u]);
  std::vector<SessionUse> uses(users.size());
  const size_t perUser = static_cast<size_t>(encoder_->interests()) * encoder_->dim();
  parallelFor(threads, batch.users, 1, [&](int64_t u) {
    if (!sessions[u]) sessions[u] = std::make_unique<SequenceSession>();
    uses[u] = encoder_->encodeWithSession(batch, u, *sessions[u], out + u * perUser);
  });
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t u = 0; u < users.size(); ++u) {
    totals_.reusedEvents += uses[u].reused;
    totals_.encodedEvents += uses[u].encoded;
  }
  for (size_t u = 0; u < users.size(); ++u) {
    if (sessions[u] && !sessions[u]->rows.empty()) put(users[u], std::move(sessions[u]));
  }
}

double SequenceSessionCache::plannedMacs(const std::vector<std::string>& users, const SequenceBatch& batch) const {
  validateSequenceBatch(batch);
  // A call of many users goes to a worker unplanned: planning walks every window once more, and the
  // calls worth running inline are a service's requests of one user or a few.
  if (batch.users > kPlannedUsers) return std::numeric_limits<double>::infinity();
  const int64_t count = std::min<int64_t>(batch.users, static_cast<int64_t>(users.size()));
  int64_t events = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  for (int64_t u = 0; u < count; ++u) {
    auto it = entries_.find(users[u]);
    events += encoder_->plan(batch, u, it == entries_.end() ? nullptr : it->second.session.get()).encoded;
  }
  return static_cast<double>(events) * encoder_->macsPerEvent();
}

std::unique_ptr<SequenceSession> SequenceSessionCache::take(const std::string& user) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(user);
  if (it == entries_.end()) return nullptr;
  std::unique_ptr<SequenceSession> session = std::move(it->second.session);
  removeLocked(it);
  return session;
}

// Called with the mutex held. The newest session of a user wins; the least recently used go
// until the cache fits its budget (a session larger than the whole budget is not kept).
void SequenceSessionCache::put(const std::string& user, std::unique_ptr<SequenceSession> session) {
  auto existing = entries_.find(user);
  if (existing != entries_.end()) removeLocked(existing);
  const size_t bytes = session->bytes() + user.size();
  if (bytes > maxBytes_) return;
  while (bytes_ + bytes > maxBytes_ && !recency_.empty()) {
    removeLocked(entries_.find(recency_.back()));
    ++totals_.evictions;
  }
  recency_.push_front(user);
  entries_.emplace(user, Entry{std::move(session), bytes, recency_.begin()});
  bytes_ += bytes;
}

void SequenceSessionCache::removeLocked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  recency_.erase(it->second.recency);
  entries_.erase(it);
}

void SequenceSessionCache::forget(const std::vector<std::string>& users) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& user : users) {
    auto it = entries_.find(user);
    if (it != entries_.end()) removeLocked(it);
  }
}

void SequenceSessionCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
  recency_.clear();
  bytes_ = 0;
}

SessionCacheStats SequenceSessionCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SessionCacheStats s = totals_;
  s.sessions = static_cast<int64_t>(entries_.size());
  s.bytes = static_cast<int64_t>(bytes_);
  s.maxBytes = static_cast<int64_t>(maxBytes_);
  return s;
}

}  // namespace cangen
