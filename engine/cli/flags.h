#pragma once
// Flags: a small parser for "verb [positional...] [--name value | --switch]..." with errors
// that name the flag. Unknown flags are errors, so a typo never runs a different command.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace casebus::cli {

class Flags {
 public:
  // value_flags take a value; switches do not. Both are named without the leading "--".
  static Result<Flags> Parse(const std::vector<std::string>& args,
                             const std::set<std::string>& value_flags,
                             const std::set<std::string>& switches);
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, std::string fallback) const;
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  const std::vector<std::string>& positional() const { return positional_; }
  // The positional at i as a case id; an error naming `what` otherwise.
  Result<uint64_t> CaseId(size_t i = 0) const;
  Result<std::string> Required(const std::string& name) const;

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace casebus::cli
