#include "engine/core/case_machine.h"

#include <pthread.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <thread>

#include <google/protobuf/util/message_differencer.h>

#include "engine/auth/policy.h"
#include "engine/core/command_check.h"

namespace casebus::core {
namespace {

v1::Code ToCode(StatusCode c) {
  switch (c) {
    case StatusCode::kOk: return v1::OK;
    case StatusCode::kInvalidArgument: return v1::INVALID_ARGUMENT;
    case StatusCode::kNotFound: return v1::NOT_FOUND;
    case StatusCode::kFailedPrecondition: return v1::FAILED_PRECONDITION;
    case StatusCode::kAlreadyExists: return v1::ALREADY_EXISTS;
    case StatusCode::kUnavailable: return v1::UNAVAILABLE;
    case StatusCode::kPermissionDenied: return v1::PERMISSION_DENIED;
    default: return v1::INTERNAL;
  }
}

std::string CaseRef(const v1::Case& c) {
  return "case " + std::to_string(c.id()) + " is " + StateName(c.state());
}

// "case 7 is dispatched; resolve needs it accepted: the department must accept (签收) the
// work order first"
Status Illegal(const v1::Case& c, std::string_view verb, std::string_view need) {
  return Status::FailedPrecondition(CaseRef(c) + "; " + std::string(verb) + " needs " +
                                    std::string(need));
}

v1::CaseEvent NewEvent(v1::EventType type, const v1::Case& c, Millis now, const std::string& actor) {
  v1::CaseEvent e;
  e.set_type(type);
  e.set_case_id(c.id());
  e.set_at_ms(now);
  e.set_actor(actor);
  return e;
}

}  // namespace

namespace {
// The byte ranges of a serialized CaseEvent's top-level fields other than reported (14) and
// the three stage clocks (28–30), adjacent ranges joined. False when the bytes are not
// well-formed protobuf wire format or have more pieces than `out` holds.
bool KeptFields(std::string_view b, std::array<std::pair<size_t, size_t>, 64>& out, size_t& n) {
  n = 0;
  size_t p = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= b.size()) return false;
      const auto byte = static_cast<uint8_t>(b[p++]);
      v |= uint64_t{byte & 0x7fu} << shift;
      if (byte < 0x80) return true;
    }
    return false;
  };
  while (p < b.size()) {
    const size_t start = p;
    uint64_t tag = 0, len = 0;
    if (!varint(tag)) return false;
    switch (tag & 7) {
      case 0: if (!varint(len)) return false; break;
      case 1: p += 8; break;
      case 2:
        if (!varint(len) || len > b.size() - std::min(p, b.size())) return false;
        p += len;
        break;
      case 5: p += 4; break;
      default: return false;
    }
    if (p > b.size()) return false;
    const uint64_t field = tag >> 3;
    if (field == 14 || (field >= 28 && field <= 30)) continue;
    if (n > 0 && out[n - 1].second == start) {
      out[n - 1].second = p;
    } else {
      if (n == out.size()) return false;
      out[n++] = {start, p};
    }
  }
  return true;
}
}  // namespace

uint64_t PayloadHash(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : bytes) h = (h ^ ch) * 1099511628211ull;
  return h;
}

std::string StateName(v1::CaseState s) {
  std::string n = v1::CaseState_Name(s);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return n;
}

Result<std::unique_ptr<CaseMachine>> CaseMachine::Create(
    std::shared_ptr<const v1::CityConfig> config, std::vector<OffsetChange> offsets) {
  auto router = Router::Compile(*config);
  if (!router) return Err(router.error());
  return std::unique_ptr<CaseMachine>(
      new CaseMachine(std::move(config), std::move(*router), std::move(offsets)));
}

CaseMachine::CaseMachine(std::shared_ptr<const v1::CityConfig> config, Router router,
                         std::vector<OffsetChange> offsets)
    : config_(std::move(config)),
      router_(std::move(router)),
      calendar_(config_->calendar(), offsets),
      ladder_(*config_),
      ledger_(*config_, calendar_),
      deduper_(config_->dedup(), config_->grids_size() ? config_->grids(0).lat() : 30.0) {
  for (const auto& c : config_->categories()) categories_[c.code()] = &c;
  for (const auto& d : config_->departments()) departments_[d.id()] = &d;
  for (const auto& g : config_->grids()) grids_[g.code()] = true;
  unit_names_ = UnitNamesOf(*config_);
  const double window_hours = config_->intake().request_id_window_hours();
  request_window_ms_ = static_cast<Millis>(window_hours * 3'600'000.0);
  offsets_ = std::move(offsets);
}

