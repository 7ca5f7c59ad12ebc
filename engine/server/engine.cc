#include "engine/server/engine.h"

#include <pthread.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include <google/protobuf/reflection.h>

#include "engine/config/time_zone.h"

namespace casebus::server {

Status CheckNoUnknownFields(const google::protobuf::Message& m, const std::string& path) {
  const auto* refl = m.GetReflection();
  const auto& unknown = refl->GetUnknownFields(m);
  if (!unknown.empty())
    return Status::InvalidArgument(
        (path.empty() ? std::string("request") : path) + " has unknown field number " +
            std::to_string(unknown.field(0).number()) + "; this server speaks casebus.v1",
        path);
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  refl->ListFields(m, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string sub = path.empty() ? f->name() : path + "." + f->name();
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(m, f); ++i)
        CASEBUS_RETURN_IF_ERROR(CheckNoUnknownFields(refl->GetRepeatedMessage(m, f, i),
                                                     sub + "[" + std::to_string(i) + "]"));
    } else {
      CASEBUS_RETURN_IF_ERROR(CheckNoUnknownFields(refl->GetMessage(m, f), sub));
    }
  }
  return Status::Ok();
}

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
  auto offsets = config::CalendarOffsets(*config);
  if (!offsets) return Err(offsets.error());
  auto machine = core::CaseMachine::Create(config, std::move(*offsets));
  if (!machine) return Err(machine.error());
  e->machine_ = std::move(*machine);
  auto st = store::Store::Open(options.data_dir + "/db", {.sync = options.sync, .env = options.env});
  if (!st) return Err(st.error());
  e->store_ = std::move(*st);
  std::map<std::string, std::unique_ptr<dispatch::Adapter>> adapters;
  for (const auto& d : config->departments()) {
    auto a = registry.Create(d, {options.data_dir});
    if (!a) return Err(a.error());
    adapters[d.id()] = std::move(*a);
  }
  Engine* self = e.get();
  dispatch::DispatcherHooks hooks;
  hooks.on_delivered = [self](const std::vector<std::string>& ids) {
    (void)self->store_->MarkDelivered(ids);  // a lost delete only means one more delivery
  };
  hooks.on_replies = [self](std::vector<dispatch::InboundReply> replies) {
    // Each reply goes in as its own request, so one too large for the queue cannot block
    // the others; the adapter learns every result and keeps refused-for-now replies.
    for (auto& r : replies) {
      v1::Request req;
      req.set_version(1);
      *req.add_commands() = std::move(r.command);
      auto settle = [self, dept = r.department, token = r.token](v1::Reply&& reply) {
        self->dispatcher_->Settle(dept, token, reply.results(0));
      };
      if (!self->Submit(std::move(req), settle)) {
        v1::CommandResult busy;
        busy.set_code(v1::BUSY);
        busy.set_message("intake queue is full");
        self->dispatcher_->Settle(r.department, r.token, busy);
      }
    }
  };
  e->dispatcher_ = std::make_unique<dispatch::Dispatcher>(std::move(adapters), std::move(hooks));
  if (Status r = e->Recover(); !r.ok()) return Err(r);
  e->opened_ = true;
  return e;
}

