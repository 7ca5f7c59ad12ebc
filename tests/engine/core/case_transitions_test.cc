// CaseMachine: every command in every lifecycle state. Legal ones succeed; illegal ones are
// refused with FAILED_PRECONDITION naming the case, its state and what the command needs.

#include <functional>
#include <set>
#include <string>

#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

using CaseTransitionsTest = MachineTest;

TEST_F(CaseTransitionsTest, EveryCommandInEveryState) {
  using Make = std::function<v1::Command(uint64_t subject, uint64_t other)>;
  struct Verb {
    const char* name;
    Make make;
    std::set<v1::CaseState> legal;
    const char* needs;
  };
  const std::set<v1::CaseState> open = {v1::REPORTED, v1::REGISTERED, v1::DISPATCHED, v1::ACCEPTED,
                                        v1::RETURNED, v1::SUSPENDED,  v1::RESOLVED,   v1::VERIFIED};
  const Verb verbs[] = {
      {"register",
       [](uint64_t s, uint64_t) { return cmd::Register(s); },
       {v1::REPORTED},
       "register needs it reported and not yet registered"},
      {"reject",
       [](uint64_t s, uint64_t) { return cmd::Reject(s); },
       {v1::REPORTED},
       "reject (不予立案) needs it reported and not yet registered"},
      {"dispatch",
       [](uint64_t s, uint64_t) { return cmd::Dispatch(s); },
       {v1::REGISTERED, v1::RETURNED},
       "dispatch needs it registered"},
      {"accept",
       [](uint64_t s, uint64_t) { return cmd::Accept(s); },
       {v1::DISPATCHED},
       "accept (签收) needs it dispatched"},
      {"return",
       [](uint64_t s, uint64_t) { return cmd::Return(s); },
       {v1::DISPATCHED, v1::ACCEPTED},
       "return (回退) needs it dispatched to or accepted by"},
      {"request_extension",
       [](uint64_t s, uint64_t) { return cmd::RequestExtension(s, 2); },
       {v1::DISPATCHED, v1::ACCEPTED},
       "an extension request (延期) needs it dispatched or accepted"},
      {"suspend",
       [](uint64_t s, uint64_t) { return cmd::Suspend(s); },
       {v1::DISPATCHED, v1::ACCEPTED, v1::RETURNED},
       "suspend (挂账) needs it dispatched, accepted or returned"},
      {"resume",
       [](uint64_t s, uint64_t) { return cmd::Resume(s); },
       {v1::SUSPENDED},
       "resume needs it suspended"},
      {"resolve",
       [](uint64_t s, uint64_t) { return cmd::Resolve(s); },
       {v1::ACCEPTED},
       "resolve needs it accepted"},
      {"verify",
       [](uint64_t s, uint64_t) { return cmd::Verify(s, true); },
       {v1::RESOLVED},
       "verify needs it resolved (处置完毕)"},
      {"close",
       [](uint64_t s, uint64_t) { return cmd::Close(s); },
       {v1::VERIFIED},
       "close (结案) needs it verified"},
      {"reopen",
       [](uint64_t s, uint64_t) { return cmd::Reopen(s); },
       {v1::CLOSED},
       "reopen (回头看) needs it closed"},
      {"merge", [](uint64_t s, uint64_t o) { return cmd::Merge(s, o); }, open,
       "merge needs it open"},
      {"void", [](uint64_t s, uint64_t) { return cmd::Void(s); }, open,
       "void (作废) needs it open"},
      {"note", [](uint64_t s, uint64_t) { return cmd::Note(s); }, open, "a note needs it open"},
  };
  const v1::CaseState states[] = {v1::REPORTED, v1::REGISTERED, v1::DISPATCHED, v1::ACCEPTED,
                                  v1::RETURNED, v1::SUSPENDED,  v1::RESOLVED,   v1::VERIFIED,
                                  v1::CLOSED,   v1::REJECTED,   v1::VOIDED,     v1::MERGED};
  const Millis t = Monday9();
  for (v1::CaseState state : states) {
    for (const Verb& verb : verbs) {
      SCOPED_TRACE(std::string(verb.name) + " on a " + StateName(state) + " case");
      SetUp();
      const uint64_t other = Reported(kWellCover, kGridB1);  // open, for merges
      const uint64_t s = Reported(kDrainClog, kGridA1);
      auto step = [&](v1::Command c) { Ok(std::move(c), t); };
      if (state == v1::REJECTED) step(cmd::Reject(s));
      if (state == v1::MERGED) step(cmd::Merge(s, other));
      if (state != v1::REPORTED && state != v1::REJECTED && state != v1::MERGED)
        step(cmd::Register(s));
      if (state == v1::VOIDED) step(cmd::Void(s));
      const std::set<v1::CaseState> later = {v1::DISPATCHED, v1::ACCEPTED, v1::RETURNED,
                                             v1::SUSPENDED,  v1::RESOLVED, v1::VERIFIED,
                                             v1::CLOSED};
      if (later.count(state)) step(cmd::Dispatch(s));
      if (state == v1::RETURNED) step(cmd::Return(s));
      if (state == v1::SUSPENDED) step(cmd::Suspend(s));
      const bool disposed = state >= v1::RESOLVED && state <= v1::CLOSED;  // RESOLVED..CLOSED
      if (state == v1::ACCEPTED || disposed) step(cmd::Accept(s));
      if (disposed) step(cmd::Resolve(s));
      if (state == v1::VERIFIED || state == v1::CLOSED) step(cmd::Verify(s, true));
      if (state == v1::CLOSED) step(cmd::Close(s));
      ASSERT_EQ(Get(s).state(), state);

      Effects fx = Run(verb.make(s, other), t + kMinute);
      if (verb.legal.count(state)) {
        EXPECT_EQ(fx.result.code(), v1::OK) << fx.result.message();
        EXPECT_TRUE(fx.Changed());
      } else {
        ExpectIllegal(fx, s, StateName(state), verb.needs);
        EXPECT_EQ(Get(s).state(), state);
      }
    }
  }
}

}  // namespace
}  // namespace casebus::core
