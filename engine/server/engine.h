#pragma once
// Engine: one shard — the CaseMachine on its own thread, the Store behind it, the Dispatcher
// after it. Edges (ZeroMQ intake, the demo, tests) Submit() requests; the shard thread drains
// its queue in batches, applies every command, writes the batch's journal records and outbox
// rows as one synced WriteBatch (group commit), and only then answers each submitter and
// hands the new work orders to the Dispatcher.
//
// Threads: Submit(), Stop(), healthy() from any thread. The shard thread applies batch N+1
// while the commit thread fsyncs batch N (at most kCommitPipeline batches wait for it), so
// the CPU work and the disk wait overlap; replies are released in batch order, each only
// after its own batch is durable. `done` callbacks run on the commit thread and must not
// block. Case state is touched by the shard thread only (and by Open() before it starts).
// Backpressure: the queue holds at most queue_capacity commands; Submit() refuses (BUSY)
// beyond that instead of growing.

#include <condition_variable>
#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/base/proto_check.h"
#include "engine/core/case_machine.h"
#include "engine/dispatch/dispatcher.h"
#include "engine/query/telemetry.h"
#include "engine/store/store.h"

namespace casebus::server {

struct EngineOptions {
  std::string data_dir;
  // fsync every group commit. False only for benchmarks' controls and `simulate`, whose data
  // directory is thrown away at exit; never for a server.
  bool sync = true;
  bool run_dispatcher = true;    // false: orders stay in the outbox (benchmarks of intake)
  rocksdb::Env* env = nullptr;   // tests: file-system fault injection
  query::Telemetry* telemetry = nullptr;  // counts commits and case durations when set
  // Write <data>/checkpoint when stopping cleanly, so the next open restores it instead of
  // replaying the whole journal (checkpoint_file.h).
  bool checkpoint_on_stop = true;
  // Also write one while running, once this many journal records were applied since the last
  // (0: only at stop), so a crash replays at most about this many: the shard waits for the
  // commits in flight, forks, and the child process writes the file from its copy-on-write
  // view of the machine while the shard goes on.
  uint64_t checkpoint_every = 0;
  // The ledger family is written behind the journal (DESIGN.md principle 5): the buckets
  // changed since its last write go with the first batch after this many ms, stamped with that
  // batch's last record (Store::GetLedgerSeq). The open catches up what a crash left behind;
  // `casebus ledger rebuild --verify` recounts the journal up to the stamp. 0: every batch.
  uint32_t ledger_write_every_ms = 1000;
  // Write what the ledger is behind when stopping. False only in tests: a stop that leaves it
  // behind, as kill -9 would.
  bool ledger_on_stop = true;
};

struct EngineStats {
  uint64_t commands_committed = 0;
  uint64_t batches = 0;
  uint64_t replayed_records = 0;   // journal records applied at open (after the checkpoint)
  uint64_t checkpoint_seq = 0;     // the checkpoint restored at open: its journal record; 0: none
  uint64_t checkpoint_cases = 0;   // cases it restored
  std::string checkpoint_ignored;  // why a checkpoint found at open was not used ("" if none)
  uint64_t checkpoint_written_seq = 0;    // the last checkpoint written: its record; 0: none
  uint64_t checkpoint_written_bytes = 0;  // (Stop()'s only; a forked writer's size is unknown)
  double checkpoint_write_seconds = 0;
  uint64_t checkpoints_while_running = 0; // written by forked writers (checkpoint_every)
  std::string checkpoint_write_error;     // why the last attempt failed ("" if it did not)
  // The durable `due` rows found at open against the timers the journal implies: compared on
  // a thread of its own after the open (WaitForOpenChecks() waits for it).
  bool timer_check_pending = false;
  uint64_t timer_rows = 0;        // rows found
  uint64_t timer_mismatches = 0;  // 0: the rows equal the timers
  std::string timer_check_error;  // why the rows could not be read ("" if they were)
  double timer_check_seconds = 0;
  uint64_t ledger_buckets = 0;     // durable ledger buckets found at open
  uint64_t ledger_differences = 0; // 0: they equal the counters the journal implies
  // The journal record the durable ledger was written as of, and how many records it was
  // behind the journal at open (0 after a clean stop; a crash leaves up to about a second's
  // worth, caught up from the journal at open). It is compared with the journal's counters
  // as of that record, unless the checkpoint restored is newer (ledger_compared false).
  uint64_t ledger_seq = 0;
  uint64_t ledger_behind = 0;
  bool ledger_compared = true;
  // Where the open's time went, in seconds: the store opening (RocksDB replaying its own
  // log), the checkpoint read and restored, the journal records after it replayed, and the
  // durable rows (outbox, dead letters, timers, ledger) read and compared, which runs beside
  // the first two and counts here only what it added after them.
  double open_store_seconds = 0, open_checkpoint_seconds = 0, open_replay_seconds = 0,
         open_checks_seconds = 0;
};

class Engine {
 public:
  using Done = std::function<void(v1::Reply&&)>;

