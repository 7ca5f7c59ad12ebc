#include "engine/base/proto_check.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

namespace casebus {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::UnknownFieldSet;

// A message type's fields that hold messages, by field number (the order ListFields gives, so
// the first unknown field reported is the same). Filled on first use, shared by every thread:
// readers scan the published entries without a lock (a few dozen types; the ones a command
// holds come first), a new type is added under the mutex. (A thread_local map cost more in
// TLS lookups than the walk itself.)
struct TypeFields {
  const Descriptor* type = nullptr;
  std::vector<const FieldDescriptor*> fields;
};
constexpr int kMaxTypes = 256;
std::array<TypeFields, kMaxTypes> g_types;
std::atomic<int> g_type_count{0};
std::mutex g_types_mu;

std::vector<const FieldDescriptor*> FieldsOf(const Descriptor* d) {
  std::vector<const FieldDescriptor*> v;
  for (int i = 0; i < d->field_count(); ++i)
    if (d->field(i)->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) v.push_back(d->field(i));
  std::sort(v.begin(), v.end(), [](const FieldDescriptor* a, const FieldDescriptor* b) { return a->number() < b->number(); });
  return v;
}

// `scratch` holds the answer when every slot is taken (more types than casebus.v1 has).
const std::vector<const FieldDescriptor*>& MessageFields(const Descriptor* d,
                                                         std::vector<const FieldDescriptor*>& scratch) {
  int n = g_type_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i)
    if (g_types[i].type == d) return g_types[i].fields;
  std::lock_guard lock(g_types_mu);
  n = g_type_count.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i)
    if (g_types[i].type == d) return g_types[i].fields;
  if (n == kMaxTypes) return scratch = FieldsOf(d);
  g_types[n].fields = FieldsOf(d);
  g_types[n].type = d;
  g_type_count.store(n + 1, std::memory_order_release);
  return g_types[n].fields;
}

// One step down from a message: the field, and the element's index when it is repeated.
struct Step {
  const FieldDescriptor* field;
  int index;  // -1: a singular field
};

// The first message at or under m that holds unknown fields, depth first in field-number order;
// `chain` is left holding the steps down to it. Nothing is allocated on the way down (but the
// chain's growth): a path is spelled only for a message refused.
const UnknownFieldSet* FirstUnknown(const Message& m, std::vector<Step>& chain) {
  const auto* refl = m.GetReflection();
  const UnknownFieldSet& unknown = refl->GetUnknownFields(m);
  if (!unknown.empty()) return &unknown;
  // A oneof's member is there when it is the oneof's case: asked once per oneof (a command is
  // one oneof of twenty-odd message kinds), not once per member.
  constexpr int kOneofs = 4;
  const FieldDescriptor* active[kOneofs];
  bool asked[kOneofs] = {};
  auto present = [&](const FieldDescriptor* f) {
    const google::protobuf::OneofDescriptor* o = f->real_containing_oneof();
    if (o == nullptr || o->index() >= kOneofs) return refl->HasField(m, f);
    if (!asked[o->index()]) {
      asked[o->index()] = true;
      active[o->index()] = refl->GetOneofFieldDescriptor(m, o);
    }
    return active[o->index()] == f;
  };
  std::vector<const FieldDescriptor*> scratch;
  for (const FieldDescriptor* f : MessageFields(m.GetDescriptor(), scratch)) {
    if (f->is_repeated()) {
      const int n = refl->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        chain.push_back({f, i});
        if (const UnknownFieldSet* u = FirstUnknown(refl->GetRepeatedMessage(m, f, i), chain)) return u;
        chain.pop_back();
      }
    } else if (present(f)) {
      chain.push_back({f, -1});
      if (const UnknownFieldSet* u = FirstUnknown(refl->GetMessage(m, f), chain)) return u;
      chain.pop_back();
    }
  }
  return nullptr;
}

}  // namespace

Status CheckNoUnknownFields(const Message& m, const std::string& path, std::string_view what) {
  std::vector<Step> chain;
  const UnknownFieldSet* unknown = FirstUnknown(m, chain);
  if (unknown == nullptr) return Status::Ok();
  std::string at = path;
  for (const Step& s : chain) {
    if (!at.empty()) at += '.';
    at += s.field->name();
    if (s.index >= 0) at += "[" + std::to_string(s.index) + "]";
  }
  return Status::InvalidArgument((at.empty() ? std::string(what) : at) + " has unknown field number " +
                                     std::to_string(unknown->field(0).number()) + "; this server speaks casebus.v1",
                                 at);
}

}  // namespace casebus
