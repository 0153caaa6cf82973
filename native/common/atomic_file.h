#pragma once
// Replacing a file so that a crash leaves the old contents or the new, never a mix: the bytes go
// to "<path>.tmp-<pid>-<n>" beside the target, are fsynced, renamed over the target, and the
// directory is fsynced so the rename itself is durable. A process killed mid-save leaves its
// temporary file behind; removeStaleTemporaries() deletes those of dead processes.
#include <cstddef>
#include <cstdint>
#include <string>

namespace cangen {

// Throws Error(Io) when any step fails, including the directory fsync (the new file is then in
// place but might not survive a power loss).
void replaceFileAtomically(const std::string& path, const uint8_t* data, size_t size);

// Deletes "<path>.tmp-<pid>-<n>" files whose process is gone, or that are older than
// kStaleTemporaryAgeSeconds (a pid reused by another process). Best effort; returns how many.
constexpr long kStaleTemporaryAgeSeconds = 3600;
size_t removeStaleTemporaries(const std::string& path);

// The directory fsync, replaceable by tests to simulate a failing file system.
extern int (*syncDirectoryForTest)(int fd);

}  // namespace cangen