  static Result<std::unique_ptr<Engine>> Open(std::shared_ptr<const v1::CityConfig> config,
                                              EngineOptions options, const Clock& clock,
                                              const dispatch::AdapterRegistry& adapters);
  ~Engine();

  void Start();
  // Non-blocking. false: the queue is full or the engine is stopping (the caller answers
  // BUSY / UNAVAILABLE); `done` is then not called.
  bool Submit(v1::Request request, Done done);
  // A read-only query, answered after the commands queued before it; `done` runs on the
  // commit thread (or at once with BUSY / UNAVAILABLE). Any thread.
  void Query(v1::Query query, std::function<void(v1::QueryResult)> done);
  uint64_t queue_depth() const;  // commands waiting for the shard
  query::Telemetry* telemetry() const { return options_.telemetry; }
  // The config in force (a snapshot: a reload replaces it whole). Any thread.
  std::shared_ptr<const v1::CityConfig> config() const;
  // Replaces the city config between two batches, on the shard thread, if the running
  // engine can take it (core::CaseMachine::Reconfigure says why not); blocks until decided.
  // UNAVAILABLE when the engine is not running.
  Status Reconfigure(std::shared_ptr<const v1::CityConfig> config);
  Millis now() const { return clock_->Now(); }  // the engine's clock
  // Blocking convenience for the demo and tests. A full queue answers BUSY results.
  v1::Reply Call(v1::Request request);
  // Fires every ladder step due by the clock's now and waits for the commit. The shard also
  // does this on its own when a step comes due on a real clock; a virtual clock needs Tick().
  void Tick();
  // Refuses new work, commits what is queued, answers it, stops the dispatcher.
  void Stop();

  bool stopping() const;
  // The instant of the next scheduled ladder step as of the last batch (0: none). Any thread.
  Millis next_due() const { return next_due_.load(std::memory_order_acquire); }
  bool healthy() const { return store_->healthy(); }
  EngineStats stats() const;
  // Waits for the checks the open left running (the timer rows; see EngineStats).
  void WaitForOpenChecks();
  dispatch::Dispatcher& dispatcher() { return *dispatcher_; }

 private:
  struct Pending {
    v1::Request request;
    Done done;
  };
  // One applied batch on its way to disk. The shard fills the messages; the commit thread
  // encodes them (records chained by the audit link, outbox rows, ledger rows), so the shard
  // spends its time applying.
  struct CommitJob {
    std::deque<Pending> batch;
    std::vector<v1::Reply> replies;
    std::vector<v1::JournalRecord> journal;  // applied records, in order
    std::vector<dispatch::OutboxEntry> items;
    store::Store::DueChanges due;
    std::vector<std::string> dead_letter_deletes;  // retried or dropped by an operator
    std::vector<core::Ledger::Bucket> ledger;      // changed ledger buckets
    bool write_ledger = false;  // the ledger's turn: `ledger` is all it is behind (maybe none)
  };
  static constexpr size_t kCommitPipeline = 2;

