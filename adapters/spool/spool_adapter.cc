#include "adapters/spool/spool_adapter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <google/protobuf/util/json_util.h>

#include "engine/auth/policy.h"

namespace casebus::adapters {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

Status WriteFully(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + path);
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync " + path);
}

// File names come from work-order ids ("<case>-<n>"); anything else is refused, so an id can
// never point outside the directory.
bool SafeName(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         });
}

std::string BodyName(const v1::Command& c) {
  const auto* oneof = c.GetDescriptor()->FindOneofByName("body");
  const auto* f = c.GetReflection()->GetOneofFieldDescriptor(c, oneof);
  return f ? f->name() : "an empty command";
}

}  // namespace

Result<v1::Command> ParseSpoolReply(std::string_view bytes, const std::string& department) {
  if (bytes.size() > kMaxSpoolReplyBytes)
    return Err(Status::InvalidArgument("file is " + std::to_string(bytes.size()) +
                                       " bytes; at most " + std::to_string(kMaxSpoolReplyBytes)));
  v1::Command cmd;
  auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(bytes.data(), bytes.size()), &cmd);
  if (!st.ok())
    return Err(Status::InvalidArgument("not a Command in JSON: " + std::string(st.message())));
  if (cmd.request_id().empty()) return Err(Status::InvalidArgument("request_id is required"));
  switch (cmd.body_case()) {
    case v1::Command::kAccept:
    case v1::Command::kReturn:
    case v1::Command::kResolve:
    case v1::Command::kRequestExtension:
    case v1::Command::kNote:
    case v1::Command::kSupervisionReply:
      break;
    default:
      return Err(Status::InvalidArgument(
          "a department may only accept, return, resolve, request_extension, note or "
          "supervision_reply; not " +
          BodyName(cmd)));
  }
  // A department acts as itself, whatever the file says: the actor is the department and the
  // caller its own principal (a caller in the file is replaced), or a file could claim another
  // role or another department's cases.
  cmd.set_actor(department);
  *cmd.mutable_caller() = auth::DepartmentCaller(department);
  return cmd;
}

namespace {

class SpoolAdapter final : public dispatch::Adapter {
 public:
  SpoolAdapter(std::string department, std::string dir)
      : department_(std::move(department)), dir_(std::move(dir)) {}

  Status Init() {
    std::error_code ec;
    for (const char* sub : {"", "/notices", "/inbox", "/inbox/done", "/inbox/rejected"}) {
      fs::create_directories(dir_ + sub, ec);
      if (ec) return Status::IOError("create " + dir_ + sub + ": " + ec.message());
    }
    return Status::Ok();
  }

  dispatch::Delivery Deliver(const v1::WorkOrder& order) override {
    return AsDelivery(WriteJson(dir_, order.id(), order));
  }

  dispatch::Delivery DeliverNotice(const v1::Notice& notice) override {
    return AsDelivery(WriteJson(dir_ + "/notices", notice.id(), notice));
  }

  std::string Endpoint() const override { return "spool " + dir_; }

  // A disk error may pass (space freed, a remount); an id that cannot be a file name never.
  static dispatch::Delivery AsDelivery(const Status& st) {
    if (st.ok()) return dispatch::Delivery::Delivered();
    if (st.code() == StatusCode::kInvalidArgument) return dispatch::Delivery::Rejected(st.message());
    return dispatch::Delivery::Retry(st.message());
  }

  Status WriteJson(const std::string& dir, const std::string& id,
                   const google::protobuf::Message& message) {
    if (!SafeName(id)) return Status::InvalidArgument("id '" + id + "' is not a safe file name");
    std::string json;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(message, &json, opts).ok())
      return Status::Internal("cannot encode " + id);
    json += '\n';
    const std::string tmp = dir + "/." + id + ".tmp";
    const std::string final_path = dir + "/" + id + ".json";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("open " + tmp);
    Status st = WriteFully(fd, json, tmp);
    if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync " + tmp);
    ::close(fd);
    if (!st.ok()) return st;
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) return Errno("rename " + final_path);
    return FsyncPath(dir);
  }

  std::vector<dispatch::InboundReply> PollReplies() override {
    std::vector<dispatch::InboundReply> out;
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir_ + "/inbox", ec))
      if (entry.is_regular_file(ec) && entry.path().extension() == ".json" &&
          !waiting_.count(entry.path().filename().string()))
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
      v1::Command cmd;
      std::string reason = Parse(path, cmd);
      if (!reason.empty()) {
        Reject(path.filename().string(), reason);
        continue;
      }
      const std::string name = path.filename().string();
      waiting_.insert(name);
      out.push_back({std::move(cmd), name, department_});
    }
    return out;
  }

  void Settle(const std::string& name, const v1::CommandResult& result) override {
    waiting_.erase(name);
    if (result.code() == v1::BUSY || result.code() == v1::UNAVAILABLE) return;  // offered again
    if (result.code() != v1::OK) {
      Reject(name, "refused by the engine: " + v1::Code_Name(result.code()) + ": " + result.message());
      return;
    }
    std::error_code ec;
    fs::rename(fs::path(dir_) / "inbox" / name, fs::path(dir_) / "inbox/done" / name, ec);
  }

 private:
  std::string Parse(const fs::path& path, v1::Command& cmd) const {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec) return "cannot read: " + ec.message();
    if (size > kMaxSpoolReplyBytes)
      return "file is " + std::to_string(size) + " bytes; at most " +
             std::to_string(kMaxSpoolReplyBytes);
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Result<v1::Command> parsed = ParseSpoolReply(ss.str(), department_);
    if (!parsed) return parsed.error().message();
    cmd = std::move(*parsed);
    return "";
  }

  void Reject(const std::string& name, const std::string& reason) const {
    std::error_code ec;
    const fs::path target = fs::path(dir_) / "inbox/rejected" / name;
    fs::rename(fs::path(dir_) / "inbox" / name, target, ec);
    // Written aside and renamed: a reader never sees an empty or half-written reason.
    const std::string reason_path = target.string() + ".reason";
    std::ofstream(reason_path + ".tmp") << reason << '\n';
    fs::rename(reason_path + ".tmp", reason_path, ec);
  }

  std::string department_;
  std::string dir_;
  std::set<std::string> waiting_;  // replies handed to the engine, result not yet known
};

}  // namespace

void RegisterSpoolAdapter(dispatch::AdapterRegistry& registry) {
  registry.Register("spool", [](const v1::Department& dept, const dispatch::AdapterContext& ctx)
                                 -> Result<std::unique_ptr<dispatch::Adapter>> {
    std::string dir = dept.adapter().spool().directory();
    if (dir.empty())
      return Err(Status::InvalidArgument("department " + dept.id() + ": spool.directory is required",
                                         "adapter.spool.directory"));
    if (dir.front() != '/') dir = ctx.data_dir + "/" + dir;
    auto adapter = std::make_unique<SpoolAdapter>(dept.id(), dir);
    if (Status st = adapter->Init(); !st.ok()) return Err(st);
    return std::unique_ptr<dispatch::Adapter>(std::move(adapter));
  });
}

}  // namespace casebus::adapters
