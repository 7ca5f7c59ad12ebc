#include "engine/cli/flags.h"

#include <charconv>

namespace casebus::cli {

Result<Flags> Flags::Parse(const std::vector<std::string>& args,
                           const std::set<std::string>& value_flags,
                           const std::set<std::string>& switches) {
  Flags f;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!a.starts_with("--")) {
      f.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (switches.count(name)) {
      f.values_[name] = "true";
    } else if (value_flags.count(name)) {
      if (!inline_value) {
        if (i + 1 >= args.size())
          return Err(Status::InvalidArgument("--" + name + " needs a value", name));
        value = args[++i];
      }
      f.values_[name] = value;
    } else {
      std::string known;
      for (const auto& v : value_flags) known += " --" + v;
      for (const auto& v : switches) known += " --" + v;
      return Err(Status::InvalidArgument("unknown flag --" + name + "; known:" + known, name));
    }
  }
  return f;
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Flags::GetOr(const std::string& name, std::string fallback) const {
  auto v = Get(name);
  return v ? *v : std::move(fallback);
}

Result<std::string> Flags::Required(const std::string& name) const {
  auto v = Get(name);
  if (!v || v->empty()) return Err(Status::InvalidArgument("--" + name + " is required", name));
  return *v;
}

Result<uint64_t> Flags::CaseId(size_t i) const {
  if (i >= positional_.size())
    return Err(Status::InvalidArgument("a case id is required", "case_id"));
  const std::string& s = positional_[i];
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0)
    return Err(Status::InvalidArgument("'" + s + "' is not a case id (a positive number)", "case_id"));
  return v;
}

}  // namespace casebus::cli
