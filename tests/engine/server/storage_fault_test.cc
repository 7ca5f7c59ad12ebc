// RELIABILITY.md rule 3: a failed synced write stops every acknowledgement until restart; it
// is never retried and trusted. Faults are injected under RocksDB through a FileSystem
// wrapper whose writable files fail Sync/Fsync on command.

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <filesystem>

#include "adapters/register_all.h"
#include "engine/config/loader.h"
#include "engine/server/engine.h"

namespace casebus {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

class FlakyFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FlakyFile(std::unique_ptr<rocksdb::FSWritableFile>&& f, const std::atomic<bool>* fail)
      : FSWritableFileOwnerWrapper(std::move(f)), fail_(fail) {}
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    if (fail_->load()) return IOStatus::IOError("injected fsync failure");
    return target()->Sync(o, d);
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    if (fail_->load()) return IOStatus::IOError("injected fsync failure");
    return target()->Fsync(o, d);
  }

 private:
  const std::atomic<bool>* fail_;
};

class FlakyFS : public rocksdb::FileSystemWrapper {
 public:
  explicit FlakyFS(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}
  static const char* kClassName() { return "FlakyFS"; }
  const char* Name() const override { return kClassName(); }
  IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* d) override {
    IOStatus s = target()->NewWritableFile(f, o, r, d);
    if (s.ok()) *r = std::make_unique<FlakyFile>(std::move(*r), &fail);
    return s;
  }
  std::atomic<bool> fail{false};
};

v1::Request Report(const std::string& rid, const std::string& grid) {
  v1::Request req;
  req.set_version(1);
  auto* c = req.add_commands();
  c->set_request_id(rid);
  c->set_actor("test");
  c->mutable_report()->set_category("200404");
  c->mutable_report()->mutable_place()->set_grid(grid);
  c->mutable_report()->set_source(v1::INSPECTOR);
  return req;
}

TEST(StorageFaultTest, FsyncFailureStopsAcknowledgementsUntilRestart) {
  char tmpl[] = "/tmp/casebus-fault-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto cfg = config::LoadCityConfigFile(CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml");
  ASSERT_TRUE(cfg) << cfg.error().message();
  const std::string grid_a = (*cfg)->grids(0).code(), grid_b = (*cfg)->grids(300).code();
  dispatch::AdapterRegistry registry;
  adapters::RegisterAllAdapters(registry);
  ManualClock clock(1'795'000'000'000);
  auto fs = std::make_shared<FlakyFS>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  {
    auto engine = server::Engine::Open(*cfg, {.data_dir = dir, .env = env.get()}, clock, registry);
    ASSERT_TRUE(engine) << engine.error().message();
    (*engine)->Start();
    auto ok = (*engine)->Call(Report("r1", grid_a));
    ASSERT_EQ(ok.results(0).code(), v1::OK);
    EXPECT_TRUE((*engine)->healthy());

    fs->fail.store(true);
    auto failed = (*engine)->Call(Report("r2", grid_b));
    EXPECT_EQ(failed.results(0).code(), v1::UNAVAILABLE) << failed.results(0).message();
    EXPECT_FALSE((*engine)->healthy());

    // The disk is back, but a failed fsync is never trusted: nothing is acknowledged again.
    fs->fail.store(false);
    auto after = (*engine)->Call(Report("r3", grid_a));
    EXPECT_EQ(after.results(0).code(), v1::UNAVAILABLE);
    v1::Request status;
    status.set_version(1);
    status.mutable_query()->mutable_status();
    auto st = (*engine)->Call(status);
    EXPECT_EQ(st.query().code(), v1::UNAVAILABLE);
    EXPECT_NE(st.query().message().find("injected fsync failure"), std::string::npos)
        << st.query().message();
    (*engine)->Stop();
  }
  // Restart recovers: the acknowledged report is there; the unacknowledged one is at most
  // present once (its bytes may have reached the WAL), and retrying it is safe.
  auto engine = server::Engine::Open(*cfg, {.data_dir = dir}, clock, registry);
  ASSERT_TRUE(engine) << engine.error().message();
  (*engine)->Start();
  auto again = (*engine)->Call(Report("r1", grid_a));
  EXPECT_EQ(again.results(0).code(), v1::OK);
  EXPECT_TRUE(again.results(0).duplicate());
  EXPECT_EQ(again.results(0).case_id(), 1u);
  auto retry = (*engine)->Call(Report("r2", grid_b));
  EXPECT_EQ(retry.results(0).code(), v1::OK);
  v1::Request status;
  status.set_version(1);
  status.mutable_query()->mutable_status();
  auto st = (*engine)->Call(status);
  EXPECT_TRUE(st.query().status().healthy());
  EXPECT_EQ(st.query().status().cases(), 2u) << "r2 applied twice or r1 lost";
  (*engine)->Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace casebus