Status CaseMachine::Reconfigure(std::shared_ptr<const v1::CityConfig> next) {
  using google::protobuf::util::MessageDifferencer;
  std::vector<std::string> why;
  const v1::CityConfig& now = *config_;
  if (now.calendar().time_zone() != next->calendar().time_zone() ||
      now.calendar().utc_offset_minutes() != next->calendar().utc_offset_minutes())
    why.push_back("calendar.time_zone: the city's time zone changes only with a restart (and a ledger rebuild)");
  if (!MessageDifferencer::Equals(now.intake(), next->intake()))
    why.push_back("intake: limits change only with a restart");
  if (!MessageDifferencer::Equals(now.dedup(), next->dedup()))
    why.push_back("dedup: the duplicate policy changes only with a restart");
  std::map<std::string, const v1::Department*> old_depts, new_depts;
  for (const auto& d : now.departments()) old_depts[d.id()] = &d;
  for (const auto& d : next->departments()) new_depts[d.id()] = &d;
  for (const auto& [id, d] : old_depts) {
    auto it = new_depts.find(id);
    if (it == new_depts.end())
      why.push_back("departments: " + id + " is gone; departments and their adapters change only with a restart");
    else if (!MessageDifferencer::Equals(d->adapter(), it->second->adapter()))
      why.push_back("departments: " + id + ".adapter changed; adapters change only with a restart");
  }
  for (const auto& [id, d] : new_depts)
    if (!old_depts.count(id)) why.push_back("departments: " + id + " is new; departments are added with a restart");
  std::set<std::string> categories, grids;
  for (const auto& c : next->categories()) categories.insert(c.code());
  for (const auto& g : next->grids()) grids.insert(g.code());
  std::map<std::string, int> lost;  // what open cases would lose → how many
  ScanFields([&](uint64_t, const v1::Case& c) {
    if (!IsOpen(c.state())) return;
    if (!categories.count(c.category())) ++lost["categories: " + c.category()];
    if (!grids.count(c.place().grid())) ++lost["grids: " + c.place().grid()];
  });
  size_t listed = 0;
  for (const auto& [what, n] : lost) {
    if (++listed > 20) {
      why.push_back("... and " + std::to_string(lost.size() - 20) + " more");
      break;
    }
    why.push_back(what + " is gone but " + std::to_string(n) + " open case(s) use it");
  }
  auto router = Router::Compile(*next);
  if (!router) why.push_back(router.error().message());
  if (!why.empty()) {
    std::string msg = "the new config cannot replace the running one; the old one stays:";
    for (const auto& w : why) msg += "\n  " + w;
    return Status::FailedPrecondition(msg);
  }
  retired_configs_.push_back(config_);
  config_ = std::move(next);
  router_ = std::move(*router);
  calendar_ = WorkingCalendar(config_->calendar(), offsets_);
  ladder_ = EscalationLadder(*config_);
  ledger_.SetClasses(*config_);
  limits_cache_.clear();
  categories_.clear();
  departments_.clear();
  grids_.clear();
  for (const auto& c : config_->categories()) categories_[c.code()] = &c;
  for (const auto& d : config_->departments()) departments_[d.id()] = &d;
  for (const auto& g : config_->grids()) grids_[g.code()] = true;
  unit_names_ = UnitNamesOf(*config_);
  return Status::Ok();
}

const v1::Case* CaseMachine::Find(uint64_t id) const {
  const Stored* s = cases_.find(id);
  return s ? &Fields(*s) : nullptr;
}

void CaseMachine::Unpack(const Stored& s) const {
  s.parsed = std::make_unique<v1::Case>();
  // The bytes parsed once already, when the checkpoint was restored (RestoreCheckpoint checks
  // every case), so they parse again.
  (void)s.parsed->ParseFromArray(s.packed.data(), static_cast<int>(s.packed.size()));
  s.packed = {};
  if (s.history.empty()) s.history.assign(s.packed_history);
  s.packed_history = {};
  if (--unparsed_ == 0) backing_.reset();  // no view into the checkpoint is left
}

size_t CaseMachine::ParseRestored(size_t n) {
  for (; n > 0 && unparsed_ > 0 && parse_cursor_ < next_case_id_; ++parse_cursor_) {
    const Stored* s = cases_.find(parse_cursor_);
    if (s && !s->parsed) {
      Unpack(*s);
      --n;
    }
  }
  return unparsed_;
}

std::optional<v1::Case> CaseMachine::CaseWithHistory(uint64_t id) const {
  const Stored* s = cases_.find(id);
  if (!s) return std::nullopt;
  v1::Case c = Fields(*s);
  // Only field-34 entries this machine encoded: parsing cannot fail short of memory damage.
  const std::string_view history = s->History();
  if (!c.MergeFromString(std::string(history))) c.clear_history();
  return c;
}

size_t CaseMachine::HistoryBytes(uint64_t id) const {
  const Stored* s = cases_.find(id);
  return s ? std::max(s->history.capacity(), s->packed_history.size()) : 0;
}

CaseMachine::Stored& CaseMachine::CaseTable::operator[](uint64_t id) {
  while (id >= capacity()) chunks_.push_back(std::make_unique<Slot[]>(kChunk));
  Slot& s = chunks_[id >> kShift][id & kMask];
  if (!s.present) {
    s.present = true;
    ++size_;
  }
  return s.stored;
}

void CaseMachine::AppendHistory(Stored& s, const v1::CaseEvent& e, std::string_view encoded) {
  std::string& history = s.history;
  if (history.empty() && !s.packed_history.empty()) history.assign(s.packed_history);
  s.packed_history = {};
  if (encoded.empty()) EncodeHistoryEntry(e, history);
  else history.append(encoded);
}

