#include "engine/base/time_format.h"

#include <charconv>
#include <cstdio>

namespace casebus {

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(yy + (m <= 2));
}

std::string FormatIso(Millis t, int off) {
  Millis local = t + static_cast<Millis>(off) * kMinute;
  int64_t days = local >= 0 ? local / kDay : (local - kDay + 1) / kDay;
  Millis in_day = local - days * kDay;
  int y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  int hh = static_cast<int>(in_day / kHour), mm = static_cast<int>(in_day / kMinute % 60),
      ss = static_cast<int>(in_day / 1000 % 60);
  char buf[64];
  char sign = off < 0 ? '-' : '+';
  int aoff = off < 0 ? -off : off;
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d%c%02d:%02d", y, m, d, hh, mm, ss,
                sign, aoff / 60, aoff % 60);
  return buf;
}

namespace {
bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}
bool ValidDate(int y, int m, int d) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int max = kDays[m - 1] + (m == 2 && leap ? 1 : 0);
  return d <= max;
}
}  // namespace

std::optional<int64_t> ParseDate(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (!Digits(s, 0, 4, y) || !Digits(s, 5, 2, m) || !Digits(s, 8, 2, d)) return std::nullopt;
  if (!ValidDate(y, m, d)) return std::nullopt;
  return DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

std::optional<Millis> ParseIso(std::string_view s) {
  if (s.size() < 17 || s[10] != 'T') return std::nullopt;
  auto day = ParseDate(s.substr(0, 10));
  if (!day) return std::nullopt;
  int hh, mm, ss = 0, ms = 0;
  if (!Digits(s, 11, 2, hh) || s[13] != ':' || !Digits(s, 14, 2, mm)) return std::nullopt;
  size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, pos + 1, 2, ss)) return std::nullopt;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      size_t start = ++pos;
      int frac = 0, n = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (n < 3) frac = frac * 10 + (s[pos] - '0'), ++n;
        ++pos;
      }
      if (pos == start) return std::nullopt;
      while (n < 3) frac *= 10, ++n;
      ms = frac;
    }
  }
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  int off = 0;
  if (pos == s.size()) return std::nullopt;
  if (s[pos] == 'Z' && pos + 1 == s.size()) {
    off = 0;
  } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
    int oh, om;
    if (!Digits(s, pos + 1, 2, oh) || !Digits(s, pos + 4, 2, om)) return std::nullopt;
    off = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  return *day * kDay + hh * kHour + mm * kMinute + ss * 1000 + ms - off * kMinute;
}

std::string FormatDate(int64_t days) {
  int y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", y, m, d);
  return buf;
}

}  // namespace casebus
