// AdIndex persistence. File layout (little-endian):
//   "CGNINDEX" | u32 format version | u32 reserved | u64 payload bytes | payload | u32 CRC-32C
// where the CRC covers everything before it, and the payload is a sequence of sections
//   u32 tag | u64 length | bytes
// A save writes a temporary file beside the target, fsyncs it, renames it over the target and
// fsyncs the directory, so a crash leaves either the old file or the new one, never a mix.
#include <fcntl.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "ann/ad_index.h"
#include "common/crc32c.h"
#include "common/error.h"

namespace cangen {

namespace {

constexpr char kMagic[8] = {'C', 'G', 'N', 'I', 'N', 'D', 'E', 'X'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8;
enum Tag : uint32_t { kConfig = 1, kCatalog = 2, kPanels = 3, kRows = 4, kFaiss = 5 };

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}
  template <typename T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
  }
  void string(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  // Opens a section; close it with end(mark).
  size_t begin(uint32_t tag) {
    put(tag);
    put<uint64_t>(0);
    return out_.size();
  }
  void end(size_t mark) {
    const uint64_t length = out_.size() - mark;
    std::memcpy(out_.data() + mark - sizeof(uint64_t), &length, sizeof length);
  }

 private:
  std::vector<uint8_t>& out_;
};

[[noreturn]] void corrupt(const std::string& what) {
  throw Error(ErrorCode::CorruptFile, "Corrupt index file: " + what);
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  const uint8_t* take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) corrupt("a section ends early");
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  std::string string() {
    const uint32_t n = get<uint32_t>();
    const auto* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  bool done() const { return p_ == end_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

void writeAll(int fd, const uint8_t* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::Io, "Could not write " + path + ": " + std::strerror(errno));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

void AdIndex::serialize(std::vector<uint8_t>& out) const {
  Writer w(out);
  size_t mark = w.begin(kConfig);
  w.put<uint8_t>(static_cast<uint8_t>(config_.kind));
  w.put<uint8_t>(static_cast<uint8_t>(config_.metric));
  w.put<uint8_t>(config_.opq);
  w.put<uint8_t>(config_.storeVectors);
  for (int v : {config_.dim, config_.nlist, config_.pqBytes, config_.hnswM, config_.efConstruction, config_.nprobe,
                config_.efSearch, config_.rerank}) {
    w.put<int32_t>(v);
  }
  w.string(config_.factory);
  w.end(mark);

  mark = w.begin(kCatalog);
  w.put<uint64_t>(catalog_.slots());
  w.bytes(catalog_.ids().data(), catalog_.slots() * sizeof(int64_t));
  w.bytes(catalog_.allAttributes().data(), catalog_.slots() * sizeof(AdAttributes));
  w.bytes(catalog_.liveSlots().words.data(), catalog_.liveSlots().words.size() * sizeof(uint64_t));
  w.end(mark);

  if (!faiss_) {
    mark = w.begin(kPanels);
    std::vector<float> row(config_.dim);
    for (size_t s = 0; s < panels_.size(); ++s) {
      panels_.read(s, row.data());
      w.bytes(row.data(), row.size() * sizeof(float));
    }
    w.end(mark);
    return;
  }
  if (rows_.size() > 0) {
    mark = w.begin(kRows);
    w.bytes(rows_.data(), rows_.size() * sizeof(float));
    w.end(mark);
  }
  mark = w.begin(kFaiss);
  faiss::VectorIOWriter blob;
  faiss::write_index(faiss_.get(), &blob);
  w.bytes(blob.data.data(), blob.data.size());
  w.end(mark);
}

void AdIndex::deserialize(const uint8_t* data, size_t size) {
  Reader r(data, size);
  bool sawCatalog = false;
  while (!r.done()) {
    const uint32_t tag = r.get<uint32_t>();
    const uint64_t length = r.get<uint64_t>();
    Reader s(r.take(length), length);
    switch (tag) {
      case kCatalog: {
        const uint64_t slots = s.get<uint64_t>();
        if (slots > UINT32_MAX) corrupt("slot count out of range");
        std::vector<int64_t> ids(slots);
        std::memcpy(ids.data(), s.take(slots * sizeof(int64_t)), slots * sizeof(int64_t));
        std::vector<AdAttributes> attributes(slots);
        std::memcpy(attributes.data(), s.take(slots * sizeof(AdAttributes)), slots * sizeof(AdAttributes));
        Bitmap live(slots);
        std::memcpy(live.words.data(), s.take(live.words.size() * sizeof(uint64_t)), live.words.size() * sizeof(uint64_t));
        catalog_.restore(std::move(ids), std::move(attributes), std::move(live));
        sawCatalog = true;
        break;
      }
      case kPanels: {
        const size_t n = length / (config_.dim * sizeof(float));
        if (n != catalog_.slots() || length % (config_.dim * sizeof(float)) != 0) corrupt("vector count mismatch");
        panels_.append(reinterpret_cast<const float*>(s.take(length)), n);
        break;
      }
      case kRows: {
        if (length != catalog_.slots() * config_.dim * sizeof(float)) corrupt("vector count mismatch");
        rows_.resize(length / sizeof(float));
        std::memcpy(rows_.data(), s.take(length), length);
        break;
      }
      case kFaiss: {
        const uint8_t* bytes = s.take(length);
        faiss::VectorIOReader blob;
        blob.data.assign(bytes, bytes + length);
        try {
          faiss_.reset(faiss::read_index(&blob));
        } catch (const std::exception& e) {
          corrupt(std::string("the FAISS section does not parse (") + e.what() + ")");
        }
        break;
      }
      default:
        corrupt("unknown section " + std::to_string(tag));
    }
  }
  if (!sawCatalog) corrupt("no catalog section");
  if (faiss_) {
    const bool ivf = config_.kind == AnnKind::IvfFlat || config_.kind == AnnKind::IvfPq ||
                     config_.kind == AnnKind::IvfSq8 || config_.kind == AnnKind::Factory;
    if (faiss_->d != config_.dim) corrupt("the FAISS index has another dimension");
    if (!ivf && static_cast<size_t>(faiss_->ntotal) != catalog_.slots()) corrupt("the FAISS index and the catalog disagree");
    trained_ = faiss_->is_trained;
  } else if (panels_.size() != catalog_.slots()) {
    corrupt("vector count mismatch");
  }
  live_ = catalog_.live();
}

void AdIndex::save(const std::string& path) const {
  std::vector<uint8_t> file(kHeaderBytes);
  {
    std::shared_lock lock(mutex_);
    serialize(file);
  }
  const uint64_t payload = file.size() - kHeaderBytes;
  std::memcpy(file.data(), kMagic, 8);
  std::memcpy(file.data() + 8, &kFormatVersion, 4);
  std::memset(file.data() + 12, 0, 4);
  std::memcpy(file.data() + 16, &payload, 8);
  const uint32_t crc = crc32c(file.data(), file.size());
  file.insert(file.end(), reinterpret_cast<const uint8_t*>(&crc), reinterpret_cast<const uint8_t*>(&crc) + 4);

  static std::atomic<uint64_t> counter{0};
  const std::string temp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(ErrorCode::Io, "Could not create " + temp + ": " + std::strerror(errno));
  try {
    writeAll(fd, file.data(), file.size(), temp);
    if (::fsync(fd) != 0) throw Error(ErrorCode::Io, "Could not fsync " + temp + ": " + std::strerror(errno));
    if (::close(fd) != 0) {
      fd = -1;
      throw Error(ErrorCode::Io, "Could not close " + temp + ": " + std::strerror(errno));
    }
    fd = -1;
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      throw Error(ErrorCode::Io, "Could not rename " + temp + " to " + path + ": " + std::strerror(errno));
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);  // makes the rename itself durable
    ::close(dirFd);
  }
}

std::unique_ptr<AdIndex> AdIndex::load(const std::string& path, int threads) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::Io, "Could not open " + path + ": " + std::strerror(errno));
  const std::streamsize size = in.tellg();
  in.seekg(0);
  std::vector<uint8_t> file(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(file.data()), size)) {
    throw Error(ErrorCode::Io, "Could not read " + path);
  }
  const std::string where = " (" + path + ")";
  if (file.size() < kHeaderBytes + 4 || std::memcmp(file.data(), kMagic, 8) != 0) {
    corrupt("not a cangen index, or truncated before its header" + where);
  }
  uint32_t version;
  std::memcpy(&version, file.data() + 8, 4);
  if (version > kFormatVersion) {
    throw Error(ErrorCode::UnsupportedFormat, "This index file has format version " + std::to_string(version) +
                                                ", written by a newer cangen; this build reads up to version " +
                                                std::to_string(kFormatVersion) + where);
  }
  uint64_t payload;
  std::memcpy(&payload, file.data() + 16, 8);
  if (payload != file.size() - kHeaderBytes - 4) {
    corrupt("expected " + std::to_string(payload + kHeaderBytes + 4) + " bytes but the file has " +
            std::to_string(file.size()) + " (truncated or extended)" + where);
  }
  uint32_t stored;
  std::memcpy(&stored, file.data() + file.size() - 4, 4);
  if (crc32c(file.data(), file.size() - 4) != stored) corrupt("checksum mismatch" + where);

  Reader r(file.data() + kHeaderBytes, payload);
  if (r.get<uint32_t>() != kConfig) corrupt("the first section is not the configuration" + where);
  const uint64_t configBytes = r.get<uint64_t>();
  Reader c(r.take(configBytes), configBytes);
  AnnConfig config;
  config.kind = static_cast<AnnKind>(c.get<uint8_t>());
  config.metric = static_cast<Metric>(c.get<uint8_t>());
  config.opq = c.get<uint8_t>() != 0;
  config.storeVectors = c.get<uint8_t>() != 0;
  for (int* v : {&config.dim, &config.nlist, &config.pqBytes, &config.hnswM, &config.efConstruction, &config.nprobe,
                 &config.efSearch, &config.rerank}) {
    *v = c.get<int32_t>();
  }
  config.factory = c.string();
  if (static_cast<uint8_t>(config.kind) > static_cast<uint8_t>(AnnKind::Factory) ||
      static_cast<uint8_t>(config.metric) > static_cast<uint8_t>(Metric::Cosine)) {
    corrupt("unknown index kind or metric" + where);
  }
  std::unique_ptr<AdIndex> index;
  try {
    index = std::make_unique<AdIndex>(config, threads);
  } catch (const Error& e) {
    corrupt(std::string("bad configuration: ") + e.what() + where);
  }
  const size_t rest = kHeaderBytes + 12 + configBytes;
  index->deserialize(file.data() + rest, file.size() - 4 - rest);
  return index;
}

}  // namespace cangen
