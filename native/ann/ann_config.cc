#include "ann/ann_config.h"

#include <cctype>
#include <vector>

#include "common/error.h"

namespace cangen {

namespace {

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

void inRange(long long value, long long low, long long high, const std::string& name) {
  if (value < low || value > high) {
    bad("Expected " + name + " between " + std::to_string(low) + " and " + std::to_string(high) + " but received " +
        std::to_string(value));
  }
}

std::vector<std::string> splitCommas(const std::string& s) {
  std::vector<std::string> parts(1);
  for (char c : s) {
    if (c == ',') {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

// Reads "<prefix><digits>" from the start of `text` at `pos`; returns -1 when absent. At most 9
// digits, so the value always fits an int and a huge number is "out of range", not an overflow.
long long number(const std::string& text, size_t& pos) {
  size_t end = pos;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) && end - pos < 10) ++end;
  if (end == pos || end - pos > 9) return -1;
  const long long value = std::stoll(text.substr(pos, end - pos));
  pos = end;
  return value;
}

bool startsWith(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

[[noreturn]] void badFactory(const std::string& factory, const std::string& why) {
  bad("Expected a FAISS factory string of the form [OPQ<m>[_<d>],]IVF<n>,<Flat|PQ<m>[x<bits>][np]|SQ4|SQ6|SQ8|SQfp16>, "
      "HNSW<M>[,Flat] or Flat but received '" + factory + "' (" + why + ")");
}

// "PQ<m>[x<bits>][np]" or an SQ type or "Flat", for vectors of dimension d.
void parseCodes(const std::string& factory, const std::string& part, int d, FaissShape& shape) {
  using Codes = FaissShape::Codes;
  if (part == "Flat") return;
  if (part == "SQ4") { shape.codes = Codes::Sq4; return; }
  if (part == "SQ6") { shape.codes = Codes::Sq6; return; }
  if (part == "SQ8") { shape.codes = Codes::Sq8; return; }
  if (part == "SQfp16") { shape.codes = Codes::SqFp16; return; }
  if (!startsWith(part, "PQ")) badFactory(factory, "unknown codes '" + part + "'");
  size_t pos = 2;
  const long long m = number(part, pos);
  long long bits = 8;
  if (pos < part.size() && part[pos] == 'x') {
    ++pos;
    bits = number(part, pos);
  }
  if (part.compare(pos, std::string::npos, "np") == 0) pos += 2;
  if (m < 0 || bits < 0 || pos != part.size()) badFactory(factory, "malformed '" + part + "'");
  inRange(m, 1, d, "the PQ sub-quantizers in the factory string");
  if (d % m != 0) badFactory(factory, "PQ" + std::to_string(m) + " must divide the dimension " + std::to_string(d));
  inRange(bits, 1, AnnLimits::kMaxPqBits, "the PQ bits in the factory string");
  if (static_cast<uint64_t>(d) << bits > AnnLimits::kMaxCodebookFloats) badFactory(factory, "the PQ codebook exceeds 1 GiB");
  shape.codes = Codes::Pq;
  shape.pqM = static_cast<int>(m);
  shape.pqBits = static_cast<int>(bits);
}

FaissShape parseFactory(const std::string& factory, int dim) {
  FaissShape shape;
  std::vector<std::string> parts = splitCommas(factory);
  size_t next = 0;
  if (parts.size() == 1 && parts[0] == "Flat") return shape;
  if (startsWith(parts[0], "HNSW")) {
    size_t pos = 4;
    const long long m = number(parts[0], pos);
    if (m < 0 || pos != parts[0].size()) badFactory(factory, "malformed '" + parts[0] + "'");
    inRange(m, 2, AnnLimits::kMaxHnswM, "HNSW M in the factory string");
    if (parts.size() > 2 || (parts.size() == 2 && parts[1] != "Flat")) badFactory(factory, "HNSW stores Flat vectors only");
    shape.hnswM = static_cast<int>(m);
    return shape;
  }
  int d = dim;
  if (startsWith(parts[0], "OPQ")) {
    size_t pos = 3;
    const long long m = number(parts[0], pos);
    long long out = dim;
    if (pos < parts[0].size() && parts[0][pos] == '_') {
      ++pos;
      out = number(parts[0], pos);
    }
    if (m < 0 || out < 0 || pos != parts[0].size()) badFactory(factory, "malformed '" + parts[0] + "'");
    inRange(out, 1, dim, "the OPQ output dimension in the factory string");
    inRange(m, 1, out, "the OPQ sub-quantizers in the factory string");
    if (out % m != 0) badFactory(factory, "OPQ" + std::to_string(m) + " must divide its output dimension");
    shape.opqM = static_cast<int>(m);
    shape.opqOut = static_cast<int>(out);
    d = shape.opqOut;
    next = 1;
  }
  if (parts.size() != next + 2 || !startsWith(parts[next], "IVF")) badFactory(factory, "expected IVF<n>,<codes>");
  size_t pos = 3;
  const long long n = number(parts[next], pos);
  if (n < 0 || pos != parts[next].size()) badFactory(factory, "malformed '" + parts[next] + "'");
  inRange(n, 1, AnnLimits::kMaxNlist, "the IVF list count in the factory string");
  shape.nlist = static_cast<int>(n);
  parseCodes(factory, parts[next + 1], d, shape);
  return shape;
}

}  // namespace

void validateAnnConfig(const AnnConfig& c) {
  if (static_cast<uint8_t>(c.kind) > static_cast<uint8_t>(AnnKind::Factory)) {
    bad("Unknown index kind " + std::to_string(static_cast<int>(c.kind)));
  }
  if (static_cast<int>(c.metric) < 0 || static_cast<int>(c.metric) > static_cast<int>(Metric::Cosine)) {
    bad("Unknown metric " + std::to_string(static_cast<int>(c.metric)));
  }
  inRange(c.dim, 1, AnnLimits::kMaxDim, "a dimension");
  inRange(c.nlist, 1, AnnLimits::kMaxNlist, "nlist");
  inRange(c.pqBytes, 1, c.dim, "pqBytes");
  if (c.kind == AnnKind::IvfPq && c.dim % c.pqBytes != 0) {
    bad("Expected pqBytes to divide the dimension " + std::to_string(c.dim) + " but received " + std::to_string(c.pqBytes) +
        " (each byte encodes dim / pqBytes dimensions)");
  }
  inRange(c.hnswM, 2, AnnLimits::kMaxHnswM, "hnswM");
  inRange(c.efConstruction, 1, AnnLimits::kMaxBeam, "efConstruction");
  inRange(c.nprobe, 1, AnnLimits::kMaxNlist, "nprobe");
  inRange(c.efSearch, 1, AnnLimits::kMaxBeam, "efSearch");
  inRange(c.rerank, 0, AnnLimits::kMaxRerank, "rerank");
  if (static_cast<uint8_t>(c.precision) > static_cast<uint8_t>(Precision::Int8)) {
    bad("Unknown precision " + std::to_string(static_cast<int>(c.precision)));
  }
  if (c.precision != Precision::Fp32 && c.kind != AnnKind::Flat) {
    bad(std::string("Precision '") + precisionName(c.precision) +
        "' is for kind 'flat' (its exact scan); the other kinds have their own codes (e.g. IVF-SQ8, IVF-PQ)");
  }
  if (c.kind == AnnKind::Factory) {
    if (c.factory.empty()) bad("Expected a FAISS factory string for kind 'faiss'");
    parseFactory(c.factory, c.dim);
  } else if (!c.factory.empty()) {
    bad("A factory string is only for kind 'faiss'");
  }
}

std::string factoryString(const AnnConfig& c) {
  switch (c.kind) {
    case AnnKind::IvfFlat: return "IVF" + std::to_string(c.nlist) + ",Flat";
    case AnnKind::IvfPq:
      return (c.opq ? "OPQ" + std::to_string(c.pqBytes) + "," : std::string()) + "IVF" + std::to_string(c.nlist) +
             ",PQ" + std::to_string(c.pqBytes) + "np";  // np: no polysemous training (minutes, unused here)
    case AnnKind::IvfSq8: return "IVF" + std::to_string(c.nlist) + ",SQ8";
    case AnnKind::Hnsw: return "HNSW" + std::to_string(c.hnswM);
    case AnnKind::Factory: return c.factory;
    case AnnKind::Flat: break;
  }
  return "";
}

FaissShape faissShape(const AnnConfig& c) { return parseFactory(factoryString(c), c.dim); }

}  // namespace cangen
