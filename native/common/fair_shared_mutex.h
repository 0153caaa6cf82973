#pragma once
// A shared (reader-writer) lock that a steady stream of readers cannot starve a writer with.
// glibc's std::shared_mutex prefers readers: while any search holds the lock, new searches get
// in, so back-to-back searches keep a write waiting for as long as they keep coming. Here a
// writer that arrives closes the door to new readers; the readers already inside finish, and
// the writer enters as soon as the last of them leaves. So a write waits at most for the longest
// search already running (plus another writer ahead of it), never for searches that start later.
// When the writer leaves, the readers and writers waiting at the door compete for it again
// (neither side is preferred then, so a stream of writes cannot starve searches either).
// Meets the standard Lockable and SharedLockable requirements (std::unique_lock, std::shared_lock).
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <shared_mutex>  // std::shared_lock, how callers take it shared

namespace cangen {

class FairSharedMutex {
 public:
  FairSharedMutex() = default;
  FairSharedMutex(const FairSharedMutex&) = delete;
  FairSharedMutex& operator=(const FairSharedMutex&) = delete;

  void lock() {
    std::unique_lock guard(state_);
    door_.wait(guard, [&] { return !writerAtDoor_; });  // one writer past the door at a time
    writerAtDoor_ = true;                               // from here on no new reader enters
    drained_.wait(guard, [&] { return readers_ == 0; });
  }
  bool try_lock() {
    std::lock_guard guard(state_);
    if (writerAtDoor_ || readers_ != 0) return false;
    writerAtDoor_ = true;
    return true;
  }
  void unlock() {
    {
      std::lock_guard guard(state_);
      writerAtDoor_ = false;
    }
    door_.notify_all();
  }

  void lock_shared() {
    std::unique_lock guard(state_);
    door_.wait(guard, [&] { return !writerAtDoor_; });
    ++readers_;
  }
  bool try_lock_shared() {
    std::lock_guard guard(state_);
    if (writerAtDoor_) return false;
    ++readers_;
    return true;
  }
  void unlock_shared() {
    bool lastBeforeWriter = false;
    {
      std::lock_guard guard(state_);
      --readers_;
      lastBeforeWriter = writerAtDoor_ && readers_ == 0;
    }
    if (lastBeforeWriter) drained_.notify_one();  // only the writer past the door waits on drained_
  }

 private:
  std::mutex state_;
  std::condition_variable door_;     // waiters for writerAtDoor_ to clear: readers and writers
  std::condition_variable drained_;  // the writer past the door, waiting for readers_ to reach 0
  size_t readers_ = 0;
  bool writerAtDoor_ = false;  // a writer holds the lock or waits for the readers inside to leave
};

}  // namespace cangen
