#pragma once
// Clock: where the engine reads the time. Everything above engine/core takes a Clock& so the
// demo, the simulator and the tests run days of city time in seconds. Times are Unix ms.
// Thread safety: SystemClock and ManualClock may be read from any thread.

#include <atomic>
#include <cstdint>

namespace casebus {

using Millis = int64_t;  // Unix epoch milliseconds, UTC
constexpr Millis kMinute = 60'000;
constexpr Millis kHour = 60 * kMinute;
constexpr Millis kDay = 24 * kHour;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis Now() const override;
};

// A clock that moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start) : now_(start) {}
  Millis Now() const override { return now_.load(std::memory_order_acquire); }
  void Set(Millis t) { now_.store(t, std::memory_order_release); }
  void Advance(Millis d) { now_.fetch_add(d, std::memory_order_acq_rel); }

 private:
  std::atomic<Millis> now_;
};

}  // namespace casebus