void CaseMachine::EncodeHistoryEntry(const v1::CaseEvent& e, std::string& history) {
  // The report's fields live on the case, and the clocks are the case's own fields: the
  // history keeps what people read. The event is serialized once and those top-level fields
  // are left out at the wire level (copying the event to clear them cost more than all the
  // rest of the history).
  static thread_local std::string full;
  full.clear();
  e.AppendToString(&full);
  EncodeHistoryEntry(full, history);
}

void CaseMachine::EncodeHistoryEntry(std::string_view full, std::string& history) {
  std::array<std::pair<size_t, size_t>, 64> kept;  // [begin, end) byte ranges of `full`
  size_t ranges = 0, kept_bytes = 0;
  if (!KeptFields(full, kept, ranges)) {  // cannot happen for bytes that parsed as an event
    kept[0] = {0, full.size()};
    ranges = 1;
  }
  for (size_t i = 0; i < ranges; ++i) kept_bytes += kept[i].second - kept[i].first;
  constexpr uint32_t kTag = (34u << 3) | 2u;  // Case.history, length-delimited
  auto varint = [&history](uint64_t v) {
    while (v >= 0x80) {
      history.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    history.push_back(static_cast<char>(v));
  };
  varint(kTag);
  varint(kept_bytes);
  for (size_t i = 0; i < ranges; ++i) history.append(full.substr(kept[i].first, kept[i].second - kept[i].first));
}

int32_t CaseMachine::DepartmentIndex(const std::string& id) {
  auto [it, added] = department_index_.try_emplace(id, static_cast<int32_t>(departments_by_index_.size()));
  if (added) departments_by_index_.push_back(id);
  return it->second;
}

const v1::StageLimits& CaseMachine::LimitsFor(const v1::Case& c, v1::StageLimits& scratch) const {
  // The limits depend on the category, the condition and urgency only: computed once per
  // combination (the merge below copies stage messages) until a reload clears the cache.
  static thread_local std::string key;
  key.assign(c.category());
  key.push_back('\x1f');
  key.append(c.condition());
  key.push_back(c.urgency() == v1::URGENT ? 'U' : 'N');
  if (auto hit = limits_cache_.find(key); hit != limits_cache_.end()) return *hit->second;
  auto limits = std::make_unique<v1::StageLimits>(ComputeLimits(c, scratch));
  return *limits_cache_.emplace(key, std::move(limits)).first->second;
}

const v1::StageLimits& CaseMachine::ComputeLimits(const v1::Case& c, v1::StageLimits& scratch) const {
  auto it = categories_.find(c.category());
  if (it == categories_.end()) return scratch;
  const v1::Category& cat = *it->second;
  if (c.urgency() == v1::URGENT && (cat.has_urgent() || std::any_of(cat.conditions().begin(),
                                                                   cat.conditions().end(),
                                                                   [](const v1::Condition& k) {
                                                                     return k.has_urgent();
                                                                   }))) {
    // Urgent cases: the urgent stages (condition's, then category's) over the normal ones.
    v1::Case normal = c;
    normal.set_urgency(v1::NORMAL);
    v1::StageLimits base = ComputeLimits(normal, scratch);
    const v1::Condition* cond = nullptr;
    for (const auto& k : cat.conditions())
      if (k.id() == c.condition()) cond = &k;
    for (const v1::StageLimits* u : {&cat.urgent(), cond ? &cond->urgent() : nullptr}) {
      if (!u) continue;
      if (u->has_accept()) *base.mutable_accept() = u->accept();
      if (u->has_handle()) *base.mutable_handle() = u->handle();
      if (u->has_verify()) *base.mutable_verify() = u->verify();
      if (u->has_rework()) *base.mutable_rework() = u->rework();
    }
    scratch = std::move(base);
    return scratch;
  }
  // The chosen condition's stages override the category's; with no condition chosen, the
  // first condition stands in for stages the category leaves out.
  const v1::Condition* cond = nullptr;
  for (const auto& k : cat.conditions())
    if (k.id() == c.condition()) cond = &k;
  const bool chosen = cond != nullptr;
  if (!cond && cat.conditions_size() > 0) cond = &cat.conditions(0);
  if (!cond) return cat.limits();
  scratch = cat.limits();
  const auto& l = cond->limits();
  // A stage the condition sets wins when the condition was chosen; otherwise it only fills a
  // stage the category leaves out. (mutable_*() would create empty stages, so test first.)
  if (l.has_accept() && (chosen || !scratch.has_accept())) *scratch.mutable_accept() = l.accept();
  if (l.has_handle() && (chosen || !scratch.has_handle())) *scratch.mutable_handle() = l.handle();
  if (l.has_verify() && (chosen || !scratch.has_verify())) *scratch.mutable_verify() = l.verify();
  if (l.has_rework() && (chosen || !scratch.has_rework())) *scratch.mutable_rework() = l.rework();
  return scratch;
}

Effects CaseMachine::Execute(const v1::Command& cmd, Millis now) {
  Effects fx;
  fx.result.set_request_id(cmd.request_id());
  // Reused buffer: hashing a command must not allocate on the hot path.
  static thread_local std::string bytes;
  bytes.clear();
  cmd.AppendToString(&bytes);
  const uint64_t hash = PayloadHash(bytes);
  ForgetOldRequests(now);
  if (const RequestTable::Entry* seen = cmd.request_id().empty() ? nullptr : requests_.Find(cmd.request_id())) {
    if (seen->payload_hash != hash) {
      fx.result.set_code(v1::ALREADY_EXISTS);
      fx.result.set_field("request_id");
      fx.result.set_message("request_id " + cmd.request_id() +
                            " was already used for a different command; use a new request_id");
      return fx;
    }
    fx.result.set_code(v1::OK);
    fx.result.set_case_id(seen->case_id);
    fx.result.set_merged(seen->merged);
    if (seen->department >= 0)
      fx.result.set_department(departments_by_index_[static_cast<size_t>(seen->department)]);
    if (seen->work_order_case != 0)
      fx.result.set_work_order_id(std::to_string(seen->work_order_case) + "-" +
                                  std::to_string(seen->work_order_n));
    fx.result.set_duplicate(true);
    fx.result.set_message("already applied");
    return fx;
  }
  Events events;
  uint64_t result_case = 0;
  Status st = CheckCommand(cmd);
  if (st.ok()) st = Decide(cmd, now, events, result_case);
  if (!st.ok()) {
    fx.result.set_code(ToCode(st.code()));
    fx.result.set_message(st.message());
    fx.result.set_field(st.field());
    fx.result.set_case_id(TargetCase(cmd));
    return fx;
  }
  const bool merged = cmd.has_report() && events.front().type() == v1::EV_ABSORBED;
  AttachClocks(events, now);
  for (auto& e : events) {
    ApplyScheduled(e);
    const v1::Case& c = Fields(cases_.at(e.case_id()));
    switch (e.type()) {
      case v1::EV_DISPATCHED: fx.work_orders.push_back(MakeWorkOrder(c, now, "dispatch")); break;
      case v1::EV_REWORK: fx.work_orders.push_back(MakeWorkOrder(c, now, "rework")); break;
      case v1::EV_REOPENED: fx.work_orders.push_back(MakeWorkOrder(c, now, "reopen")); break;
      default: break;
    }
    *fx.record.add_events() = std::move(e);
  }
  fx.record.set_at_ms(now);
  fx.record.set_request_id(cmd.request_id());
  fx.record.set_payload_hash(hash);
  fx.record.set_result_case_id(result_case);
  fx.record.set_merged(merged);
  Remember(fx.record);
  fx.result.set_code(v1::OK);
  fx.result.set_case_id(result_case);
  fx.result.set_merged(merged);
  if (!fx.work_orders.empty()) {
    fx.result.set_department(fx.work_orders.back().department());
    fx.result.set_work_order_id(fx.work_orders.back().id());
  }
  return fx;
}

void CaseMachine::Replay(const v1::JournalRecord& r) {
  if (bulk_) {
    for (const auto& e : r.events()) ReplayBulk(e, {}, nullptr);
  } else {
    replaying_ = true;
    for (const auto& e : r.events()) ApplyScheduled(e);
    replaying_ = false;
  }
  Remember(r);
}

void CaseMachine::Prepare(PreparedRecord& p, std::string_view bytes) {
  // The events' bytes are where the record's were read from: field 4, length-delimited, in
  // order (protobuf writes fields in number order and a parse keeps that order).
  const size_t n = static_cast<size_t>(p.record.events_size());
  if (p.history.size() < n) p.history.resize(n);
  size_t k = 0, at = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && at < bytes.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(bytes[at++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) return true;
    }
    return false;
  };
  bool ok = true;
  while (ok && at < bytes.size()) {
    uint64_t tag = 0, len = 0;
    if (!varint(tag)) break;
    switch (tag & 7) {
      case 0: ok = varint(len); break;
      case 1: at += 8; break;
      case 5: at += 4; break;
      case 2:
        ok = varint(len) && len <= bytes.size() - std::min(at, bytes.size());
        if (ok && tag >> 3 == 4 && k < n) {
          p.history[k].clear();
          EncodeHistoryEntry(bytes.substr(at, len), p.history[k++]);
        }
        at += len;
        break;
      default: ok = false;
    }
    ok = ok && at <= bytes.size();
  }
  if (!ok || k != n) return Prepare(p);  // cannot happen for bytes that parsed as p.record
  p.prepared = true;
}

