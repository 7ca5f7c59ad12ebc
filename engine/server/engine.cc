#include "engine/server/engine.h"

#include "engine/auth/policy.h"
#include "engine/base/audit_chain.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include <google/protobuf/reflection.h>

#include "engine/config/time_zone.h"
#include "engine/core/replay_journal.h"
#include "engine/server/checkpoint_file.h"

namespace casebus::server {

namespace {
double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(std::shared_ptr<const v1::CityConfig> config,
                                             EngineOptions options, const Clock& clock,
                                             const dispatch::AdapterRegistry& registry) {
  std::unique_ptr<Engine> e(new Engine());
  e->config_ = config;
  e->options_ = options;
  e->clock_ = &clock;
  if (config->intake().queue_capacity() > 0) e->capacity_ = config->intake().queue_capacity();
  if (config->intake().max_batch() > 0) e->max_batch_ = config->intake().max_batch();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Err(Status::IOError("create data directory " + options.data_dir + ": " + ec.message()));
  // Temporary checkpoint files a crash left behind (a forked writer still running from a
  // killed process loses its file and fails; the checkpoint itself is never touched).
  for (const auto& entry : std::filesystem::directory_iterator(options.data_dir, ec))
    if (entry.is_regular_file(ec) && entry.path().filename().string().rfind(std::string(kCheckpointFileName) + ".tmp.", 0) == 0)
      std::filesystem::remove(entry.path(), ec);
  auto offsets = config::CalendarOffsets(*config);
  if (!offsets) return Err(offsets.error());
  auto machine = core::CaseMachine::Create(config, std::move(*offsets));
  if (!machine) return Err(machine.error());
  e->machine_ = std::move(*machine);
  const auto store_opening = std::chrono::steady_clock::now();
  auto st = store::Store::Open(options.data_dir + "/db", {.sync = options.sync, .env = options.env});
  if (!st) return Err(st.error());
  e->store_ = std::move(*st);
  e->stats_.open_store_seconds = SecondsSince(store_opening);
  std::map<std::string, std::unique_ptr<dispatch::Adapter>> adapters;
  for (const auto& d : config->departments()) {
    auto a = registry.Create(d, {options.data_dir, config.get()});
    if (!a) return Err(a.error());
    adapters[d.id()] = std::move(*a);
  }
  Engine* self = e.get();
  dispatch::DispatcherHooks hooks;
  hooks.load = [self](const std::string& dept, const std::string& after, size_t max,
                      std::vector<dispatch::OutboxEntry>& out) {
    Status bad;
    Status st = self->store_->LoadOutbox(dept, after, max, [&](std::string_view key, std::string_view bytes) {
      dispatch::OutboxEntry e;
      e.key = key;
      if (!e.item.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        bad = Status::Corruption("outbox row of " + dept + " does not parse");
      else
        out.push_back(std::move(e));
    });
    return st.ok() ? bad : st;
  };
  hooks.on_delivered = [self](const std::vector<std::string>& keys) {
    (void)self->store_->MarkDelivered(keys);  // a lost delete only means one more delivery
  };
  hooks.on_dead = [self](const std::string& key, const v1::DeadLetter& letter) {
    const std::string& id = dispatch::Dispatcher::IdOf(letter.item());
    Status st = self->store_->MoveToDeadLetters(key, id, letter.SerializeAsString());
    if (st.ok()) {
      self->dead_letters_.fetch_add(1);
      std::lock_guard lock(self->dead_mu_);
      self->dead_taken_.erase(id);  // an operator may retry or drop it (again)
    }
    return st;
  };
  hooks.log = [](const std::string& line) { std::fprintf(stderr, "casebus: %s\n", line.c_str()); };
  hooks.on_replies = [self](std::vector<dispatch::InboundReply> replies) {
    // Each reply goes in as its own request, so one too large for the queue cannot block
    // the others; the adapter learns every result and keeps refused-for-now replies.
    for (auto& r : replies) {
      v1::Request req;
      req.set_version(1);
      *req.add_commands() = std::move(r.command);
      auto settle = [self, dept = r.department, token = r.token](v1::Reply&& reply) {
        const v1::CommandResult& res = reply.results(0);
        // A department's refused reply is logged (another department's case, an illegal
        // step): the department hears the reason on its channel, operators see it here.
        if (res.code() != v1::OK && res.code() != v1::BUSY && res.code() != v1::UNAVAILABLE)
          std::fprintf(stderr, "casebus: reply %s from department %s refused: %s: %s\n",
                       res.request_id().c_str(), dept.c_str(), v1::Code_Name(res.code()).c_str(),
                       res.message().c_str());
        self->dispatcher_->Settle(dept, token, res);
      };
      if (!self->Submit(std::move(req), settle)) {
        v1::CommandResult busy;
        busy.set_code(v1::BUSY);
        busy.set_message("intake queue is full");
        self->dispatcher_->Settle(r.department, r.token, busy);
      }
    }
  };
  e->dispatcher_ = std::make_unique<dispatch::Dispatcher>(std::move(adapters), std::move(hooks),
                                                          config->delivery(), clock);
  if (Status r = e->Recover(); !r.ok()) return Err(r);
  e->opened_ = true;
  return e;
}

uint64_t Engine::RestoreCheckpoint() {
  auto file = CheckpointFile::Open(options_.data_dir);
  if (!file) {
    if (file.error().code() != StatusCode::kNotFound) stats_.checkpoint_ignored = file.error().message();
    return 1;
  }
  const CheckpointFile& f = **file;
  auto unusable = [&](std::string why) {
    stats_.checkpoint_ignored = "checkpoint of journal record " + std::to_string(f.seq()) + ": " + std::move(why);
    return uint64_t{1};
  };
  if (f.seq() > store_->last_seq())
    return unusable("the journal ends at record " + std::to_string(store_->last_seq()));
  if (f.seq() > 0) {
    auto record = store_->GetJournal(f.seq());
    if (!record) return unusable(record.error().message());
    if (AuditLink(f.seq(), *record) != f.link())
      return unusable("that record's audit link differs (another journal, or the record was changed)");
  }
  // The restored cases stay as the mapped file's bytes until used: the machine keeps the file.
  std::shared_ptr<const CheckpointFile> mapped = std::move(*file);
  Status restored = machine_->RestoreCheckpoint(f.body(), mapped);
  if (!restored.ok()) {
    // Half filled: start again from a machine that has seen nothing.
    auto fresh = core::CaseMachine::Create(config_, machine_->offsets());
    if (fresh) {
      retired_machine_ = std::move(machine_);
      machine_ = std::move(*fresh);
    }
    return unusable(restored.message());
  }
  stats_.checkpoint_seq = f.seq();
  stats_.checkpoint_cases = machine_->case_count();
  checkpoint_on_disk_seq_ = f.seq();
  return f.seq() + 1;
}

void Engine::WriteCheckpoint() {
  // Only a state every record of which is durable, and only when it moved on since the
  // checkpoint on disk (a restart loop rewrites nothing).
  if (!options_.checkpoint_on_stop || !opened_ || !store_->healthy()) return;
  if (chained_seq_ != store_->last_seq()) return;
  if (chained_seq_ == checkpoint_on_disk_seq_) return;  // also: nothing journaled, nothing to shortcut
  const auto start = std::chrono::steady_clock::now();
  auto written = WriteCheckpointFile(options_.data_dir, chained_seq_, chain_,
                                     [&](const std::function<void(std::string_view)>& sink) {
                                       machine_->WriteCheckpoint(sink);
                                     });
  std::lock_guard lock(mu_);
  if (!written) {
    stats_.checkpoint_write_error = written.error().message();
    return;
  }
  checkpoint_on_disk_seq_ = chained_seq_;
  stats_.checkpoint_write_error.clear();
  stats_.checkpoint_written_seq = chained_seq_;
  stats_.checkpoint_written_bytes = written->bytes;
  stats_.checkpoint_write_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Engine::MaybeCheckpoint() {
  if (checkpoint_writer_ > 0) ReapCheckpointWriter(false);
  if (options_.checkpoint_every == 0 || checkpoint_writer_ > 0) return;
  if (applied_seq_ < checkpoint_on_disk_seq_ + options_.checkpoint_every) return;
  // The state to write is the applied one; it must also be the committed one (its last
  // record's link is the commit thread's), so wait for the batches in flight: at most
  // kCommitPipeline fsyncs.
  uint64_t seq = 0;
  std::string link;
  {
    std::unique_lock lock(commit_mu_);
    commit_cv_.wait(lock, [this] { return in_flight_ == 0; });
    seq = chained_seq_;
    link = chain_;
  }
  if (seq != applied_seq_ || !store_->healthy()) return;
  // The child runs only this: serialization into its copy-on-write view of the machine and
  // plain file calls (no locks another thread could have held at the fork, but the
  // allocator's, which jemalloc and glibc reset for the child).
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto written = WriteCheckpointFile(options_.data_dir, seq, link,
                                       [&](const std::function<void(std::string_view)>& sink) {
                                         machine_->WriteCheckpoint(sink);
                                       });
    if (!written) {
      const std::string line = "casebus: checkpoint writer: " + written.error().message() + "\n";
      (void)!::write(2, line.data(), line.size());
    }
    ::_exit(written ? 0 : 1);
  }
  if (pid < 0) {
    std::lock_guard lock(mu_);
    stats_.checkpoint_write_error = std::string("fork for the checkpoint writer: ") + std::strerror(errno);
    checkpoint_on_disk_seq_ = applied_seq_;  // not again before checkpoint_every more records
    return;
  }
  checkpoint_writer_ = pid;
  checkpoint_writer_seq_ = seq;
}

void Engine::ReapCheckpointWriter(bool block) {
  if (checkpoint_writer_ <= 0) return;
  int status = 0;
  pid_t got;
  do got = ::waitpid(checkpoint_writer_, &status, block ? 0 : WNOHANG);
  while (got < 0 && errno == EINTR);
  if (got == 0) return;  // still writing
  checkpoint_writer_ = -1;
  // A writer that failed is not retried before checkpoint_every more records.
  checkpoint_on_disk_seq_ = std::max(checkpoint_on_disk_seq_, checkpoint_writer_seq_);
  std::lock_guard lock(mu_);
  if (got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    ++stats_.checkpoints_while_running;
    stats_.checkpoint_written_seq = checkpoint_writer_seq_;
    stats_.checkpoint_write_error.clear();
  } else {
    stats_.checkpoint_write_error = "the checkpoint writer for journal record " +
                                    std::to_string(checkpoint_writer_seq_) + " failed (" +
                                    (got < 0 ? std::string(std::strerror(errno))
                                             : WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                                                 : "signal " + std::to_string(WTERMSIG(status))) +
                                    ")";
  }
}

namespace {

// What Recover reads from the store besides the journal. It needs nothing the restore or the
// replay changes, so it runs on its own thread beside them.
struct DurableRows {
  Status status = Status::Ok();
  std::map<std::string, uint64_t> backlog;  // outbox rows per department
  uint64_t next_outbox_seq = 0;
  int64_t dead_letters = 0;
  std::optional<DurableLedger> ledger;
};

DurableRows ReadDurableRows(const store::Store& store, const core::CaseMachine& machine) {
  DurableRows out;
  auto fail = [&](Status s) {
    out.status = std::move(s);
    return std::move(out);
  };
  // The outbox stays on disk: the dispatcher reads each department's rows as it needs them.
  // Here only how many each department has, and where the keys go on.
  Status bad_key;
  Status scan = store.ForEachOutbox([&](std::string_view key, std::string_view) {
    std::string_view dept;
    uint64_t seq = 0;
    if (!store::Store::ParseOutboxKey(key, dept, seq)) {
      bad_key = Status::Corruption("outbox row with a malformed key (" + std::to_string(key.size()) + " bytes)");
      return false;
    }
    ++out.backlog[std::string(dept)];
    out.next_outbox_seq = std::max(out.next_outbox_seq, seq + 1);
    return true;
  });
  if (!scan.ok()) return fail(scan);
  if (!bad_key.ok()) return fail(bad_key);
  scan = store.ForEachDeadLetter([&](std::string_view, std::string_view) {
    ++out.dead_letters;
    return true;
  });
  if (!scan.ok()) return fail(scan);
  auto durable = LoadLedger(store, machine);
  if (!durable) return fail(durable.error());
  out.ledger.emplace(std::move(*durable));
  return out;
}

}  // namespace

Status Engine::Recover() {
  // The durable rows are read beside the restore and the replay (the second core is the
  // restore's parser only part of the time).
  DurableRows rows;
  const core::CaseMachine& fresh_machine = *machine_;  // its config and calendar; kept alive
  std::thread reader([&] { pthread_setname_np(pthread_self(), "cb-rows"); rows = ReadDurableRows(*store_, fresh_machine); });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{reader};

  // The durable ledger is the counters as of its stamp (written behind the journal); it is
  // compared with the machine's when the machine is at that record: after the restore, during
  // the replay, or after it. A data directory from before the stamp had it level always.
  const uint64_t last_seq = store_->last_seq();
  uint64_t ledger_seq = last_seq;
  if (auto stamp = store_->GetLedgerSeq()) ledger_seq = std::min(*stamp, last_seq);
  else if (stamp.error().code() != StatusCode::kNotFound) return stamp.error();
  bool ledger_compared = false;
  size_t ledger_differences = 0;
  auto compare_ledger_at = [&](uint64_t seq) {
    if (seq != ledger_seq || ledger_compared) return;
    reader.join();  // the durable rows, the ledger among them
    ledger_compared = true;
    if (rows.status.ok()) (void)core::CompareLedgers(rows.ledger->ledger, machine_->ledger(), 0, ledger_differences);
  };

  uint64_t n = 0;
  auto phase = std::chrono::steady_clock::now();
  const uint64_t first = RestoreCheckpoint();
  compare_ledger_at(first - 1);
  stats_.open_checkpoint_seconds = SecondsSince(phase);
  if (!stats_.checkpoint_ignored.empty())
    std::fprintf(stderr, "casebus: checkpoint ignored, replaying the whole journal: %s\n",
                 stats_.checkpoint_ignored.c_str());
  phase = std::chrono::steady_clock::now();
  // The journal after the checkpoint, replayed in bulk behind a thread that reads and parses
  // it (core/replay_journal.h). When the ledger's stamp falls inside it, the bulk replay is
  // ended there, the ledger compared, and begun again.
  CASEBUS_RETURN_IF_ERROR(core::ReplayJournal(
      *machine_, [&](const core::JournalSink& sink) { return store_->ForEachJournalFrom(first, sink); },
      [&](uint64_t seq) {
        if (seq != ledger_seq || ledger_compared) return;
        machine_->EndBulkReplay();
        compare_ledger_at(seq);
        machine_->BeginBulkReplay();
      },
      n));
  stats_.replayed_records = n;
  stats_.open_replay_seconds = SecondsSince(phase);
  phase = std::chrono::steady_clock::now();
  // The audit chain goes on from the last durable record's link.
  if (store_->last_seq() > 0) {
    auto last = store_->GetJournal(store_->last_seq());
    if (!last) return last.error();
    chain_ = AuditLink(store_->last_seq(), *last);
    // A crash cannot part the tail from the head (one batch writes both): a mismatch means
    // the journal was changed behind the engine's back. Refuse to build on it.
    auto head = store_->GetJournalHead();
    if (head && (head->seq != store_->last_seq() || head->link != chain_))
      return Status::Corruption("the journal's last record (seq " + std::to_string(store_->last_seq()) +
                                ") does not match the audit chain head (seq " + std::to_string(head->seq) +
                                "): records were changed, added or removed; run `casebus audit verify`");
    if (!head && head.error().code() != StatusCode::kNotFound) return head.error();
  }
  next_due_.store(machine_->NextDueAt());
  applied_seq_ = store_->last_seq();
  chained_seq_ = store_->last_seq();
  if (reader.joinable()) reader.join();
  retired_machine_.reset();
  if (!rows.status.ok()) return rows.status;
  next_outbox_seq_ = std::max(next_outbox_seq_, rows.next_outbox_seq);
  dead_letters_.store(rows.dead_letters);
  StartTimerCheck();
  dispatcher_->SetBacklog(rows.backlog);
  // The durable ledger buckets must equal the counters the journal implies as of their stamp.
  (void)machine_->TakeLedgerChanges();
  stats_.ledger_buckets = rows.ledger->buckets;
  stats_.ledger_differences = ledger_differences;
  stats_.ledger_seq = ledger_seq;
  stats_.ledger_behind = last_seq - ledger_seq;
  stats_.ledger_compared = ledger_compared;
  if (ledger_differences > 0)
    // A data directory from before the ledger family, counting rules changed by an upgrade, or
    // rows changed behind the engine's back: the journal is the truth.
    std::fprintf(stderr, "casebus: ledger: %zu counters differed from the journal's as of record %llu\n",
                 ledger_differences, static_cast<unsigned long long>(ledger_seq));
  if (!ledger_compared)
    std::fprintf(stderr, "casebus: ledger: written as of record %llu, before the checkpoint restored; not compared\n",
                 static_cast<unsigned long long>(ledger_seq));
  if (ledger_differences > 0 || ledger_seq < last_seq) {
    // Rewritten to the journal's counters (a crash leaves it up to a second behind).
    auto rewrite = LedgerRewrite(machine_->ledger(), rows.ledger->ledger);
    std::fprintf(stderr, "casebus: ledger: %llu records behind the journal; %zu buckets rewritten from it\n",
                 static_cast<unsigned long long>(last_seq - ledger_seq), rewrite.size());
    CASEBUS_RETURN_IF_ERROR(store_->Commit({}, {}, {}, {}, rewrite, {}, last_seq));
  }
  ledger_written_seq_ = last_seq;
  stats_.open_checks_seconds = SecondsSince(phase);
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>> LedgerRewrite(const core::Ledger& truth,
                                                               const core::Ledger& durable) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::set<std::string> live;
  truth.ForEachBucket([&](const core::Ledger::Bucket& b) {
    std::string key = core::Ledger::EncodeKey(b.dim, b.key, b.day);
    live.insert(key);
    rows.emplace_back(std::move(key), core::Ledger::EncodeValue(b.counts));
  });
  durable.ForEachBucket([&](const core::Ledger::Bucket& b) {
    std::string key = core::Ledger::EncodeKey(b.dim, b.key, b.day);
    if (!live.count(key)) rows.emplace_back(std::move(key), std::string());
  });
  return rows;
}

Result<DurableLedger> LoadLedger(const store::Store& store, const core::CaseMachine& machine) {
  DurableLedger out{core::Ledger(machine.config(), machine.calendar()), 0};
  Status bad;
  Status scan = store.ForEachLedger([&](std::string_view key, std::string_view value) {
    core::Ledger::Bucket b;
    if (!core::Ledger::ParseKey(key, b.dim, b.key, b.day) || !core::Ledger::ParseValue(value, b.counts)) {
      bad = Status::Corruption("ledger row with a malformed key or value (" + std::to_string(key.size()) + " bytes)");
      return false;
    }
    out.ledger.Load(b);
    ++out.buckets;
    return true;
  });
  if (!scan.ok()) return Err(scan);
  if (!bad.ok()) return Err(bad);
  return out;
}

Engine::~Engine() {
  Stop();
  WaitForOpenChecks();  // before the store it reads goes
}

void Engine::StartTimerCheck() {
  // The durable timer rows must equal the timers the journal implies. Both as of now, before
  // anything new is applied: the rows through a view of the family, the timers copied. The
  // comparison only reports (the timers follow the journal either way), so it runs on a thread
  // of its own while the engine serves: tens of millions of rows took a quarter of a restart's
  // CPU on two cores.
  {
    std::lock_guard lock(mu_);
    stats_.timer_check_pending = true;
  }
  std::shared_ptr<store::Store::DueView> view = store_->ViewDue();
  auto implied = std::make_shared<std::vector<core::TimerKey>>();
  implied->reserve(machine_->scheduled_timer_count());
  machine_->ForEachScheduledTimer([&](const core::TimerKey& k) {
    implied->push_back(k);
    return true;
  });
  std::lock_guard lock(open_check_mu_);
  open_check_ = std::thread([this, view, implied] {
    pthread_setname_np(pthread_self(), "cb-timer-check");
    const auto start = std::chrono::steady_clock::now();
    // Both in due order: equal when equal row by row. A difference counts as how many more
    // rows one side has, at least 1.
    uint64_t rows = 0;
    bool differ = false;
    Status scan = view->ForEach([&](const store::Store::DueKey& d) {
      if (rows < implied->size()) {
        const core::TimerKey& k = (*implied)[rows];
        differ = differ || !(d == store::Store::DueKey{k.at, k.case_id, static_cast<int>(k.stage)});
      }
      ++rows;
      return true;
    });
    differ = differ || rows != implied->size();
    const uint64_t mismatches =
        differ ? std::max<uint64_t>(1, rows > implied->size() ? rows - implied->size() : implied->size() - rows) : 0;
    const double seconds = SecondsSince(start);
    {
      std::lock_guard lock(mu_);
      stats_.timer_rows = rows;
      stats_.timer_mismatches = scan.ok() ? mismatches : std::max<uint64_t>(mismatches, 1);
      stats_.timer_check_error = scan.ok() ? std::string() : scan.message();
      stats_.timer_check_seconds = seconds;
      stats_.timer_check_pending = false;
    }
    if (!scan.ok())
      std::fprintf(stderr, "casebus: timer rows could not be checked: %s\n", scan.message().c_str());
    else if (mismatches > 0)
      std::fprintf(stderr,
                   "casebus: %llu timer rows, %llu NOT matching the journal's %zu timers (the timers follow "
                   "the journal; checked in %.2f s)\n",
                   static_cast<unsigned long long>(rows), static_cast<unsigned long long>(mismatches),
                   implied->size(), seconds);
    else if (rows > 0)
      std::fprintf(stderr, "casebus: %llu timer rows, matching the journal (checked beside serving in %.2f s)\n",
                   static_cast<unsigned long long>(rows), seconds);
  });
}

void Engine::WaitForOpenChecks() {
  std::lock_guard lock(open_check_mu_);
  if (open_check_.joinable()) open_check_.join();
}

void Engine::Start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "casebus-shard");
    Loop();
  });
  commit_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "casebus-commit");
    CommitLoop();
  });
  if (options_.run_dispatcher) dispatcher_->Start();
}

