// CheckNoUnknownFields (engine/base/proto_check.h): the edge's refusal of fields this build does
// not know, anywhere in a message, naming the path of the first one.

#include <string>

#include <gtest/gtest.h>

#include "casebus/v1/command.pb.h"
#include "engine/base/proto_check.h"

namespace casebus {
namespace {

// Field 99, varint 1: a field no casebus.v1 message has.
std::string Unknown(int number) {
  std::string tag;
  for (uint32_t v = static_cast<uint32_t>(number) << 3; ; v >>= 7) {
    if (v < 0x80) {
      tag.push_back(static_cast<char>(v));
      break;
    }
    tag.push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  return tag + '\x01';
}

// T parsed from m's bytes with an unknown field `number` appended.
template <typename T>
T WithUnknown(const T& m, int number) {
  T out;
  EXPECT_TRUE(out.ParseFromString(m.SerializeAsString() + Unknown(number)));
  return out;
}

v1::Request TwoReports() {
  v1::Request r;
  r.set_version(1);
  for (int i = 0; i < 2; ++i) {
    auto* report = r.add_commands()->mutable_report();
    report->set_category("0101");
    report->mutable_place()->set_grid("320102001001");
    report->mutable_reporter()->set_name("inspector " + std::to_string(i));
  }
  r.mutable_query();
  return r;
}

TEST(ProtoCheckTest, AKnownMessageIsAccepted) {
  EXPECT_TRUE(CheckNoUnknownFields(TwoReports()).ok());
  EXPECT_TRUE(CheckNoUnknownFields(v1::Request()).ok());
}

TEST(ProtoCheckTest, TheFirstUnknownFieldIsNamedByItsPath) {
  // On the message itself: `what` names it.
  Status s = CheckNoUnknownFields(WithUnknown(TwoReports(), 99));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "request has unknown field number 99; this server speaks casebus.v1");
  EXPECT_EQ(s.field(), "");
  EXPECT_EQ(CheckNoUnknownFields(WithUnknown(TwoReports(), 99), "", "frame").message(),
            "frame has unknown field number 99; this server speaks casebus.v1");

  // Deep inside the second element of a repeated field.
  v1::Request r = TwoReports();
  auto* second = r.mutable_commands(1)->mutable_report();
  *second->mutable_place() = WithUnknown(second->place(), 99);
  s = CheckNoUnknownFields(r);
  EXPECT_EQ(s.field(), "commands[1].report.place");
  EXPECT_EQ(s.message(), "commands[1].report.place has unknown field number 99; this server speaks casebus.v1");
  // Under a path the caller gives.
  EXPECT_EQ(CheckNoUnknownFields(r, "batch").field(), "batch.commands[1].report.place");

  // Several: the first in order — an element before the next, a message before what is
  // inside it, a lower field number (place, 3) before a higher (reporter, 8).
  *second->mutable_reporter() = WithUnknown(second->reporter(), 97);
  EXPECT_EQ(CheckNoUnknownFields(r).field(), "commands[1].report.place");
  *r.mutable_commands(1)->mutable_report() = WithUnknown(*second, 98);
  s = CheckNoUnknownFields(r);
  EXPECT_EQ(s.field(), "commands[1].report");
  EXPECT_NE(s.message().find("number 98"), std::string::npos) << s.message();
  auto* first = r.mutable_commands(0)->mutable_report();
  *first->mutable_reporter() = WithUnknown(first->reporter(), 96);
  EXPECT_EQ(CheckNoUnknownFields(r).field(), "commands[0].report.reporter");
  *r.mutable_query() = WithUnknown(r.query(), 95);  // field 3, after commands (2)
  EXPECT_EQ(CheckNoUnknownFields(r).field(), "commands[0].report.reporter");
  v1::Request only_query = TwoReports();
  *only_query.mutable_query() = WithUnknown(only_query.query(), 95);
  EXPECT_EQ(CheckNoUnknownFields(only_query).field(), "query");
}

}  // namespace
}  // namespace casebus