void CaseMachine::Prepare(PreparedRecord& p) {
  const size_t n = static_cast<size_t>(p.record.events_size());
  if (p.history.size() < n) p.history.resize(n);
  for (size_t i = 0; i < n; ++i) {
    p.history[i].clear();
    EncodeHistoryEntry(p.record.events(static_cast<int>(i)), p.history[i]);
  }
  p.prepared = true;
}

void CaseMachine::Replay(PreparedRecord& p) {
  if (!bulk_) return Replay(p.record);
  for (int i = 0; i < p.record.events_size(); ++i)
    ReplayBulk(*p.record.mutable_events(i), p.prepared ? std::string_view(p.history[static_cast<size_t>(i)]) : std::string_view());
  Remember(p.record);
}

void CaseMachine::ReplayBulk(v1::CaseEvent& e, std::string_view history) {
  const bool report = e.type() == v1::EV_REPORTED && e.has_reported();
  ReplayBulk(static_cast<const v1::CaseEvent&>(e), history, report ? e.mutable_reported() : nullptr);
}

void CaseMachine::ReplayBulk(const v1::CaseEvent& e, std::string_view history, v1::Case* take) {
  if (e.type() == v1::EV_ESCALATED) ++escalations_;
  const uint64_t id = e.case_id();
  if (id >= counted_out_.size()) counted_out_.resize(std::max<size_t>(id + 1, counted_out_.size() * 2));
  if (!counted_out_[id]) {
    counted_out_[id] = true;
    touched_.push_back(id);
    if (Stored* s = cases_.find(id)) CountOut(*s, Fields(*s));
  }
  Apply(e, history, take);
}

