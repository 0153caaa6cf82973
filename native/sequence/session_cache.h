#pragma once
// Per-user sessions of a SequenceEncoder, kept between calls within a byte budget (least recently
// used first out), so that a user whose history grew by a few events costs a few steps, not a
// full run. The cache only saves work: every call returns what SequenceEncoder::encode returns
// for the same histories, whatever the cache holds (a session is used only when the user's
// window starts with it; see SequenceEncoder::encodeWithSession).
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sequence/sequence_encoder.h"

namespace cangen {

struct SessionCacheStats {
  int64_t sessions = 0;
  int64_t bytes = 0;
  int64_t maxBytes = 0;
  int64_t reusedEvents = 0;   // events whose state came from a session, over all calls
  int64_t encodedEvents = 0;  // events run through the encoder, over all calls
  int64_t evictions = 0;
};

class SequenceSessionCache {
 public:
  SequenceSessionCache(std::shared_ptr<const SequenceEncoder> encoder, size_t maxBytes);

  // As encoder.encode(batch, out, threads), user u's session being users[u]'s. A user named twice
  // in one call, or by two calls at once, is encoded in full by all but one of them.
  void encode(const std::vector<std::string>& users, const SequenceBatch& batch, float* out, int threads);
  // As encode, one user after another on the calling thread, leasing nothing from the thread
  // budget (so it never waits for one): for calls small enough to run on Node's main thread.
  void encodeHere(const std::vector<std::string>& users, const SequenceBatch& batch, float* out);
  // The multiply-adds encode(users, batch, ...) would spend with the sessions held now (an upper
  // bound; validates the batch as encode does): lets a caller run a call this small inline.
  // Infinite, unplanned, for a batch of more than 8 users.
  double plannedMacs(const std::vector<std::string>& users, const SequenceBatch& batch) const;
  void forget(const std::vector<std::string>& users);
  void clear();
  SessionCacheStats stats() const;
  const SequenceEncoder& encoder() const { return *encoder_; }

 private:
  struct Entry {
    std::unique_ptr<SequenceSession> session;
    size_t bytes = 0;
    std::list<std::string>::iterator recency;
  };
  void encodeUsers(const std::vector<std::string>& users, const SequenceBatch& batch, float* out, int threads);
  std::unique_ptr<SequenceSession> take(const std::string& user);
  void put(const std::string& user, std::unique_ptr<SequenceSession> session);
  void removeLocked(std::unordered_map<std::string, Entry>::iterator it);

  std::shared_ptr<const SequenceEncoder> encoder_;
  const size_t maxBytes_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> recency_;  // most recent first
  size_t bytes_ = 0;
  SessionCacheStats totals_;
};

}  // namespace cangen
