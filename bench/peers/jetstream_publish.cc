// jetstream_publish: the message-bus peer (bench/peers/README.md). Each run deletes and
// re-creates a file-storage stream (1 replica), then --publishers threads, each with its own
// connection, JetStream context and workload Generator (bench/workload), publish every
// lifecycle command of their plans — the serialized v1::Command — with js_PublishAsync, at
// most --max-pending unacknowledged per publisher (BASELINES N2: 4096). The bus keeps no
// case state, so later steps carry a synthetic case id. After a warm-up, the acks received
// for --seconds are counted: commands/s acked, per run and the median.

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/peers/sample_stats.h"
#include "bench/bench_util.h"
#include "bench/workload/workload.h"
#include "engine/config/loader.h"

namespace {

using namespace casebus;
using namespace casebus::bench;
using Steady = std::chrono::steady_clock;

constexpr const char* kDurabilityNote =
    "nats-server 2.9 acks before fsync (sync every 2 min by default; sync_interval: always is "
    "rejected): weaker durability than casebus and PostgreSQL";

struct Options {
  std::string url = "nats://127.0.0.1:4222";
  std::string config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  std::string stream = "CASEBUS", subject = "casebus.commands";
  int publishers = 4, max_pending = 4096, seconds = 10, warmup = 2, runs = 5;
  uint64_t seed = 1;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "jetstream_publish: %s\n", what.c_str());
  std::exit(1);
}

struct NatsClose {
  void operator()(natsConnection* c) const { natsConnection_Destroy(c); }
  void operator()(jsCtx* js) const { jsCtx_Destroy(js); }
};
using Connection = std::unique_ptr<natsConnection, NatsClose>;
using JetStream = std::unique_ptr<jsCtx, NatsClose>;

std::string NatsError(const char* what, natsStatus s) {
  return std::string(what) + ": " + natsStatus_GetText(s) + " " + nats_GetLastError(nullptr);
}

Connection Connect(const std::string& url) {
  natsConnection* nc = nullptr;
  if (natsStatus s = natsConnection_ConnectTo(&nc, url.c_str()); s != NATS_OK)
    Die(NatsError(("connect " + url).c_str(), s));
  return Connection(nc);
}

JetStream Context(natsConnection* nc, jsOptions* options) {
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, options); s != NATS_OK)
    Die(NatsError("JetStream context", s));
  return JetStream(js);
}

// Deletes the stream if it exists and creates it empty: file storage, one replica.
void RecreateStream(const Options& o) {
  Connection nc = Connect(o.url);
  JetStream js = Context(nc.get(), nullptr);
  jsErrCode err = static_cast<jsErrCode>(0);
  js_DeleteStream(js.get(), o.stream.c_str(), nullptr, &err);  // absent is fine
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {o.subject.c_str()};
  cfg.Name = o.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = 1;
  jsStreamInfo* info = nullptr;
  if (natsStatus s = js_AddStream(&info, js.get(), &cfg, nullptr, &err); s != NATS_OK)
    Die(NatsError("add stream", s) + " (JetStream error " + std::to_string(err) + ")");
  jsStreamInfo_Destroy(info);
}

// Messages and bytes the stream holds.
std::pair<uint64_t, uint64_t> StreamState(const Options& o) {
  Connection nc = Connect(o.url);
  JetStream js = Context(nc.get(), nullptr);
  jsStreamInfo* info = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetStreamInfo(&info, js.get(), o.stream.c_str(), nullptr, &err);
      s != NATS_OK)
    Die(NatsError("stream info", s));
  const std::pair<uint64_t, uint64_t> state{info->State.Msgs, info->State.Bytes};
  jsStreamInfo_Destroy(info);
  return state;
}

// One publisher's counters; the ack handler runs on the library's delivery thread.
struct Counts {
  std::atomic<uint64_t> acked{0}, failed{0}, published{0}, bytes{0};
};

void OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr*, void* closure) {
  auto* counts = static_cast<Counts*>(closure);
  (ack ? counts->acked : counts->failed).fetch_add(1, std::memory_order_relaxed);
  natsMsg_Destroy(msg);
}

struct Shared {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string error;
  void Fail(const std::string& e) {
    std::lock_guard lock(mu);
    if (error.empty()) error = e;
    stop = true;
  }
};