void CaseMachine::BeginBulkReplay() {
  bulk_ = true;
  requests_.Defer();
}

void CaseMachine::EndBulkReplay() {
  bulk_ = false;
  // Every touched case was parsed by its events (Apply), so both threads below only read.
  std::vector<std::pair<Stored*, const v1::Case*>> cases;
  cases.reserve(touched_.size());
  for (uint64_t id : touched_) {
    counted_out_[id] = false;
    if (Stored* s = cases_.find(id)) cases.emplace_back(s, &Fields(*s));
  }
  touched_.clear();
  // Two parts sharing nothing but the (read-only) cases, of about equal cost at 1M open cases
  // (0.63 s each): the request ids' index and the duplicate index on a thread of their own,
  // when there is enough to pay for it; the ledger, the counts and the timers here.
  auto side = [this, &cases] {
    requests_.IndexDeferred();
    for (const auto& [s, c] : cases)
      if (IsOpen(c->state())) deduper_.Restore(*c);
  };
  std::thread helper;
  if (cases.size() >= 4096) helper = std::thread([&] {
    pthread_setname_np(pthread_self(), "cb-reindex");
    side();
  });
  else side();
  for (const auto& [s, c] : cases) {
    CountIn(*s, *c);
    for (const auto& key : NextKeys(*c))
      if (key) timers_.Add(*key);
  }
  if (helper.joinable()) helper.join();
}

void CaseMachine::CountIn(Stored& s, const v1::Case& c) {
  const Ledger::Contribution counted = ledger_.Of(&c);
  s.ledger_keys = counted.keys;
  ledger_.Add(counted);
  ++by_state_[static_cast<int>(c.state())];
  if (c.supervision_open()) ++supervisions_open_;
}

void CaseMachine::CountOut(Stored& s, const v1::Case& c) {
  ledger_.Move(ledger_.Of(&c, &s.ledger_keys), {});
  --by_state_[static_cast<int>(c.state())];
  if (c.supervision_open()) --supervisions_open_;
  if (IsOpen(c.state())) deduper_.Remove(c);
  for (const auto& key : NextKeys(c))
    if (key) timers_.Remove(*key);
}

void CaseMachine::Prefetch(const v1::JournalRecord& r) const {
  if (!r.request_id().empty() && !requests_.deferring()) (void)requests_.Prefetch(r.request_id());
  for (const auto& e : r.events()) cases_.Prefetch(e.case_id());
}

void CaseMachine::Remember(const v1::JournalRecord& r) {
  ForgetOldRequests(r.at_ms());
  if (r.request_id().empty()) return;
  RequestTable::Entry entry;
  entry.payload_hash = r.payload_hash();
  entry.case_id = r.result_case_id();
  entry.merged = r.merged();
  for (const auto& e : r.events()) {
    if (e.work_order_id().empty()) continue;
    // Work order ids are "<case>-<n>", made by this machine (DecideDispatch and the rework
    // and reopen rules), so they parse.
    const std::string& w = e.work_order_id();
    const size_t dash = w.rfind('-');
    if (dash == std::string::npos) continue;
    uint64_t wo_case = 0;
    uint32_t wo_n = 0;
    const char* b = w.data();
    if (std::from_chars(b, b + dash, wo_case).ec != std::errc() ||
        std::from_chars(b + dash + 1, b + w.size(), wo_n).ec != std::errc())
      continue;
    entry.work_order_case = wo_case;
    entry.work_order_n = wo_n;
    if (const v1::Case* c = Find(e.case_id())) entry.department = DepartmentIndex(c->department());
  }
  requests_.Put(r.request_id(), r.at_ms(), entry);
}

void CaseMachine::ForgetOldRequests(Millis now) {
  if (request_window_ms_ <= 0) return;  // 0: remember for ever
  requests_.ForgetBefore(now - request_window_ms_);
}

