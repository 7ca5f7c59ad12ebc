#include "engine/config/problems.h"

#include <algorithm>
#include <numeric>

namespace casebus::config {

void SourceLines::Record(std::string path, int line) { lines_.emplace(std::move(path), line); }

int SourceLines::Line(std::string_view path) const {
  while (true) {
    if (auto it = lines_.find(std::string(path)); it != lines_.end()) return it->second;
    if (path.empty()) return 0;
    path = ParentPath(path);
  }
}

std::string_view ParentPath(std::string_view path) {
  size_t cut = path.find_last_of(".[");
  return cut == std::string_view::npos ? std::string_view() : path.substr(0, cut);
}

void Problems::Add(int line, std::string_view path, std::string_view reason) {
  std::string text = source_;
  if (line > 0) text += ":" + std::to_string(line);
  text += ": ";
  if (!path.empty()) {
    text += path;
    text += ": ";
  }
  text += reason;
  entries_.push_back({line, std::move(text)});
}

Status Problems::ToStatus() const {
  if (entries_.empty()) return Status::Ok();
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries_) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Entry* a, const Entry* b) { return a->line < b->line; });
  std::string message;
  size_t listed = std::min(sorted.size(), kMaxListed);
  for (size_t i = 0; i < listed; ++i) {
    if (i > 0) message += '\n';
    message += sorted[i]->text;
  }
  if (listed < sorted.size()) {
    message +=
        "\n" + source_ + ": ... and " + std::to_string(sorted.size() - listed) + " more problems";
  }
  return Status::InvalidArgument(std::move(message));
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace casebus::config
