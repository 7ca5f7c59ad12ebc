#include "engine/core/deduper.h"

#include <cmath>

namespace casebus::core {
namespace {
constexpr double kEarthRadiusM = 6371008.8;
constexpr double kMetresPerDegree = kEarthRadiusM * M_PI / 180.0;
constexpr double kRad = M_PI / 180.0;
}  // namespace

bool IsOpen(v1::CaseState s) {
  switch (s) {
    case v1::CLOSED:
    case v1::REJECTED:
    case v1::VOIDED:
    case v1::MERGED:
    case v1::STATE_UNSPECIFIED:
      return false;
    default:
      return true;
  }
}

double DistanceMetres(double lat1, double lon1, double lat2, double lon2) {
  double dlat = (lat2 - lat1) * kRad, dlon = (lon2 - lon1) * kRad;
  double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusM * std::asin(std::min(1.0, std::sqrt(a)));
}

Deduper::Deduper(const v1::DedupPolicy& p, double ref_lat)
    : radius_m_(p.radius_m()), window_ms_(std::llround(p.window_hours() * kHour)) {
  double r = radius_m_ > 0 ? radius_m_ : 1.0;
  // Cells slightly wider than the radius, so a match is always in the 3×3 neighbourhood
  // even a little away from ref_lat.
  lat_step_ = r * 1.01 / kMetresPerDegree;
  lon_step_ = r * 1.01 / (kMetresPerDegree * std::max(0.1, std::cos(ref_lat * kRad) * 0.98));
}

std::pair<int64_t, int64_t> Deduper::Cell(double lat, double lon) const {
  return {static_cast<int64_t>(std::floor(lat / lat_step_)),
          static_cast<int64_t>(std::floor(lon / lon_step_))};
}

namespace {
uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0xBF58476D1CE4E5B9ull;
}
uint64_t HashBytes(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}
}  // namespace

uint64_t Deduper::CellKey(std::string_view category, int64_t y, int64_t x) {
  return Mix(Mix(HashBytes(category), static_cast<uint64_t>(y)), static_cast<uint64_t>(x));
}

uint64_t Deduper::GridKey(std::string_view category, std::string_view grid) {
  return Mix(HashBytes(category), HashBytes(grid));
}

void Deduper::Add(const v1::Case& c, Millis now,
                  const std::function<const v1::Case*(uint64_t)>& lookup) {
  AddTo(c, [&](std::vector<Entry>& entries) {
    if (entries.size() >= 8 && (entries.size() & (entries.size() - 1)) == 0)
      Prune(entries, now, true, lookup);
  });
}

void Deduper::Restore(const v1::Case& c) {
  AddTo(c, [](std::vector<Entry>&) {});
}

template <typename BeforeAdd>
void Deduper::AddTo(const v1::Case& c, BeforeAdd&& before_add) {
  auto add = [&](std::vector<Entry>& entries) {
    before_add(entries);
    entries.push_back({c.id(), c.reported_at_ms(), c.place().lat(), c.place().lon()});
  };
  // Every case is findable by grid (for reports without coordinates); those with
  // coordinates also by cell.
  add(by_grid_[GridKey(c.category(), c.place().grid())]);
  if (c.place().has_coordinates()) {
    auto [y, x] = Cell(c.place().lat(), c.place().lon());
    add(by_cell_[CellKey(c.category(), y, x)]);
  }
}

void Deduper::Remove(const v1::Case& c) {
  auto drop = [&](auto& index, uint64_t key) {
    auto it = index.find(key);
    if (it == index.end()) return;
    std::erase_if(it->second, [&](const Entry& e) { return e.id == c.id(); });
    if (it->second.empty()) index.erase(it);
  };
  drop(by_grid_, GridKey(c.category(), c.place().grid()));
  if (c.place().has_coordinates()) {
    auto [y, x] = Cell(c.place().lat(), c.place().lon());
    drop(by_cell_, CellKey(c.category(), y, x));
  }
}

void Deduper::Prune(std::vector<Entry>& entries, Millis now, bool finished_too,
                    const std::function<const v1::Case*(uint64_t)>& lookup) {
  std::erase_if(entries, [&](const Entry& e) {
    if (e.reported_at < now - window_ms_) return true;
    if (!finished_too) return false;
    const v1::Case* c = lookup(e.id);
    return c == nullptr || (!IsOpen(c->state()) && c->state() != v1::CLOSED);
  });
}

uint64_t Deduper::FindDuplicate(const v1::Case& report, Millis now,
                                const std::function<const v1::Case*(uint64_t)>& lookup) {
  if (window_ms_ <= 0) return 0;
  uint64_t best = 0;
  double best_d = 0;
  auto consider = [&](uint64_t id, double d) {
    if (best == 0 || d < best_d || (d == best_d && id < best)) best = id, best_d = d;
  };
  if (!report.place().has_coordinates()) {
    auto it = by_grid_.find(GridKey(report.category(), report.place().grid()));
    if (it == by_grid_.end()) return 0;
    Prune(it->second, now, false, lookup);
    for (const Entry& e : it->second) {
      const v1::Case* c = lookup(e.id);
      if (c && IsOpen(c->state()) && c->category() == report.category() &&
          c->place().grid() == report.place().grid())
        consider(e.id, 0);
    }
    return best;
  }
  if (radius_m_ <= 0) return 0;
  const double lat = report.place().lat(), lon = report.place().lon();
  // Latitude alone bounds the distance from below (a degree of latitude is the same length
  // everywhere): entries farther north or south than the radius need no trigonometry.
  const double max_dlat = radius_m_ / kMetresPerDegree * 1.0001;
  auto [cy, cx] = Cell(lat, lon);
  for (int64_t dy = -1; dy <= 1; ++dy) {
    for (int64_t dx = -1; dx <= 1; ++dx) {
      auto it = by_cell_.find(CellKey(report.category(), cy + dy, cx + dx));
      if (it == by_cell_.end()) continue;
      Prune(it->second, now, false, lookup);
      for (const Entry& e : it->second) {
        if (std::abs(e.lat - lat) > max_dlat) continue;
        const double d = DistanceMetres(lat, lon, e.lat, e.lon);
        if (d > radius_m_) continue;
        const v1::Case* c = lookup(e.id);
        if (c && IsOpen(c->state()) && c->category() == report.category() &&
            c->place().has_coordinates())
          consider(e.id, d);
      }
    }
  }
  return best;
}

}  // namespace casebus::core