Status CaseMachine::DecideReport(const v1::Command& cmd, Millis now, Events& out,
                                 uint64_t& result_case) {
  const v1::Report& r = cmd.report();
  auto cat = categories_.find(r.category());
  if (cat == categories_.end())
    return Status::InvalidArgument("report.category " + r.category() + " is not a category of " +
                                       config_->name(),
                                   "report.category");
  const v1::Category& category = *cat->second;
  if (!category.has_limits() && category.conditions_size() == 0)
    return Status::InvalidArgument("report.category " + r.category() + " (" + category.name() +
                                       ") is a class; report one of its subcategories",
                                   "report.category");
  if (!r.condition().empty() &&
      std::none_of(category.conditions().begin(), category.conditions().end(),
                   [&](const v1::Condition& c) { return c.id() == r.condition(); }))
    return Status::InvalidArgument("report.condition " + r.condition() +
                                       " is not a condition of category " + r.category(),
                                   "report.condition");
  if (!grids_.count(r.place().grid()))
    return Status::InvalidArgument("report.place.grid " + r.place().grid() +
                                       " is not a unit grid of " + config_->name(),
                                   "report.place.grid");
  v1::Case c;
  c.set_category(r.category());
  c.set_condition(r.condition());
  *c.mutable_place() = r.place();
  c.set_source(r.source());
  c.set_urgency(r.urgency() == v1::URGENCY_UNSPECIFIED ? v1::NORMAL : r.urgency());
  c.set_asset_id(r.asset_id());
  c.set_description(r.description());
  v1::Reporter reporter = r.reporter();
  reporter.set_source(r.source());
  reporter.set_at_ms(now);
  const uint64_t dup =
      deduper_.FindDuplicate(c, now, [this](uint64_t id) { return Find(id); });
  if (dup != 0) {
    const v1::Case& existing = Fields(cases_.at(dup));
    auto e = NewEvent(v1::EV_ABSORBED, existing, now, cmd.actor());
    *e.mutable_reporter() = reporter;
    e.set_report_count(1);
    out.push_back(std::move(e));
    result_case = dup;
    return Status::Ok();
  }
  c.set_id(next_case_id_);
  c.set_state(v1::REPORTED);
  c.set_reported_at_ms(now);
  c.set_report_count(1);
  *c.add_reporters() = reporter;
  auto e = NewEvent(v1::EV_REPORTED, c, now, cmd.actor());
  *e.mutable_reported() = std::move(c);
  result_case = e.case_id();
  out.push_back(std::move(e));
  return Status::Ok();
}

Status CaseMachine::DecideDispatch(const v1::Case& c, const v1::Dispatch& d,
                                   const std::string& actor, Millis now, Events& out) {
  if (c.state() != v1::REGISTERED && c.state() != v1::RETURNED)
    return Illegal(c, "dispatch", c.state() == v1::REPORTED
                                      ? "it registered (立案) first"
                                      : "it registered or returned by its department");
  v1::RouteDecision route;
  if (!d.department().empty()) {
    if (!departments_.count(d.department()))
      return Status::InvalidArgument("dispatch.department " + d.department() +
                                         " is not a department of " + config_->name(),
                                     "dispatch.department");
    route.set_department(d.department());
    route.set_explanation("dispatched by " + actor + " to " + d.department());
  } else {
    auto decided = router_.Route(c, c.state() == v1::RETURNED ? c.department() : "");
    if (!decided) return decided.error();
    route = std::move(*decided);
  }
  auto e = NewEvent(v1::EV_DISPATCHED, c, now, actor);
  *e.mutable_route() = route;
  e.set_work_order_id(std::to_string(c.id()) + "-" + std::to_string(c.dispatch_count() + 1));
  out.push_back(std::move(e));  // clocks and deadlines: AttachClocks
  return Status::Ok();
}

Status CaseMachine::DecideVerify(const v1::Case& c, const v1::Verify& v, Millis now, Events& out) {
  if (c.state() != v1::RESOLVED)
    return Illegal(c, "verify", "it resolved (处置完毕) by its department first");
  if (v.passed()) {
    auto e = NewEvent(v1::EV_VERIFIED, c, now, "");
    e.set_reason(v.reason());
    out.push_back(std::move(e));
    return Status::Ok();
  }
  auto e = NewEvent(v1::EV_REWORK, c, now, "");
  e.set_reason(v.reason());
  e.set_work_order_id(std::to_string(c.id()) + "-" + std::to_string(c.dispatch_count() + 1));
  out.push_back(std::move(e));  // clocks and deadlines: AttachClocks
  return Status::Ok();
}

Status CaseMachine::DecideMerge(const v1::Merge& m, Events& out) {
  const v1::Case* dup = Find(m.case_id());
  const v1::Case* into = Find(m.into_case_id());
  if (!into)
    return Status::NotFound("merge.into_case_id: case " + std::to_string(m.into_case_id()) +
                            " does not exist");
  if (!IsOpen(dup->state())) return Illegal(*dup, "merge", "it open");
  if (!IsOpen(into->state()))
    return Illegal(*into, "merge into it", "it open (reopen it, or merge into an open case)");
  auto a = NewEvent(v1::EV_MERGED_INTO, *dup, 0, "");
  a.set_other_case(into->id());
  out.push_back(std::move(a));
  auto b = NewEvent(v1::EV_ABSORBED, *into, 0, "");
  b.set_other_case(dup->id());
  b.set_report_count(dup->report_count());
  if (dup->reporters_size() > 0) *b.mutable_reporter() = dup->reporters(0);
  out.push_back(std::move(b));
  return Status::Ok();
}

