#include "engine/server/checkpoint_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace casebus::server {
namespace {

// 02: the body's checksum is XXH3-64's low 32 bits (libxxhash: ~10x zlib's CRC-32 here, whose
// 1.2 s over a 5M-case checkpoint came before anything else in a restart). 01 (CRC-32 of the
// body) is still read. The header's own checksum is CRC-32 in both.
constexpr char kMagic[8] = {'C', 'B', 'C', 'K', 'P', 'T', '0', '2'};
constexpr char kMagic01[8] = {'C', 'B', 'C', 'K', 'P', 'T', '0', '1'};
constexpr size_t kHeader = 64, kLink = 32;

uint32_t Crc(uint32_t crc, std::string_view b) {
  return static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(b.data()), b.size()));
}

// A streaming XXH3-64 (the writer gets the body in pieces).
class BodyHash {
 public:
  BodyHash() : state_(XXH3_createState()) {
    if (!state_ || XXH3_64bits_reset(state_) != XXH_OK) throw std::bad_alloc();
  }
  ~BodyHash() { XXH3_freeState(state_); }
  BodyHash(const BodyHash&) = delete;
  BodyHash& operator=(const BodyHash&) = delete;
  void Update(std::string_view b) { (void)XXH3_64bits_update(state_, b.data(), b.size()); }
  uint32_t Low32() const { return static_cast<uint32_t>(XXH3_64bits_digest(state_)); }

 private:
  XXH3_state_t* state_;
};

void PutLe(char* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
uint64_t GetLe(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Writes all of b at the file's current offset.
bool WriteAll(int fd, std::string_view b) {
  while (!b.empty()) {
    const ssize_t n = ::write(fd, b.data(), b.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    b.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Result<CheckpointWritten> WriteCheckpointFile(
    const std::string& dir, uint64_t seq, std::string_view link,
    const std::function<void(const std::function<void(std::string_view)>& sink)>& body) {
  if (link.size() != kLink)
    return Err(Status::InvalidArgument("checkpoint link has " + std::to_string(link.size()) + " bytes, not 32"));
  // Per process: a forked writer and the engine's own stop never share a temporary file.
  const std::string path = dir + "/" + kCheckpointFileName, tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Err(Status::IOError(Errno("create", tmp)));
  // Closed on every path; the tmp file removed unless it became the checkpoint (a full disk
  // must not keep half a checkpoint's bytes).
  struct Closer {
    int fd;
    const std::string& tmp;
    bool renamed = false;
    ~Closer() {
      ::close(fd);
      if (!renamed) ::unlink(tmp.c_str());
    }
  } closer{fd, tmp};
  char header[kHeader] = {};
  bool ok = WriteAll(fd, {header, kHeader});  // filled in once the body is known
  uint64_t bytes = 0;
  BodyHash hash;
  body([&](std::string_view piece) {
    if (!ok) return;
    ok = WriteAll(fd, piece);
    bytes += piece.size();
    hash.Update(piece);
  });
  if (!ok) return Err(Status::IOError(Errno("write", tmp)));
  std::memcpy(header, kMagic, 8);
  PutLe(header + 8, seq, 8);
  std::memcpy(header + 16, link.data(), kLink);
  PutLe(header + 48, bytes, 8);
  PutLe(header + 56, hash.Low32(), 4);
  PutLe(header + 60, Crc(Crc(0, {}), {header, 60}), 4);
  if (::pwrite(fd, header, kHeader, 0) != static_cast<ssize_t>(kHeader)) return Err(Status::IOError(Errno("write", tmp)));
  if (::fdatasync(fd) != 0) return Err(Status::IOError(Errno("fdatasync", tmp)));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Err(Status::IOError(Errno("rename to", path)));
  closer.renamed = true;
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Err(Status::IOError(Errno("open", dir)));
  const int synced = ::fsync(dfd);
  ::close(dfd);
  if (synced != 0) return Err(Status::IOError(Errno("fsync", dir)));
  return CheckpointWritten{kHeader + bytes};
}

Result<std::unique_ptr<CheckpointFile>> CheckpointFile::Open(const std::string& dir) {
  const std::string path = dir + "/" + kCheckpointFileName;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return Err(Status::NotFound("no checkpoint " + path));
  if (fd < 0) return Err(Status::IOError(Errno("open", path)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Err(Status::IOError(Errno("stat", path)));
  }
  std::unique_ptr<CheckpointFile> f(new CheckpointFile());
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ < kHeader) {
    ::close(fd);
    return Err(Status::Corruption(path + " has " + std::to_string(f->size_) + " bytes, less than its 64-byte header"));
  }
  f->map_ = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    return Err(Status::IOError(Errno("map", path)));
  }
  ::madvise(f->map_, f->size_, MADV_SEQUENTIAL);
  ::madvise(f->map_, f->size_, MADV_WILLNEED);
  const char* p = static_cast<const char*>(f->map_);
  const bool format01 = std::memcmp(p, kMagic01, 8) == 0;
  if (!format01 && std::memcmp(p, kMagic, 8) != 0)
    return Err(Status::Corruption(path + " is not a casebus checkpoint (no CBCKPT02 or CBCKPT01 mark)"));
  if (GetLe(p + 60, 4) != Crc(Crc(0, {}), {p, 60}))
    return Err(Status::Corruption(path + ": the header's checksum does not match"));
  const uint64_t body = GetLe(p + 48, 8);
  if (body != f->size_ - kHeader)
    return Err(Status::Corruption(path + ": the header says " + std::to_string(body) + " body bytes, the file has " +
                                  std::to_string(f->size_ - kHeader)));
  f->body_ = {p + kHeader, body};
  const uint32_t sum = format01 ? Crc(Crc(0, {}), f->body_)
                                : static_cast<uint32_t>(XXH3_64bits(f->body_.data(), f->body_.size()));
  if (GetLe(p + 56, 4) != sum)
    return Err(Status::Corruption(path + ": the body's checksum does not match"));
  f->seq_ = GetLe(p + 8, 8);
  f->link_.assign(p + 16, kLink);
  return f;
}

CheckpointFile::~CheckpointFile() {
  if (map_) ::munmap(map_, size_);
}

}  // namespace casebus::server