bool Engine::Submit(v1::Request request, Done done) {
  const size_t n = std::max(1, request.commands_size());
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queued_commands_ + n > capacity_) return false;
    queued_commands_ += n;
    queue_.push_back({std::move(request), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

v1::Reply Engine::Call(v1::Request request) {
  std::promise<v1::Reply> p;
  auto f = p.get_future();
  const int n = request.commands_size();
  std::vector<std::string> ids;
  for (const auto& c : request.commands()) ids.push_back(c.request_id());
  if (!Submit(std::move(request), [&p](v1::Reply&& r) { p.set_value(std::move(r)); })) {
    v1::Reply busy;
    busy.set_version(1);
    for (int i = 0; i < n; ++i) {
      auto* r = busy.add_results();
      r->set_request_id(ids[i]);
      r->set_code(stopping() ? v1::UNAVAILABLE : v1::BUSY);
      r->set_message(stopping() ? "the engine is stopping" : "intake queue is full; retry");
    }
    return busy;
  }
  return f.get();
}

void Engine::Tick() {
  v1::Request empty;
  empty.set_version(1);
  (void)Call(std::move(empty));
}

bool Engine::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

uint64_t Engine::queue_depth() const {
  std::lock_guard lock(mu_);
  return queued_commands_;
}

void Engine::Query(v1::Query query, std::function<void(v1::QueryResult)> done) {
  v1::Request r;
  r.set_version(1);
  *r.mutable_query() = std::move(query);
  auto shared = std::make_shared<std::function<void(v1::QueryResult)>>(std::move(done));
  if (!Submit(std::move(r), [shared](v1::Reply&& reply) { (*shared)(std::move(*reply.mutable_query())); })) {
    v1::QueryResult busy;
    busy.set_code(stopping() ? v1::UNAVAILABLE : v1::BUSY);
    busy.set_message(stopping() ? "the engine is stopping" : "intake queue is full; retry");
    (*shared)(std::move(busy));
  }
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Engine::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_ && !stopping_ && opened_) {
      // Never started: start so that what was submitted is still committed and answered.
      mu_.unlock();
      Start();
      mu_.lock();
    }
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (commit_thread_.joinable()) commit_thread_.join();
  if (dispatcher_) dispatcher_->Stop();
  ReapCheckpointWriter(true);  // before writing the file it may be writing
  WriteCheckpoint();
}

std::shared_ptr<const v1::CityConfig> Engine::config() const {
  std::lock_guard lock(config_mu_);
  return config_;
}

Status Engine::Reconfigure(std::shared_ptr<const v1::CityConfig> config) {
  auto done = std::make_shared<std::promise<Status>>();
  auto decided = done->get_future();
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) return Status::Unavailable("the engine is not running");
    reconfigs_.push_back({std::move(config), done});
  }
  cv_.notify_all();
  return decided.get();
}