Status CaseMachine::DecideExtension(const v1::Case& c, const v1::Command& cmd, Millis now,
                                    Events& out) {
  const char* verb = cmd.has_deny_extension() ? "denying an extension" : "approving an extension";
  if (c.state() != v1::DISPATCHED && c.state() != v1::ACCEPTED)
    return Illegal(c, verb, "it dispatched or accepted with a request waiting");
  if (c.pending_extension_hours() <= 0)
    return Status::FailedPrecondition(CaseRef(c) + " with no extension request waiting; " + verb +
                                      " needs the department to request one first");
  if (cmd.has_deny_extension()) {
    auto e = NewEvent(v1::EV_EXTENSION_DENIED, c, now, cmd.actor());
    e.set_reason(cmd.deny_extension().reason());
    out.push_back(std::move(e));
    return Status::Ok();
  }
  const int hours = cmd.approve_extension().hours() > 0 ? cmd.approve_extension().hours()
                                                        : c.pending_extension_hours();
  // The hours run on the handling clock's own measure (working hours on a working clock);
  // AttachClocks lengthens the clock, which moves the deadline and the ladder's later steps.
  auto e = NewEvent(v1::EV_EXTENSION_APPROVED, c, now, cmd.actor());
  e.set_extension_hours(hours);
  out.push_back(std::move(e));
  return Status::Ok();
}

Status CaseMachine::AuthorizeDepartment(const v1::Command& cmd, const v1::Case* c) const {
  if (cmd.has_caller()) {
    // An authenticated principal: the one policy decides, against the case as it is now.
    const v1::Caller& caller = cmd.caller();
    if (cmd.actor() != caller.name())
      return Status::InvalidArgument("the actor must be the authenticated caller's name", "actor");
    auth::Resource r;
    r.has_case = c != nullptr;
    if (c) r.department = c->department();
    switch (auth::Authorize(caller, auth::ActionOf(cmd), r)) {
      case auth::Decision::kAllow: break;
      case auth::Decision::kDeny:
        return Status::PermissionDenied(std::string(auth::RoleName(caller.role())) + " " + caller.name() +
                                        " may not " + std::string(CommandName(cmd)));
      case auth::Decision::kNotFound:
        return Status::NotFound("case " + std::to_string(c->id()) + " does not exist");
    }
    return Status::Ok();
  }
  if (!departments_.count(cmd.actor())) return Status::Ok();
  using C = v1::Command;
  switch (cmd.body_case()) {
    case C::kAccept:
    case C::kReturn:
    case C::kResolve:
    case C::kRequestExtension:
    case C::kNote:
    case C::kSupervisionReply:
      break;
    default:
      return Status::FailedPrecondition("department " + cmd.actor() + " may not " +
                                        std::string(CommandName(cmd)) +
                                        "; departments accept, return, resolve, request "
                                        "extensions and add notes");
  }
  if (c && c->department() != cmd.actor())
    return Status::FailedPrecondition("case " + std::to_string(c->id()) + " is not with department " +
                                      cmd.actor() + "; a department acts only on its own work orders");
  return Status::Ok();
}