  Engine() = default;
  void Loop();
  void CommitLoop();
  CommitJob Apply(std::deque<Pending>& batch);
  void Commit(CommitJob& job);
  Status Recover();
  // Restores the machine from <data>/checkpoint: the journal record to replay from (1 when
  // there is no usable checkpoint; the reason is then in stats_.checkpoint_ignored).
  uint64_t RestoreCheckpoint();
  void WriteCheckpoint();  // Stop(), after the threads drained
  // Shard thread, between batches: forks a checkpoint writer when checkpoint_every records
  // were applied since the last checkpoint and none is being written.
  void MaybeCheckpoint();
  // Collects a finished writer (waiting for it when `block`); records its outcome.
  void ReapCheckpointWriter(bool block);
  void Observe(const v1::JournalRecord& record);  // telemetry of applied events
  // Adds an outbox row for `item` to the job, under the next outbox key. Shard thread.
  void AddOutbox(CommitJob& job, v1::OutboxItem item);
  // A DeadLetters query: list, or retry / drop (written with the job). Shard thread.
  v1::QueryResult AnswerDeadLetters(const v1::DeadLetters& q, CommitJob& job);

  mutable std::mutex config_mu_;  // guards config_ (read by any thread, replaced by the shard)
  std::shared_ptr<const v1::CityConfig> config_;
  EngineOptions options_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<core::CaseMachine> machine_;
  // A machine a damaged checkpoint half filled, kept until Recover's store scan (which reads
  // its config and calendar) has ended.
  std::unique_ptr<core::CaseMachine> retired_machine_;
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  struct Reconfig {
    std::shared_ptr<const v1::CityConfig> config;
    std::shared_ptr<std::promise<Status>> done;
  };
  std::deque<Reconfig> reconfigs_;  // guarded by mu_; taken by the shard between batches
  size_t queued_commands_ = 0;
  size_t capacity_ = 65536;
  size_t max_batch_ = 4096;
  bool stopping_ = false;
  bool started_ = false;
  bool opened_ = false;  // Open() finished: Stop() may start the threads to drain the queue
  std::thread thread_;
  EngineStats stats_;  // guarded by mu_
  void StartTimerCheck();
  std::mutex open_check_mu_;
  std::thread open_check_;  // the timer rows' check, started by Recover

  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::deque<CommitJob> commit_queue_;
  bool apply_done_ = false;  // the shard thread has exited; the commit thread drains and exits
  size_t in_flight_ = 0;     // jobs handed to the commit thread and not yet committed
  std::thread commit_thread_;
  // Shard thread only: what has been applied. Commits happen in order and a query's reply
  // leaves after its batch commits, so these are what is durable when the reply is read.
  uint64_t applied_seq_ = 0;
  std::atomic<Millis> next_due_{0};
  uint64_t applied_commands_ = 0;
  uint64_t next_outbox_seq_ = 1;  // shard thread: outbox keys commit in key order
  std::chrono::steady_clock::time_point next_ledger_write_{};  // shard thread
  // Commit thread (Open() before it starts): the audit link of the last record encoded, and
  // that record's seq.
  std::string chain_;
  uint64_t chained_seq_ = 0;
  uint64_t ledger_written_seq_ = 0;  // the ledger family's stamp (Store::GetLedgerSeq)
  // The journal record the checkpoint file on disk is of (restored, or written since); the
  // forked writer's pid and record while one runs. Shard thread (Open and Stop before and
  // after it).
  uint64_t checkpoint_on_disk_seq_ = 0;
  pid_t checkpoint_writer_ = -1;
  uint64_t checkpoint_writer_seq_ = 0;
  // Dead letters an operator retried or dropped, so a second request before (or after) the
  // first commits does nothing; an id leaves when the dispatcher dead-letters it again.
  std::mutex dead_mu_;
  std::set<std::string> dead_taken_;
  std::atomic<int64_t> dead_letters_{0};  // rows in the deadletter family
};

// The ledger as the store holds it (the maintained counters, durable with the journal).
struct DurableLedger {
  core::Ledger ledger;
  uint64_t buckets = 0;
};
Result<DurableLedger> LoadLedger(const store::Store& store, const core::CaseMachine& machine);
// The ledger rows that make the store's `durable` buckets equal `truth` (a put per bucket of
// truth, a delete per bucket only durable has), for Store::Commit.
std::vector<std::pair<std::string, std::string>> LedgerRewrite(const core::Ledger& truth,
                                                               const core::Ledger& durable);

using casebus::CheckNoUnknownFields;  // engine/base/proto_check.h

}  // namespace casebus::server