void Engine::Loop() {
  std::deque<Pending> batch;
  for (;;) {
    MaybeCheckpoint();
    if (machine_->restored_unparsed() > 0) {
      // After a restore, idle moments parse the cases still packed, a slice at a time, so the
      // first query that scans every case does not pay for them all.
      const Millis next_due = machine_->NextDueAt();
      bool idle = next_due == 0 || next_due > clock_->Now();
      {
        std::lock_guard lock(mu_);
        idle = idle && queue_.empty() && reconfigs_.empty() && !stopping_;
      }
      if (idle) {
        constexpr size_t kParseSlice = 4096;  // a few ms
        machine_->ParseRestored(kParseSlice);
        continue;
      }
    }
    {
      // Sleep until work arrives or the next ladder step is due (re-read on every wake, so a
      // clock that jumps is noticed within a second).
      const Millis next_due = machine_->NextDueAt();
      const Millis now = clock_->Now();
      const auto wait = std::chrono::milliseconds(
          next_due == 0 ? 1000 : std::clamp<Millis>(next_due - now, 0, 1000));
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, wait, [this] { return stopping_ || !queue_.empty() || !reconfigs_.empty(); });
      if (!reconfigs_.empty()) {
        // Between batches: what was applied used the old config, what follows the new one.
        Reconfig r = std::move(reconfigs_.front());
        reconfigs_.pop_front();
        lock.unlock();
        Status st = machine_->Reconfigure(r.config);
        if (st.ok()) {
          std::lock_guard config_lock(config_mu_);
          config_ = std::move(r.config);
        }
        r.done->set_value(std::move(st));
        continue;
      }
      if (queue_.empty() && stopping_) break;  // stopping and drained
      if (queue_.empty() && (next_due == 0 || next_due > clock_->Now())) continue;
      size_t taken = 0;
      while (!queue_.empty() && (taken == 0 || taken < max_batch_)) {
        taken += std::max(1, queue_.front().request.commands_size());
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_commands_ -= taken;
    }
    CommitJob job = Apply(batch);
    batch.clear();
    std::unique_lock lock(commit_mu_);
    commit_cv_.wait(lock, [this] { return commit_queue_.size() < kCommitPipeline; });
    commit_queue_.push_back(std::move(job));
    ++in_flight_;
    commit_cv_.notify_all();
  }
  {
    std::lock_guard lock(mu_);
    for (auto& r : reconfigs_) r.done->set_value(Status::Unavailable("the engine stopped"));
    reconfigs_.clear();
  }
  std::unique_lock lock(commit_mu_);
  if (options_.ledger_on_stop) {  // a clean stop leaves the ledger level with the journal
    CommitJob last;
    last.ledger = machine_->TakeLedgerChanges();
    last.write_ledger = true;
    commit_cv_.wait(lock, [this] { return commit_queue_.size() < kCommitPipeline; });
    commit_queue_.push_back(std::move(last));
    ++in_flight_;
  }
  apply_done_ = true;
  commit_cv_.notify_all();
}

