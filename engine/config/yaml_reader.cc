#include "engine/config/yaml_reader.h"

#include <google/protobuf/descriptor.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace casebus::config {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// True when `s` is UTF-8 as a protobuf string field must be (RFC 3629: shortest forms, no
// surrogates, nothing above U+10FFFF). A config saved in another encoding (GBK) would load,
// then every journal record carrying one of its names would fail to parse at the next start.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t more;
    uint32_t code;
    if (lead >= 0xC2 && lead <= 0xDF) {
      more = 1, code = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      more = 2, code = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      more = 3, code = lead & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= more) return false;
    for (size_t k = 1; k <= more; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if ((more == 2 && code < 0x800) || (more == 3 && code < 0x10000) || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += more + 1;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "an undefined node";
}

std::string Child(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

std::string Element(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// Full-match decimal integer of type T; nullopt when malformed, `*out_of_range` set when the
// digits are fine but do not fit.
template <typename T>
std::optional<T> ParseInteger(const std::string& text, bool* out_of_range) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) *out_of_range = true;
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<double> ParseDouble(const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<bool> ParseBool(const std::string& text) {
  std::string lower = Lower(text);
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

// Counts a stream's documents from the parser's events, up to two, and notes where the second
// one's content starts. Used instead of YAML::LoadAll, which in yaml-cpp 0.7 loops forever,
// allocating a null document per turn, on a stream such as a lone "," (jbeder/yaml-cpp#1040;
// found by tests/fuzz/city_config_fuzz.cc): the bound ends that loop after two turns.
class DocumentCounter final : public YAML::EventHandler {
 public:
  int documents = 0;
  YAML::Mark second = YAML::Mark::null_mark();  // where the second document has content

  void OnDocumentStart(const YAML::Mark&) override { ++documents; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Note(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Note(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Note(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Note(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Note(mark);
  }
  void OnMapEnd() override {}

 private:
  void Note(const YAML::Mark& mark) {
    if (documents == 2 && second.is_null()) second = mark;
  }
};

// Walks one YAML document into one message. Stops adding work after the node budget is spent:
// aliases let a small file name the same subtree many times over.
class YamlReader {
 public:
  YamlReader(SourceLines& lines, Problems& problems, size_t node_budget)
      : lines_(lines), problems_(problems), budget_(node_budget) {}

  void ReadMessage(const YAML::Node& node, Message& message, const std::string& path, int line,
                   int depth);

 private:
  void ReadField(const YAML::Node& value, Message& message, const FieldDescriptor& field,
                 const std::string& path, int line, int depth);
  void ReadRepeated(const YAML::Node& value, Message& message, const FieldDescriptor& field,
                    const std::string& path, int line, int depth);
  // Converts one scalar and sets it (or adds it, for a repeated field).
  void ReadScalar(const YAML::Node& value, Message& message, const FieldDescriptor& field,
                  const std::string& path, int line);
  template <typename T>
  std::optional<T> Integer(const std::string& text, const char* type_name, const std::string& path,
                           int line);
  std::optional<int> EnumValue(const std::string& text, const EnumDescriptor& type,
                               const std::string& path, int line);
  // False (with one problem) once the budget is spent.
  bool Spend(const std::string& path, int line);

  static int LineOf(const YAML::Node& node, int fallback) {
    YAML::Mark mark = node.Mark();
    return mark.is_null() ? fallback : mark.line + 1;
  }

  SourceLines& lines_;
  Problems& problems_;
  size_t budget_;
  bool budget_reported_ = false;
};

bool YamlReader::Spend(const std::string& path, int line) {
  if (budget_ > 0) {
    --budget_;
    return true;
  }
  if (!budget_reported_) {
    budget_reported_ = true;
    problems_.Add(line, path, "too many values: aliases expand far beyond the size of the file");
  }
  return false;
}

void YamlReader::ReadMessage(const YAML::Node& node, Message& message, const std::string& path,
                             int line, int depth) {
  if (depth > kMaxYamlDepth) {
    problems_.Add(line, path, "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels");
    return;
  }
  const auto& descriptor = *message.GetDescriptor();
  std::map<std::string, int> seen_keys;
  std::map<const OneofDescriptor*, std::string> oneof_members;
  for (auto it = node.begin(); it != node.end(); ++it) {
    int key_line = LineOf(it->first, line);
    if (!it->first.IsScalar()) {
      problems_.Add(key_line, path,
                    "a mapping key must be a plain name, got " + std::string(TypeName(it->first)));
      continue;
    }
    const std::string& key = it->first.Scalar();
    std::string key_path = Child(path, key);
    if (!Spend(key_path, key_line)) return;
    auto [first, inserted] = seen_keys.emplace(key, key_line);
    if (!inserted) {
      problems_.Add(key_line, key_path,
                    "duplicate key (first at line " + std::to_string(first->second) + ")");
      continue;
    }
    const FieldDescriptor* field = descriptor.FindFieldByName(key);
    if (field == nullptr) {
      std::string reason = "unknown key";
      size_t best = 3;
      for (int i = 0; i < descriptor.field_count(); ++i) {
        const std::string& name = descriptor.field(i)->name();
        if (size_t d = EditDistance(Lower(key), name); d < best) {
          best = d;
          reason = "unknown key (did you mean \"" + name + "\"?)";
        }
      }
      problems_.Add(key_line, key_path, reason);
      continue;
    }
    if (const OneofDescriptor* oneof = field->real_containing_oneof(); oneof != nullptr) {
      auto [member, fresh] = oneof_members.emplace(oneof, key);
      if (!fresh) {
        problems_.Add(
            key_line, key_path,
            "only one of " + oneof->name() + " may be set, and " + member->second + " already is");
        continue;
      }
    }
    lines_.Record(key_path, key_line);
    ReadField(it->second, message, *field, key_path, key_line, depth);
  }
}

void YamlReader::ReadField(const YAML::Node& value, Message& message, const FieldDescriptor& field,
                           const std::string& path, int line, int depth) {
  if (field.is_repeated()) {
    ReadRepeated(value, message, field, path, line, depth);
    return;
  }
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    Message* child = message.GetReflection()->MutableMessage(&message, &field);
    if (value.IsMap()) {
      ReadMessage(value, *child, path, line, depth + 1);
    } else if (!value.IsNull()) {
      problems_.Add(line, path, std::string("expected a mapping, got ") + TypeName(value));
    }
    return;
  }
  if (value.IsNull()) return;
  ReadScalar(value, message, field, path, line);
}

void YamlReader::ReadRepeated(const YAML::Node& value, Message& message,
                              const FieldDescriptor& field, const std::string& path, int line,
                              int depth) {
  if (value.IsNull()) return;
  if (!value.IsSequence()) {
    problems_.Add(line, path, std::string("expected a sequence, got ") + TypeName(value));
    return;
  }
  const Reflection& reflection = *message.GetReflection();
  size_t index = 0;
  for (const YAML::Node& element : value) {
    std::string element_path = Element(path, index++);
    int element_line = LineOf(element, line);
    if (!Spend(element_path, element_line)) return;
    lines_.Record(element_path, element_line);
    if (field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      ReadScalar(element, message, field, element_path, element_line);
      continue;
    }
    Message* child = reflection.AddMessage(&message, &field);
    if (element.IsMap()) {
      ReadMessage(element, *child, element_path, element_line, depth + 1);
    } else if (!element.IsNull()) {
      problems_.Add(element_line, element_path,
                    std::string("expected a mapping, got ") + TypeName(element));
    }
  }
}

template <typename T>
std::optional<T> YamlReader::Integer(const std::string& text, const char* type_name,
                                     const std::string& path, int line) {
  bool out_of_range = false;
  std::optional<T> value = ParseInteger<T>(text, &out_of_range);
  if (value) return value;
  if (out_of_range || (std::is_unsigned_v<T> && ParseInteger<int64_t>(text, &out_of_range))) {
    problems_.Add(line, path, "\"" + text + "\" is out of range for " + type_name);
  } else {
    problems_.Add(line, path, "expected an integer, got \"" + text + "\"");
  }
  return std::nullopt;
}

std::optional<int> YamlReader::EnumValue(const std::string& text, const EnumDescriptor& type,
                                         const std::string& path, int line) {
  std::string lower = Lower(text);
  std::string expected;
  std::string suggestion;
  for (int i = 0; i < type.value_count(); ++i) {
    std::string name = Lower(type.value(i)->name());
    if (name == lower) return type.value(i)->number();
    if (type.value(i)->number() == 0) continue;
    expected += (expected.empty() ? "" : ", ") + name;
    if (suggestion.empty() && EditDistance(lower, name) <= 2) suggestion = name;
  }
  std::string reason = "unknown value \"" + text + "\"";
  if (!suggestion.empty()) reason += " (did you mean \"" + suggestion + "\"?)";
  problems_.Add(line, path, reason + "; expected one of: " + expected);
  return std::nullopt;
}

void YamlReader::ReadScalar(const YAML::Node& value, Message& message, const FieldDescriptor& field,
                            const std::string& path, int line) {
  if (!value.IsScalar()) {
    problems_.Add(line, path, std::string("expected a scalar, got ") + TypeName(value));
    return;
  }
  const std::string& text = value.Scalar();
  const Reflection& r = *message.GetReflection();
  const bool rep = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (field.type() == FieldDescriptor::TYPE_STRING && !IsUtf8(text)) {
        problems_.Add(line, path, "not valid UTF-8 (save the file as UTF-8)");
        return;
      }
      rep ? r.AddString(&message, &field, text) : r.SetString(&message, &field, text);
      return;
    case FieldDescriptor::CPPTYPE_INT32:
      if (auto v = Integer<int32_t>(text, "int32", path, line)) {
        rep ? r.AddInt32(&message, &field, *v) : r.SetInt32(&message, &field, *v);
      }
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      if (auto v = Integer<uint32_t>(text, "uint32", path, line)) {
        rep ? r.AddUInt32(&message, &field, *v) : r.SetUInt32(&message, &field, *v);
      }
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      if (auto v = Integer<int64_t>(text, "int64", path, line)) {
        rep ? r.AddInt64(&message, &field, *v) : r.SetInt64(&message, &field, *v);
      }
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      if (auto v = Integer<uint64_t>(text, "uint64", path, line)) {
        rep ? r.AddUInt64(&message, &field, *v) : r.SetUInt64(&message, &field, *v);
      }
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      if (auto v = ParseDouble(text)) {
        if (field.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
          auto f = static_cast<float>(*v);
          rep ? r.AddFloat(&message, &field, f) : r.SetFloat(&message, &field, f);
        } else {
          rep ? r.AddDouble(&message, &field, *v) : r.SetDouble(&message, &field, *v);
        }
      } else {
        problems_.Add(line, path, "expected a number, got \"" + text + "\"");
      }
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      if (auto v = ParseBool(text)) {
        rep ? r.AddBool(&message, &field, *v) : r.SetBool(&message, &field, *v);
      } else {
        problems_.Add(line, path, "expected true or false, got \"" + text + "\"");
      }
      return;
    case FieldDescriptor::CPPTYPE_ENUM:
      if (auto v = EnumValue(text, *field.enum_type(), path, line)) {
        rep ? r.AddEnumValue(&message, &field, *v) : r.SetEnumValue(&message, &field, *v);
      }
      return;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  problems_.Add(line, path, "internal: no scalar conversion for this field");
}

}  // namespace

void ReadYaml(std::string_view yaml, Message& message, SourceLines& lines, Problems& problems) {
  try {
    const std::string text(yaml);
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
    }
    const YAML::Node root = YAML::Load(text);  // the first document
    if (counter.documents == 0 || root.IsNull()) {
      problems.Add(1, "", "the file is empty; expected a mapping of city settings");
      return;
    }
    if (counter.documents > 1) {
      int line = counter.second.is_null() ? 0 : counter.second.line + 1;
      problems.Add(line, "", "only one YAML document is allowed");
    }
    if (!root.IsMap()) {
      int line = root.Mark().is_null() ? 1 : root.Mark().line + 1;
      problems.Add(line, "",
                   std::string("expected a mapping at the top level, got ") + TypeName(root));
      return;
    }
    lines.Record("", 1);
    // Without aliases a value costs at least a byte or two of input; past this, aliases are at
    // work.
    YamlReader reader(lines, problems, 4 * yaml.size() + 1024);
    reader.ReadMessage(root, message, "", 1, 0);
  } catch (const YAML::DeepRecursion& e) {
    problems.Add(e.mark.is_null() ? 0 : e.mark.line + 1, "",
                 "nested too deep (" + std::to_string(e.depth()) + " levels)");
  } catch (const YAML::Exception& e) {
    problems.Add(e.mark.is_null() ? 0 : e.mark.line + 1, "", "syntax error: " + e.msg);
  } catch (const std::exception& e) {
    problems.Add(0, "", std::string("cannot read the YAML: ") + e.what());
  }
}

}  // namespace casebus::config
