#pragma once
// Aligned text tables for terminals: CJK characters count two columns; numbers right-aligned.

#include <string>
#include <vector>

namespace casebus::query {

// Display width in terminal columns (CJK and other 3- and 4-byte UTF-8 characters take two).
size_t DisplayWidth(const std::string& s);

struct TextTable {
  std::vector<std::string> header;
  std::vector<bool> right;  // per column: right-aligned (numbers); missing = left
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> footer;  // e.g. a total row, below a rule; empty: none
  // The table with a rule under the header (and above the footer), no trailing spaces.
  std::string Render() const;
};

// "93.4%" for a fraction, "—" when absent.
std::string Percent(double fraction, bool present);

}  // namespace casebus::query