void Engine::CommitLoop() {
  for (;;) {
    CommitJob job;
    {
      std::unique_lock lock(commit_mu_);
      commit_cv_.wait(lock, [this] { return apply_done_ || !commit_queue_.empty(); });
      if (commit_queue_.empty()) return;
      job = std::move(commit_queue_.front());
      commit_queue_.pop_front();
      commit_cv_.notify_all();
    }
    Commit(job);
    std::lock_guard lock(commit_mu_);
    --in_flight_;
    commit_cv_.notify_all();
  }
}

void Engine::AddOutbox(CommitJob& job, v1::OutboxItem item) {
  std::string key = store::Store::OutboxKey(dispatch::Dispatcher::DepartmentOf(item), next_outbox_seq_++);
  job.items.push_back({std::move(key), std::move(item)});
}

v1::QueryResult Engine::AnswerDeadLetters(const v1::DeadLetters& q, CommitJob& job) {
  v1::QueryResult out;
  out.set_code(v1::OK);
  out.set_utc_offset_minutes(config_->calendar().utc_offset_minutes());
  if (q.action() == v1::DeadLetters::LIST) {
    const uint32_t limit = q.limit() == 0 ? 100 : std::min<uint32_t>(q.limit(), 10'000);
    Status bad;
    Status st = store_->ForEachDeadLetter([&](std::string_view id, std::string_view bytes) {
      if (!q.ids().empty() && std::find(q.ids().begin(), q.ids().end(), id) == q.ids().end())
        return true;
      if (!out.add_dead_letters()->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        bad = Status::Corruption("dead letter " + std::string(id) + " does not parse");
      return out.dead_letters_size() < static_cast<int>(limit);
    });
    if (!st.ok() || !bad.ok()) {
      out.set_code(v1::INTERNAL);
      out.set_message(st.ok() ? bad.message() : st.message());
    }
    return out;
  }
  if (q.ids().empty() != q.all()) {
    out.set_code(v1::INVALID_ARGUMENT);
    out.set_message(q.all() ? "dead_letters: give ids or all, not both"
                            : "dead_letters.ids: required (or all: true)");
    return out;
  }
  std::vector<std::string> ids(q.ids().begin(), q.ids().end());
  if (q.all()) {
    (void)store_->ForEachDeadLetter([&](std::string_view id, std::string_view) {
      ids.emplace_back(id);
      return true;
    });
  }
  std::vector<std::string> missing;
  uint32_t affected = 0;
  for (const auto& id : ids) {
    {
      std::lock_guard lock(dead_mu_);
      if (dead_taken_.count(id)) {  // retried or dropped by an earlier request
        missing.push_back(id);
        continue;
      }
    }
    auto bytes = store_->GetDeadLetter(id);
    v1::DeadLetter letter;
    if (!bytes || !letter.ParseFromString(*bytes)) {
      missing.push_back(id);
      continue;
    }
    {
      std::lock_guard lock(dead_mu_);
      dead_taken_.insert(id);
    }
    job.dead_letter_deletes.push_back(id);
    if (q.action() == v1::DeadLetters::RETRY) AddOutbox(job, std::move(*letter.mutable_item()));
    ++affected;
    std::fprintf(stderr, "casebus: dead letter %s %s by %s\n", id.c_str(),
                 q.action() == v1::DeadLetters::RETRY ? "retried" : "dropped",
                 q.actor().empty() ? "an operator" : q.actor().c_str());
  }
  out.set_affected(affected);
  if (!missing.empty()) {
    out.set_code(v1::NOT_FOUND);
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    out.set_message("dead_letters.ids: no dead letter " + list + " (never one, or already retried or dropped; " + std::to_string(affected) +
                    " other(s) " + (q.action() == v1::DeadLetters::RETRY ? "retried" : "dropped") + ")");
  }
  return out;
}

void Engine::Observe(const v1::JournalRecord& record) {
  for (const auto& e : record.events()) {
    switch (e.type()) {
      case v1::EV_ACCEPTED:
      case v1::EV_RESOLVED: {
        const v1::Case* c = machine_->Find(e.case_id());
        if (!c) break;
        // Accept: from the dispatch that started the accept clock; handle: from the first
        // dispatch (the bundled handling clock).
        const Millis from = e.type() == v1::EV_ACCEPTED && c->accept_clock().started_ms() > 0
                                ? c->accept_clock().started_ms()
                                : c->dispatched_at_ms();
        if (from <= 0 || e.at_ms() < from) break;
        const double seconds = static_cast<double>(e.at_ms() - from) / 1000.0;
        if (e.type() == v1::EV_ACCEPTED) options_.telemetry->Accepted(seconds);
        else options_.telemetry->Handled(seconds);
        break;
      }
      case v1::EV_ESCALATED: options_.telemetry->Escalated(e.stage(), e.level()); break;
      default: break;
    }
  }
}

Engine::CommitJob Engine::Apply(std::deque<Pending>& batch) {
  CommitJob job;
  const Millis now = clock_->Now();
  job.replies.resize(batch.size());
  const bool healthy = store_->healthy();
  auto take = [this, &job](core::Effects& fx) {
    if (fx.Changed()) {
      if (options_.telemetry) Observe(fx.record);
      job.journal.push_back(std::move(fx.record));  // encoded and chained by Commit()
    }
    for (auto& w : fx.work_orders) {
      v1::OutboxItem item;
      *item.mutable_work_order() = std::move(w);
      AddOutbox(job, std::move(item));
    }
    for (auto& n : fx.notices) {
      v1::OutboxItem item;
      *item.mutable_notice() = std::move(n);
      AddOutbox(job, std::move(item));
    }
  };
  // Ladder steps due by now happened before the commands arriving now.
  if (healthy)
    for (auto& fx : machine_->FireDue(now)) take(fx);
  for (size_t i = 0; i < batch.size(); ++i) {
    v1::Reply& reply = job.replies[i];
    reply.set_version(1);
    if (!healthy) continue;  // Commit() answers UNAVAILABLE
    for (const auto& cmd : batch[i].request.commands()) {
      core::Effects fx = machine_->Execute(cmd, now);
      take(fx);
      *reply.add_results() = std::move(fx.result);
    }
    // A query sees every command before it, including its own batch; its reply, like every
    // other, leaves only after that batch is durable.
    if (batch[i].request.has_query()) {
      const v1::Query& q = batch[i].request.query();
      // Dead letters are the engine's; the machine's Answer authorizes everything else.
      const bool dead_letters_allowed =
          !q.has_caller() || auth::Authorize(q.caller(), auth::Action::kDeadLetters, {}) == auth::Decision::kAllow;
      *reply.mutable_query() = q.has_dead_letters() && dead_letters_allowed
                                   ? AnswerDeadLetters(q.dead_letters(), job)
                                   : machine_->Answer(q, now);
      if (reply.query().has_status()) {
        auto* s = reply.mutable_query()->mutable_status();
        s->set_journal_seq(applied_seq_ + job.journal.size());
        s->set_commands_committed(applied_commands_ + job.journal.size());
        s->set_outbox_pending(dispatcher_->pending());
        for (auto& lane : dispatcher_->Lanes()) *s->add_delivery() = std::move(lane);
        s->set_dead_letters(static_cast<uint64_t>(std::max<int64_t>(0, dead_letters_.load())));
      }
    }
  }
  for (auto& [key, add] : machine_->TakeTimerChanges())
    job.due.push_back({{key.at, key.case_id, static_cast<int>(key.stage)}, add});
  // The ledger's rows go behind the journal: the buckets changed since the last write, once
  // a second. Nearly every command changes a bucket; written with every batch, the rows were
  // as many bytes as the journal's at 50k commands/s (a 64 MiB memtable of a few hundred
  // keys, whose flush held the acknowledgements for a second).
  const auto steady = std::chrono::steady_clock::now();
  if (steady >= next_ledger_write_) {
    job.ledger = machine_->TakeLedgerChanges();
    job.write_ledger = true;
    next_ledger_write_ = steady + std::chrono::milliseconds(options_.ledger_write_every_ms);
  }
  next_due_.store(machine_->NextDueAt(), std::memory_order_release);
  applied_seq_ += job.journal.size();
  applied_commands_ += job.journal.size();
  job.batch = std::move(batch);
  return job;
}

void Engine::Commit(CommitJob& job) {
  // The audit chain: each record carries the previous record's link; its own link covers its
  // seq and bytes (base/audit_chain.h). Records arrive here in journal order.
  const std::string chain_before = chain_;
  const uint64_t chained_before = chained_seq_;
  std::vector<std::string> records(job.journal.size());
  for (size_t i = 0; i < job.journal.size(); ++i) {
    job.journal[i].set_prev_hash(chain_);
    job.journal[i].SerializeToString(&records[i]);
    chain_ = AuditLink(++chained_seq_, records[i]);
  }
  std::vector<std::pair<std::string, std::string>> outbox;
  outbox.reserve(job.items.size());
  for (const auto& entry : job.items) outbox.emplace_back(entry.key, entry.item.SerializeAsString());
  std::vector<std::pair<std::string, std::string>> ledger;
  ledger.reserve(job.ledger.size());
  for (const auto& b : job.ledger)
    ledger.emplace_back(core::Ledger::EncodeKey(b.dim, b.key, b.day), core::Ledger::EncodeValue(b.counts));
  Status committed = store_->healthy() ? Status::Ok() : Status::Unavailable(store_->unhealthy_reason());
  // With the ledger's rows (or none changed) the family is level with this batch's last record.
  const bool ledger_level = job.write_ledger && chained_seq_ > 0 &&
                            (!records.empty() || !ledger.empty() || chained_seq_ != ledger_written_seq_);
  if (committed.ok() && (!records.empty() || !job.due.empty() || !outbox.empty() ||
                        !job.dead_letter_deletes.empty() || !ledger.empty() || ledger_level)) {
    const auto started = std::chrono::steady_clock::now();
    committed = store_->Commit(records, outbox, job.due, job.dead_letter_deletes, ledger,
                               records.empty() ? std::string() : chain_, ledger_level ? chained_seq_ : 0);
    if (options_.telemetry) {
      if (committed.ok())
        options_.telemetry->Committed(records.size(), std::chrono::duration<double>(
                                                              std::chrono::steady_clock::now() - started).count());
      else
        options_.telemetry->CommitFailed();
    }
  }
  if (!committed.ok()) {  // nothing of the batch is in the journal: the chain goes on from before it
    chain_ = chain_before;
    chained_seq_ = chained_before;
  }
  if (committed.ok()) dead_letters_.fetch_sub(static_cast<int64_t>(job.dead_letter_deletes.size()));
  if (committed.ok() && ledger_level) ledger_written_seq_ = chained_seq_;
  for (size_t i = 0; i < job.batch.size(); ++i) {
    v1::Reply& reply = job.replies[i];
    if (!committed.ok()) {
      // Nothing in a failed batch is acknowledged, not even refusals and retries.
      reply.clear_results();
      for (const auto& cmd : job.batch[i].request.commands()) {
        auto* r = reply.add_results();
        r->set_request_id(cmd.request_id());
        r->set_code(v1::UNAVAILABLE);
        r->set_message("not committed: " + committed.message());
      }
      if (job.batch[i].request.has_query()) {
        reply.clear_query();
        reply.mutable_query()->set_code(v1::UNAVAILABLE);
        reply.mutable_query()->set_message("storage is unhealthy: " + store_->unhealthy_reason());
      }
    } else if (reply.query().has_status()) {
      reply.mutable_query()->mutable_status()->set_healthy(store_->healthy());
    }
  }
  if (committed.ok()) {
    std::lock_guard lock(mu_);
    stats_.commands_committed += records.size();
    stats_.batches += records.empty() ? 0 : 1;
  }
  if (committed.ok() && options_.run_dispatcher) dispatcher_->Enqueue(std::move(job.items));
  for (size_t i = 0; i < job.batch.size(); ++i)
    if (job.batch[i].done) job.batch[i].done(std::move(job.replies[i]));
}

}  // namespace casebus::server