void RunPublisher(const Options& o, const v1::CityConfig& cfg, int id, Counts& counts,
                  Shared& shared) {
  Connection nc = Connect(o.url);
  jsOptions options;
  jsOptions_Init(&options);
  options.PublishAsync.MaxPending = o.max_pending;
  options.PublishAsync.AckHandler = OnAck;
  options.PublishAsync.AckHandlerClosure = &counts;
  JetStream js = Context(nc.get(), &options);
  Generator gen(cfg, o.seed, id, {}, o.publishers);
  CasePlan plan = gen.NextCase();
  size_t step = 0;
  // Synthetic case ids, distinct per publisher: the bus does no state, so nothing assigns them.
  uint64_t next_case_id = (static_cast<uint64_t>(id) << 40) + 1, case_id = next_case_id++;
  std::string bytes;
  while (!shared.stop.load(std::memory_order_relaxed)) {
    gen.Command(plan, step, step == 0 ? 0 : case_id).SerializeToString(&bytes);
    natsStatus s = js_PublishAsync(js.get(), o.subject.c_str(), bytes.data(),
                                   static_cast<int>(bytes.size()), nullptr);
    if (s == NATS_TIMEOUT) continue;  // stalled at MaxPending for StallWait: publish it again
    if (s != NATS_OK) return shared.Fail(NatsError("publish", s));
    counts.published.fetch_add(1, std::memory_order_relaxed);
    counts.bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
    if (++step >= plan.steps.size()) {
      plan = gen.NextCase();
      step = 0;
      case_id = next_case_id++;
    }
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = 30'000;
  if (natsStatus s = js_PublishAsyncComplete(js.get(), &wait); s != NATS_OK)
    shared.Fail(NatsError("waiting for the last acks", s));
}

uint64_t Sum(const std::vector<std::unique_ptr<Counts>>& all, std::atomic<uint64_t> Counts::*f) {
  uint64_t n = 0;
  for (const auto& c : all) n += ((*c).*f).load();
  return n;
}

void Wait(Shared& shared, int seconds) {
  const auto until = Steady::now() + std::chrono::seconds(seconds);
  while (Steady::now() < until && !shared.stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

double OneRun(const Options& o, const v1::CityConfig& cfg, int run) {
  RecreateStream(o);
  Shared shared;
  std::vector<std::unique_ptr<Counts>> counts;
  std::vector<std::thread> threads;
  counts.reserve(o.publishers);
  threads.reserve(o.publishers);
  for (int p = 0; p < o.publishers; ++p) counts.push_back(std::make_unique<Counts>());
  for (int p = 0; p < o.publishers; ++p)
    threads.emplace_back([&, p] { RunPublisher(o, cfg, p, *counts[p], shared); });
  Wait(shared, o.warmup);
  const uint64_t acked0 = Sum(counts, &Counts::acked);
  const auto t0 = Steady::now();
  Wait(shared, o.seconds);
  const uint64_t acked1 = Sum(counts, &Counts::acked);
  const double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  shared.stop = true;
  for (auto& t : threads) t.join();
  if (!shared.error.empty()) Die(shared.error);
  const double rate = static_cast<double>(acked1 - acked0) / secs;
  const uint64_t published = Sum(counts, &Counts::published);
  const auto [msgs, bytes] = StreamState(o);
  std::printf(
      "  run %d: %9.0f commands/s acked  (published %llu, acked %llu, failed %llu; "
      "%.0f bytes per command; stream holds %llu messages, %.1f MB)\n",
      run, rate, static_cast<unsigned long long>(published),
      static_cast<unsigned long long>(Sum(counts, &Counts::acked)),
      static_cast<unsigned long long>(Sum(counts, &Counts::failed)),
      published ? static_cast<double>(Sum(counts, &Counts::bytes)) / published : 0.0,
      static_cast<unsigned long long>(msgs), static_cast<double>(bytes) / 1e6);
  std::fflush(stdout);
  return rate;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  const char* usage =
      "usage: jetstream_publish [--url nats://127.0.0.1:4222] [--config FILE] [--publishers N] "
      "[--max-pending N] [--seconds N] [--warmup N] [--runs N] [--seed N] [--stream NAME] "
      "[--subject S]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) Die(std::string("missing value for ") + k + "\n" + usage);
    const std::string v = argv[++i];
    const int n = std::atoi(v.c_str());
    if (k == "--url")
      o.url = v;
    else if (k == "--config")
      o.config = v;
    else if (k == "--publishers" || k == "--clients")
      o.publishers = n;
    else if (k == "--max-pending")
      o.max_pending = n;
    else if (k == "--seconds")
      o.seconds = n;
    else if (k == "--warmup")
      o.warmup = n;
    else if (k == "--runs")
      o.runs = n;
    else if (k == "--seed")
      o.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--stream")
      o.stream = v;
    else if (k == "--subject")
      o.subject = v;
    else
      Die("unknown flag " + k + "\n" + usage);
  }
  if (o.publishers < 1 || o.max_pending < 1 || o.seconds < 1 || o.warmup < 0 || o.runs < 1)
    Die(std::string("bad flag value\n") + usage);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  const auto city = bench::LoadCityOrExit(o.config, "jetstream_publish");
  std::printf(
      "jetstream_publish: %d publishers (1 connection each), js_PublishAsync with "
      "MaxPending %d, stream %s (file storage, 1 replica) at %s, %d s per run after "
      "%d s warm-up\n",
      o.publishers, o.max_pending, o.stream.c_str(), o.url.c_str(), o.seconds, o.warmup);
  std::vector<double> rates;
  for (int r = 1; r <= o.runs; ++r) rates.push_back(OneRun(o, *city, r));
  std::printf("median: %.0f commands/s acked (min %.0f, max %.0f, n=%zu) — %s\n", Median(rates),
              *std::min_element(rates.begin(), rates.end()),
              *std::max_element(rates.begin(), rates.end()), rates.size(), kDurabilityNote);
  nats_Close();
  return 0;
}
