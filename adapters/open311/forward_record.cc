#include "adapters/open311/forward_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace casebus::open311 {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr size_t kMaxText = 2000;     // note.text, resolve.note (command.proto)
constexpr size_t kMaxEvidence = 512;  // each resolve.evidence
constexpr size_t kMaxRecordBytes = 1 << 20;

const char* KindName(QueuedReply::Kind k) {
  switch (k) {
    case QueuedReply::Kind::kAccept:
      return "accept";
    case QueuedReply::Kind::kNote:
      return "note";
    case QueuedReply::Kind::kResolve:
      return "resolve";
  }
  return "accept";
}

// FNV-1a, 64 bits: stable across builds and runs (std::hash is neither promised).
std::string Fnv64Hex(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

}  // namespace

// The spool's recipe: a crash leaves either the old file or the new one, never a torn one,
// and the directory entry is on disk before the caller is told.
Status WriteFileDurably(const std::string& dir, const std::string& name, const std::string& data) {
  const std::string tmp = dir + "/." + name + ".tmp";
  const std::string final_path = dir + "/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open " + tmp);
  Status st;
  for (size_t off = 0; st.ok() && off < data.size();) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      st = Errno("write " + tmp);
    else
      off += static_cast<size_t>(n);
  }
  if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync " + tmp);
  ::close(fd);
  if (!st.ok()) return st;
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) return Errno("rename " + final_path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("open " + dir);
  int rc = ::fsync(dfd);
  ::close(dfd);
  return rc == 0 ? Status::Ok() : Errno("fsync " + dir);
}

namespace {

std::string Encode(const ForwardRecord& r) {
  json::array replies;
  for (const auto& q : r.replies)
    replies.push_back(json::object{{"kind", KindName(q.kind)},
                                   {"request_id", q.request_id},
                                   {"text", q.text},
                                   {"evidence", q.evidence},
                                   {"done", q.done},
                                   {"result", q.result}});
  json::object o{{"format", 1},
                 {"work_order_id", r.work_order_id},
                 {"case_id", r.case_id},
                 {"remote_id", r.remote_id},
                 {"token", r.token},
                 {"forwarded_at_ms", r.forwarded_at_ms},
                 {"status", r.status},
                 {"status_notes", r.status_notes},
                 {"agency_responsible", r.agency_responsible},
                 {"updated_datetime", r.updated_datetime},
                 {"closed", r.closed},
                 {"replies", std::move(replies)}};
  return json::serialize(o) + "\n";
}

std::string Text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
int64_t Int(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_int64()) return v->get_int64();
  if (v && v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return 0;
}
bool Bool(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_bool() && v->get_bool();
}

std::optional<ForwardRecord> Decode(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  ForwardRecord r;
  r.work_order_id = Text(o, "work_order_id");
  r.case_id = static_cast<uint64_t>(Int(o, "case_id"));
  r.remote_id = Text(o, "remote_id");
  r.token = Text(o, "token");
  r.forwarded_at_ms = Int(o, "forwarded_at_ms");
  r.status = Text(o, "status");
  r.status_notes = Text(o, "status_notes");
  r.agency_responsible = Text(o, "agency_responsible");
  r.updated_datetime = Text(o, "updated_datetime");
  r.closed = Bool(o, "closed");
  if (r.work_order_id.empty() || (r.remote_id.empty() && r.token.empty())) return std::nullopt;
  const json::value* replies = o.if_contains("replies");
  if (replies && replies->is_array()) {
    for (const auto& e : replies->get_array()) {
      if (!e.is_object()) return std::nullopt;
      const json::object& q = e.get_object();
      QueuedReply reply;
      const std::string kind = Text(q, "kind");
      if (kind == "accept")
        reply.kind = QueuedReply::Kind::kAccept;
      else if (kind == "note")
        reply.kind = QueuedReply::Kind::kNote;
      else if (kind == "resolve")
        reply.kind = QueuedReply::Kind::kResolve;
      else
        return std::nullopt;
      reply.request_id = Text(q, "request_id");
      reply.text = Text(q, "text");
      reply.evidence = Text(q, "evidence");
      reply.done = Bool(q, "done");
      reply.result = Text(q, "result");
      if (reply.request_id.empty()) return std::nullopt;
      r.replies.push_back(std::move(reply));
    }
  }
  return r;
}

}  // namespace

