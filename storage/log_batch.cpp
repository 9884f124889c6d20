#include "storage/log_batch.hpp"

#include "core/ascii.hpp"
#include "core/json_write.hpp"
#include "core/model_rewrite.hpp"
#include "storage/sql.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <string_view>

namespace storage::detail {
namespace {

// 9999-12-31T23:59:59.999999Z: a later created_at would overflow timestamptz and fail the batch
// (LogWriter::submit() stamps the ones <= 0).
constexpr std::int64_t kMaxTimestampUs = 253'402'300'799'999'999;
constexpr std::int64_t kDayUs = 86'400'000'000;
// Longer values are cut (at a character boundary): the log is for operators, not for payloads.
constexpr std::size_t kMaxText = 1024;
constexpr std::int64_t kInt = std::numeric_limits<std::int32_t>::max();
constexpr std::int64_t kSmall = std::numeric_limits<std::int16_t>::max();

// At most kMaxText bytes, cut before a character, not inside one.
std::string_view cut(std::string_view s) {
  if (s.size() <= kMaxText) return s;
  std::size_t end = kMaxText;  // s[end] is the first byte left out: back up to a character's start
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

// Values outside the column's range would fail the batch: clamp to it.
std::int64_t clamp_to(std::int64_t v, std::int64_t max) {
  return std::clamp<std::int64_t>(v, 0, max);
}

std::int64_t created_at_us(const core::RequestLog& row) {
  return std::min(row.created_at_us, kMaxTimestampUs);
}

// The cost as the log holds it: NaN and infinities (which numeric would refuse) are no cost.
bool has_cost(const core::RequestLog& row) {
  return row.cost && std::isfinite(*row.cost);
}

// What follows the backslash that stands for `c` in COPY text, or 0 when `c` stands for itself.
char copy_escape(char c) {
  if (c == '\\') return '\\';
  if (c == '\t') return 't';
  if (c == '\n') return 'n';
  if (c == '\r') return 'r';
  return 0;
}

// A COPY text line: fields separated by tabs, \N for NULL, and backslash escapes for the
// characters that would end a field or the line.
struct CopyLine {
  std::string& out;
  bool first = true;

  void next() {
    if (!first) out.push_back('\t');
    first = false;
  }
  void null() {
    next();
    out.append("\\N");
  }
  // PostgreSQL text holds neither NUL nor invalid UTF-8: such bytes become '?'.
  void text(std::string_view v) {
    next();
    const std::string_view s = cut(v);
    const bool clean = s.find('\0') == std::string_view::npos && core::valid_utf8(s);
    if (clean && s.find_first_of("\\\t\n\r") == std::string_view::npos) {
      out.append(s);  // the usual case: nothing to escape
      return;
    }
    for (const char c : s) {
      if (const char e = copy_escape(c)) {
        out.push_back('\\');
        out.push_back(e);
      } else {
        out.push_back(clean || (c != '\0' && static_cast<unsigned char>(c) < 0x80) ? c : '?');
      }
    }
  }
  void text_or_null(std::string_view v) { v.empty() ? null() : text(v); }
  void integer(std::int64_t v) {
    next();
    core::json_write::append_int(out, v);
  }
  void number(double v) {  // finite
    next();
    core::json_write::append_double(out, v);
  }
  // Milliseconds to the microsecond (the column is a real, ~7 digits): fixed decimals, not the
  // shortest form of the double, which cost some 600 instructions a value.
  void millis(double ms) {
    if (!std::isfinite(ms)) return null();
    if (std::fabs(ms) >= 1e12) return number(ms);
    next();
    core::json_write::append_fixed3(out, std::llround(ms * 1000));
  }
  void boolean(bool v) {
    next();
    out.push_back(v ? 't' : 'f');
  }
};

// Writes a PostgreSQL array literal of numbers or uuids (nothing that needs quoting).
struct ArrayLiteral {
  std::string& out;

  void add(std::string_view v) {
    out.push_back(out.empty() ? '{' : ',');
    out.append(v);
  }
  void add(std::int64_t v) {
    out.push_back(out.empty() ? '{' : ',');
    core::json_write::append_int(out, v);
  }
  void add(double v) {
    out.push_back(out.empty() ? '{' : ',');
    core::json_write::append_double(out, v);
  }
  void close() { out.append(out.empty() ? "{}" : "}"); }
};

struct DayTotals {
  std::int64_t requests = 0, errors = 0, prompt = 0, completion = 0, cached = 0, total = 0;
  std::vector<double> costs;
};

struct BudgetTotals {
  std::int64_t tokens = 0;
  std::vector<double> costs;
};

}  // namespace

const std::vector<std::string> kLogCopyColumns{"request_id",    "upstream_request_id",
                                               "key_id",        "model",
                                               "provider",      "upstream_model",
                                               "status",        "error_code",
                                               "prompt_tokens", "completion_tokens",
                                               "cached_tokens", "cache_creation_tokens",
                                               "total_tokens",  "cost",
                                               "latency_ms",    "ttft_ms",
                                               "is_stream",     "attempts",
                                               "client_addr",   "created_at"};

void append_copy_row(std::string& out, const LogRow& lr) {
  const core::RequestLog& r = *lr.row;
  CopyLine line{out};
  line.text(r.request_id);
  line.text_or_null(r.upstream_request_id);
  line.text_or_null(lr.key.view());
  line.text_or_null(r.model);
  line.text_or_null(r.provider);
  line.text_or_null(r.upstream_model);
  line.integer(clamp_to(r.status, kSmall));
  line.text_or_null(r.error_code);
  line.integer(clamp_to(r.prompt_tokens, kInt));
  line.integer(clamp_to(r.completion_tokens, kInt));
  line.integer(clamp_to(r.cached_tokens, kInt));
  line.integer(clamp_to(r.cache_creation_tokens, kInt));
  line.integer(clamp_to(r.total_tokens, kInt));
  if (has_cost(r))
    line.number(*r.cost);
  else
    line.null();
  line.millis(std::isfinite(r.latency_ms) ? r.latency_ms : 0.0);  // NOT NULL
  if (r.ttft_ms)
    line.millis(*r.ttft_ms);
  else
    line.null();
  line.boolean(r.is_stream);
  line.integer(clamp_to(r.attempts, kSmall));
  line.text_or_null(r.client_addr);
  line.next();
  append_rfc3339_us(out, created_at_us(r));
}

std::int64_t log_day(const core::RequestLog& row) noexcept {
  const std::int64_t us = created_at_us(row);
  return us / kDayUs - (us % kDayUs < 0 ? 1 : 0);  // floor: a day before 1970 too
}

LogRow::LogRow(const core::RequestLog& r) noexcept : row(&r) {
  if (!is_uuid(r.key_id)) return;
  key.present = true;
  std::ranges::transform(r.key_id, key.text.begin(), core::ascii_lower);
}

UsageParams usage_params(const std::vector<LogRow>& rows, const BudgetResets& budget_resets) {
  // Keyed by (key, day): the upsert order. Transparent comparisons: a string is made per group, not
  // per row.
  std::map<std::string, std::map<std::int64_t, DayTotals>, std::less<>> days;
  std::map<std::string, BudgetTotals, std::less<>> budgets;
  for (const auto& [r, log_key] : rows) {
    const std::string_view key = log_key.view();
    if (key.empty()) continue;
    const std::int64_t tokens = clamp_to(r->total_tokens, kInt);
    auto key_days = days.find(key);
    if (key_days == days.end())
      key_days = days.emplace(std::string(key), std::map<std::int64_t, DayTotals>()).first;
    DayTotals& d = key_days->second[log_day(*r)];
    ++d.requests;
    if (clamp_to(r->status, kSmall) >= 400 || !r->error_code.empty()) ++d.errors;
    d.prompt += clamp_to(r->prompt_tokens, kInt);
    d.completion += clamp_to(r->completion_tokens, kInt);
    d.cached += clamp_to(r->cached_tokens, kInt);
    d.total += tokens;
    if (has_cost(*r)) d.costs.push_back(*r->cost);

    const auto reset = budget_resets.find(key);
    if (reset == budget_resets.end() || created_at_us(*r) < reset->second) continue;
    auto budget = budgets.find(key);
    if (budget == budgets.end()) budget = budgets.emplace(std::string(key), BudgetTotals()).first;
    BudgetTotals& b = budget->second;
    b.tokens += tokens;
    if (has_cost(*r)) b.costs.push_back(*r->cost);
  }

  UsageParams p;
  p.empty = days.empty();
  ArrayLiteral keys{p.keys}, day_numbers{p.days}, requests{p.requests}, errors{p.errors}, prompt{p.prompt},
      completion{p.completion}, cached{p.cached}, total{p.total}, costs{p.costs}, cost_groups{p.cost_groups};
  std::int64_t group = 0;
  for (const auto& [key, key_days] : days) {
    for (const auto& [day, d] : key_days) {
      ++group;
      keys.add(std::string_view(key));
      day_numbers.add(day);
      requests.add(d.requests);
      errors.add(d.errors);
      prompt.add(d.prompt);
      completion.add(d.completion);
      cached.add(d.cached);
      total.add(d.total);
      for (const double c : d.costs) {
        costs.add(c);
        cost_groups.add(group);
      }
    }
  }
  for (ArrayLiteral* a :
       {&keys, &day_numbers, &requests, &errors, &prompt, &completion, &cached, &total, &costs, &cost_groups})
    a->close();

  ArrayLiteral budget_keys{p.budget_keys}, budget_tokens{p.budget_tokens}, budget_costs{p.budget_costs},
      budget_cost_groups{p.budget_cost_groups};
  group = 0;
  for (const auto& [key, b] : budgets) {
    ++group;
    budget_keys.add(key);
    budget_tokens.add(b.tokens);
    for (const double c : b.costs) {
      budget_costs.add(c);
      budget_cost_groups.add(group);
    }
  }
  for (ArrayLiteral* a : {&budget_keys, &budget_tokens, &budget_costs, &budget_cost_groups}) a->close();
  return p;
}

std::string key_array(const std::vector<LogRow>& rows) {
  std::set<std::string, std::less<>> keys;
  for (const auto& r : rows)
    if (r.key.present && !keys.contains(r.key.view())) keys.emplace(r.key.view());
  if (keys.empty()) return {};
  std::string out;
  ArrayLiteral literal{out};
  for (const auto& k : keys) literal.add(std::string_view(k));
  literal.close();
  return out;
}

}  // namespace storage::detail
