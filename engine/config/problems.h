#pragma once
// SourceLines: where each field of a loaded config came from, so that semantic checks made on the
// protobuf can name a line of the YAML file. Problems: every mistake found in one load, formatted
// "FILE:LINE: path.to.key: reason", one per line.
// Paths look like "departments[3].adapter.spool.directory"; the root is "".
// Thread safety: plain values, used by one thread during one load.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/base/status.h"

namespace casebus::config {

class SourceLines {
 public:
  // Remembers the 1-based line of the YAML node that became `path`. The first record wins.
  void Record(std::string path, int line);
  // The line of `path`, or of its nearest recorded ancestor (a key left out is reported at the
  // entry that lacks it); 0 when nothing on the way up was recorded.
  int Line(std::string_view path) const;

 private:
  std::unordered_map<std::string, int> lines_;
};

// The parent of a path: "a[2].b" → "a[2]" → "a" → "".
std::string_view ParentPath(std::string_view path);

class Problems {
 public:
  explicit Problems(std::string_view source_name) : source_(source_name) {}

  // line 0 means unknown; the message then has no line number.
  void Add(int line, std::string_view path, std::string_view reason);
  // Adds a problem at the line SourceLines knows for `path`.
  void Add(const SourceLines& lines, std::string_view path, std::string_view reason) {
    Add(lines.Line(path), path, reason);
  }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // InvalidArgument listing the problems in line order (stable), or OK when there is none.
  // Lists at most kMaxListed, then says how many more there were: a hostile file must not turn
  // into a hundred-megabyte message.
  Status ToStatus() const;

  static constexpr size_t kMaxListed = 1000;

 private:
  struct Entry {
    int line;
    std::string text;
  };
  std::string source_;
  std::vector<Entry> entries_;
};

// Levenshtein distance, for "did you mean" hints.
size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace casebus::config