bool SafeName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

std::string Truncate(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text;
}

void ForwardRecord::QueueAccept() {
  replies.push_back(
      {QueuedReply::Kind::kAccept, "open311-" + work_order_id + "-accept", "", "", false, ""});
}

bool ForwardRecord::Observe(const RemoteStatus& remote, const std::string& where) {
  if (closed) return false;
  const std::string now_status = remote.closed ? "closed" : "open";
  bool changed = now_status != status || remote.agency_responsible != agency_responsible ||
                 remote.updated_datetime != updated_datetime;
  const std::string notes = Truncate(remote.status_notes, kMaxText);
  if (remote.closed) {
    std::string evidence = "open311:" + where;
    if (evidence.size() > kMaxEvidence) evidence = "open311:requests/" + remote_id;
    replies.push_back({QueuedReply::Kind::kResolve, "open311-" + work_order_id + "-resolve", notes,
                       Truncate(evidence, kMaxEvidence), false, ""});
    closed = changed = true;
  } else if (remote.status_notes != status_notes && !notes.empty()) {
    replies.push_back({QueuedReply::Kind::kNote,
                       "open311-" + work_order_id + "-note-" + Fnv64Hex(notes), notes, "", false,
                       ""});
    changed = true;
  }
  changed = changed || remote.status_notes != status_notes;
  status = now_status;
  status_notes = remote.status_notes;
  agency_responsible = remote.agency_responsible;
  updated_datetime = remote.updated_datetime;
  return changed;
}

const QueuedReply* ForwardRecord::NextReply() const {
  for (const auto& r : replies)
    if (!r.done) return &r;
  return nullptr;
}

v1::Command ForwardRecord::CommandFor(const QueuedReply& reply,
                                      const std::string& department) const {
  v1::Command c;
  c.set_request_id(reply.request_id);
  c.set_actor(department);
  switch (reply.kind) {
    case QueuedReply::Kind::kAccept:
      c.mutable_accept()->set_case_id(case_id);
      c.mutable_accept()->set_work_order_id(work_order_id);
      break;
    case QueuedReply::Kind::kNote:
      c.mutable_note()->set_case_id(case_id);
      c.mutable_note()->set_text(reply.text);
      break;
    case QueuedReply::Kind::kResolve:
      c.mutable_resolve()->set_case_id(case_id);
      c.mutable_resolve()->add_evidence(reply.evidence);
      c.mutable_resolve()->set_note(reply.text);
      break;
  }
  return c;
}

Status RecordDirectory::Create() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  return ec ? Status::IOError("create " + dir_ + ": " + ec.message()) : Status::Ok();
}

Status RecordDirectory::Save(const ForwardRecord& record) const {
  if (!SafeName(record.work_order_id))
    return Status::InvalidArgument("work order id '" + record.work_order_id +
                                   "' is not a safe file name");
  return WriteFileDurably(dir_, record.work_order_id + ".json", Encode(record));
}

Status RecordDirectory::LoadAll(std::map<std::string, ForwardRecord>& records,
                                std::vector<std::string>& unreadable) const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || entry.path().extension() != ".json") continue;  // temp files
    const std::string id = entry.path().stem().string();
    std::error_code size_ec;
    const auto size = fs::file_size(entry.path(), size_ec);
    std::optional<ForwardRecord> r;
    if (!size_ec && size <= kMaxRecordBytes) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      r = Decode(ss.str());
    }
    if (r && r->work_order_id == id)
      records[id] = std::move(*r);
    else
      unreadable.push_back(id);
  }
  return ec ? Status::IOError("read " + dir_ + ": " + ec.message()) : Status::Ok();
}

}  // namespace casebus::open311