Status Engine::Recover() {
  Status bad;
  uint64_t n = 0;
  Status scan = store_->ForEachJournal([&](uint64_t seq, std::string_view bytes) {
    v1::JournalRecord r;
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      bad = Status::Corruption("journal record " + std::to_string(seq) + " does not parse");
      return false;
    }
    machine_->Replay(r);
    ++n;
    return true;
  });
  if (!scan.ok()) return scan;
  if (!bad.ok()) return bad;
  stats_.replayed_records = n;
  next_due_.store(machine_->NextDueAt());
  applied_seq_ = store_->last_seq();
  std::vector<v1::OutboxItem> undelivered;
  CASEBUS_RETURN_IF_ERROR(store_->ForEachOutbox([&](std::string_view, std::string_view bytes) {
    v1::OutboxItem item;
    if (item.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      undelivered.push_back(std::move(item));
    return true;
  }));
  // Outbox keys sort by id, not by time: put each case's items back in the order they were made.
  auto issued = [](const v1::OutboxItem& i) {
    return i.has_notice() ? i.notice().due_at_ms() : i.work_order().issued_at_ms();
  };
  auto case_of = [](const v1::OutboxItem& i) {
    return i.has_notice() ? i.notice().case_id() : i.work_order().case_id();
  };
  std::sort(undelivered.begin(), undelivered.end(), [&](const auto& a, const auto& b) {
    return std::make_tuple(issued(a), case_of(a), dispatch::Dispatcher::IdOf(a)) <
           std::make_tuple(issued(b), case_of(b), dispatch::Dispatcher::IdOf(b));
  });
  // The durable timer rows must equal the timers the journal implies.
  std::vector<store::Store::DueKey> rows;
  CASEBUS_RETURN_IF_ERROR(store_->ForEachDue([&](const store::Store::DueKey& k) {
    rows.push_back(k);
    return true;
  }));
  std::vector<store::Store::DueKey> implied;
  for (const auto& k : machine_->ScheduledTimers())
    implied.push_back({k.at, k.case_id, static_cast<int>(k.stage)});
  stats_.timer_rows = rows.size();
  stats_.timer_mismatches = rows == implied ? 0 : std::max<uint64_t>(1, rows.size() > implied.size()
                                                                            ? rows.size() - implied.size()
                                                                            : implied.size() - rows.size());
  dispatcher_->Enqueue(std::move(undelivered));
  return Status::Ok();
}

Engine::~Engine() { Stop(); }

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
}

void Engine::Loop() {
  std::deque<Pending> batch;
  for (;;) {
    {
      // Sleep until work arrives or the next ladder step is due (re-read on every wake, so a
      // clock that jumps is noticed within a second).
      const Millis next_due = machine_->NextDueAt();
      const Millis now = clock_->Now();
      const auto wait = std::chrono::milliseconds(
          next_due == 0 ? 1000 : std::clamp<Millis>(next_due - now, 0, 1000));
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, wait, [this] { return stopping_ || !queue_.empty(); });
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
    commit_cv_.notify_all();
  }
  std::lock_guard lock(commit_mu_);
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
  }
}

Engine::CommitJob Engine::Apply(std::deque<Pending>& batch) {
  CommitJob job;
  const Millis now = clock_->Now();
  job.replies.resize(batch.size());
  const bool healthy = store_->healthy();
  auto take = [&job](core::Effects& fx) {
    if (fx.Changed()) {
      job.records.emplace_back();
      fx.record.SerializeToString(&job.records.back());
    }
    for (auto& w : fx.work_orders) {
      v1::OutboxItem item;
      *item.mutable_work_order() = std::move(w);
      job.outbox.emplace_back(item.work_order().id(), item.SerializeAsString());
      job.items.push_back(std::move(item));
    }
    for (auto& n : fx.notices) {
      v1::OutboxItem item;
      *item.mutable_notice() = std::move(n);
      job.outbox.emplace_back(item.notice().id(), item.SerializeAsString());
      job.items.push_back(std::move(item));
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
      *reply.mutable_query() = machine_->Answer(batch[i].request.query(), now);
      if (reply.query().has_status()) {
        auto* s = reply.mutable_query()->mutable_status();
        s->set_journal_seq(applied_seq_ + job.records.size());
        s->set_commands_committed(applied_commands_ + job.records.size());
        s->set_outbox_pending(dispatcher_->pending());
      }
    }
  }
  for (auto& [key, add] : machine_->TakeTimerChanges())
    job.due.push_back({{key.at, key.case_id, static_cast<int>(key.stage)}, add});
  next_due_.store(machine_->NextDueAt(), std::memory_order_release);
  applied_seq_ += job.records.size();
  applied_commands_ += job.records.size();
  job.batch = std::move(batch);
  return job;
}

void Engine::Commit(CommitJob& job) {
  Status committed = store_->healthy() ? Status::Ok() : Status::Unavailable(store_->unhealthy_reason());
  if (committed.ok() && (!job.records.empty() || !job.due.empty()))
    committed = store_->Commit(job.records, job.outbox, job.due);
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
    stats_.commands_committed += job.records.size();
    stats_.batches += job.records.empty() ? 0 : 1;
  }
  if (committed.ok() && options_.run_dispatcher) dispatcher_->Enqueue(std::move(job.items));
  for (size_t i = 0; i < job.batch.size(); ++i)
    if (job.batch[i].done) job.batch[i].done(std::move(job.replies[i]));
}

}  // namespace casebus::server