Status CaseMachine::Decide(const v1::Command& cmd, Millis now, Events& out, uint64_t& result_case) {
  if (cmd.has_report()) {
    CASEBUS_RETURN_IF_ERROR(AuthorizeDepartment(cmd, nullptr));
    return DecideReport(cmd, now, out, result_case);
  }
  const uint64_t id = TargetCase(cmd);
  const v1::Case* found = Find(id);
  if (!found) return Status::NotFound("case " + std::to_string(id) + " does not exist");
  const v1::Case& c = *found;
  CASEBUS_RETURN_IF_ERROR(AuthorizeDepartment(cmd, found));
  result_case = id;
  auto simple = [&](v1::EventType t, std::string reason = {}) {
    auto e = NewEvent(t, c, now, cmd.actor());
    e.set_reason(std::move(reason));
    out.push_back(std::move(e));
    return Status::Ok();
  };
  using C = v1::Command;
  Status st;
  switch (cmd.body_case()) {
    case C::kRegister: {
      if (c.state() != v1::REPORTED) return Illegal(c, "register", "it reported and not yet registered");
      const std::string& cond = cmd.register_().condition();
      if (!cond.empty()) {
        const v1::Category& cat = *categories_.at(c.category());
        if (std::none_of(cat.conditions().begin(), cat.conditions().end(),
                         [&](const v1::Condition& k) { return k.id() == cond; }))
          return Status::InvalidArgument("register.condition " + cond +
                                             " is not a condition of category " + c.category(),
                                         "register.condition");
      }
      auto e = NewEvent(v1::EV_REGISTERED, c, now, cmd.actor());
      e.set_condition(cond);
      out.push_back(std::move(e));
      return Status::Ok();
    }
    case C::kReject:
      if (c.state() != v1::REPORTED) return Illegal(c, "reject (不予立案)", "it reported and not yet registered; void it instead");
      return simple(v1::EV_REJECTED, cmd.reject().reason());
    case C::kDispatch: {
      st = DecideDispatch(c, cmd.dispatch(), cmd.actor(), now, out);
      return st;
    }
    case C::kAccept:
      if (c.state() != v1::DISPATCHED) return Illegal(c, "accept (签收)", "it dispatched to the department");
      if (!cmd.accept().work_order_id().empty() && cmd.accept().work_order_id() != c.work_order_id())
        return Status::FailedPrecondition(CaseRef(c) + "; accept.work_order_id " +
                                          cmd.accept().work_order_id() +
                                          " is not its current work order " + c.work_order_id());
      return simple(v1::EV_ACCEPTED);
    case C::kReturn:
      if (c.state() != v1::DISPATCHED && c.state() != v1::ACCEPTED)
        return Illegal(c, "return (回退)", "it dispatched to or accepted by a department");
      return simple(v1::EV_RETURNED, cmd.return_().reason());
    case C::kRequestExtension: {
      if (c.state() != v1::DISPATCHED && c.state() != v1::ACCEPTED)
        return Illegal(c, "an extension request (延期)", "it dispatched or accepted");
      if (c.pending_extension_hours() > 0)
        return Status::FailedPrecondition(CaseRef(c) + " with an extension request of " +
                                          std::to_string(c.pending_extension_hours()) +
                                          " h waiting; approve or deny it first");
      auto e = NewEvent(v1::EV_EXTENSION_REQUESTED, c, now, cmd.actor());
      e.set_extension_hours(cmd.request_extension().hours());
      e.set_reason(cmd.request_extension().reason());
      out.push_back(std::move(e));
      return Status::Ok();
    }
    case C::kApproveExtension:
    case C::kDenyExtension:
      return DecideExtension(c, cmd, now, out);
    case C::kSuspend:
      if (!Undisposed(c.state()))
        return Illegal(c, "suspend (挂账)", "it dispatched, accepted or returned (not yet resolved)");
      return simple(v1::EV_SUSPENDED, cmd.suspend().reason());
    case C::kResume: {
      if (c.state() != v1::SUSPENDED) return Illegal(c, "resume", "it suspended");
      auto e = NewEvent(v1::EV_RESUMED, c, now, cmd.actor());
      e.set_accept_deadline_shift_ms(now - c.suspended_at_ms());
      out.push_back(std::move(e));
      return Status::Ok();
    }
    case C::kResolve: {
      if (c.state() != v1::ACCEPTED)
        return Illegal(c, "resolve", c.state() == v1::DISPATCHED
                                         ? "it accepted: the department must accept (签收) the work order first"
                                         : "it accepted by its department");
      auto e = NewEvent(v1::EV_RESOLVED, c, now, cmd.actor());
      *e.mutable_evidence() = cmd.resolve().evidence();
      e.set_reason(cmd.resolve().note());
      out.push_back(std::move(e));
      return Status::Ok();
    }
    case C::kVerify:
      st = DecideVerify(c, cmd.verify(), now, out);
      if (st.ok()) out.back().set_actor(cmd.actor());
      return st;
    case C::kClose:
      if (c.state() != v1::VERIFIED)
        return Illegal(c, "close (结案)", "it verified (核查 passed) first");
      return simple(v1::EV_CLOSED);
    case C::kReopen: {
      if (c.state() != v1::CLOSED) return Illegal(c, "reopen (回头看)", "it closed");
      auto e = NewEvent(v1::EV_REOPENED, c, now, cmd.actor());
      e.set_reason(cmd.reopen().reason());
      e.set_work_order_id(std::to_string(c.id()) + "-" + std::to_string(c.dispatch_count() + 1));
      out.push_back(std::move(e));
      return Status::Ok();
    }
    case C::kMerge:
      st = DecideMerge(cmd.merge(), out);
      if (!st.ok()) return st;
      for (auto& e : out) e.set_at_ms(now), e.set_actor(cmd.actor());
      result_case = cmd.merge().into_case_id();
      return Status::Ok();
    case C::kVoid:
      if (!IsOpen(c.state())) return Illegal(c, "void (作废)", "it open");
      return simple(v1::EV_VOIDED, cmd.void_().reason());
    case C::kNote:
      if (!IsOpen(c.state())) return Illegal(c, "a note", "it open");
      return simple(v1::EV_NOTE, cmd.note().text());
    case C::kSupervisionReply:
      if (!c.supervision_open())
        return Status::FailedPrecondition(CaseRef(c) + " with no open supervision (督办) record; "
                                          "a reply needs a 督办 step to have fired first");
      return simple(v1::EV_SUPERVISION_REPLIED, cmd.supervision_reply().text());
    default:
      return Status::InvalidArgument("unknown command", "body");
  }
}

}  // namespace casebus::core
