// bench/report.cpp — summaries, tables and the SVG chart (bench/report.h).
#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

namespace spawnd::bench {

namespace {

// `v` with `decimals` digits after the point.
std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Rates and latencies without false precision: 12345, 123.4; 250, 12.5, 1.25.
std::string rate(double v) { return fixed(v, v >= 1000 ? 0 : 1); }
std::string ms(double v) { return fixed(v, v >= 100 ? 0 : v >= 10 ? 1 : 2); }

std::string group_name(const Target& t) { return t.workload + " c=" + std::to_string(t.concurrency); }

struct Row {
  std::vector<std::string> cells;
};

bool any_open_loop(const std::vector<Summary>& summaries) {
  return std::any_of(summaries.begin(), summaries.end(), [](const Summary& s) { return s.offered_rps || s.sweep; });
}
bool any_sweep(const std::vector<Summary>& summaries) {
  return std::any_of(summaries.begin(), summaries.end(), [](const Summary& s) { return s.sweep.has_value(); });
}

// The columns; open-loop runs add the offered rate and the late sends after req/s, which a sweep names "max req/s"
// (the max sustainable rate; the latencies are those of its best passing step).
std::vector<std::string> header(const std::vector<Summary>& summaries) {
  std::vector<std::string> h = {"workload", "c", "server / mode", any_sweep(summaries) ? "max req/s" : "req/s",
                                "min–max", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "CPU µs/req", "errors",
                                "non-2xx/3xx", "× limit", "WAL max MiB", "rows"};
  if (any_open_loop(summaries)) h.insert(h.begin() + 5, {"offered", "late"});
  return h;
}

std::vector<Row> rows_of(const std::vector<Summary>& summaries) {
  const bool open_loop = any_open_loop(summaries);
  std::vector<Row> rows;
  for (const Summary& s : summaries) {
    Row r;
    const bool http = !s.is_limit();
    std::string rows_cell = "";
    if (s.write_checks > 0)
      rows_cell = s.write_checks_ok == s.write_checks ? "ok" : "FAIL " + std::to_string(s.write_checks - s.write_checks_ok) + "/" + std::to_string(s.write_checks);
    r.cells = {s.target.workload,
               http ? std::to_string(s.target.concurrency) : "-",
               s.target.label(),
               rate(s.rps.median),
               rate(s.rps.min) + "–" + rate(s.rps.max),
               http ? ms(s.p50_ms) : "",
               http ? ms(s.p90_ms) : "",
               http ? ms(s.p99_ms) : "",
               http ? ms(s.p99_9_ms) : "",
               http && s.target.server != "target" && !s.sweep ? (s.is_cpu_complete ? "" : "≥") + fixed(s.cpu_us_per_request, 0) : "",
               http ? std::to_string(s.socket_errors) : "",
               http ? std::to_string(s.non_2xx_3xx) : "",
               s.ratio_to_limit && !s.is_limit() ? fixed(*s.ratio_to_limit, 2) : "",
               s.write_checks > 0 ? fixed(static_cast<double>(s.wal_bytes_max) / (1024.0 * 1024.0), 1) : "",
               rows_cell};
    if (open_loop) {
      std::string offered = s.offered_rps ? rate(*s.offered_rps) : "";
      if (const SweepStep* best = s.sweep ? s.sweep->best() : nullptr) offered = rate(best->report.offered_rps);
      r.cells.insert(r.cells.begin() + 5, {offered, http ? std::to_string(s.late_sends) : ""});
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

// Display width of UTF-8 text: code points (the table uses no wide characters).
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1b9e77", "#7570b3"};


std::string num(double v) { return std::to_string(static_cast<int>(std::lround(v))); }

std::string svg_text(double x, double y, const std::string& text, const std::string& attrs = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attrs.empty() ? "" : " " + attrs) + ">" +
         xml_escape(text) + "</text>\n";
}

std::string svg_line(double x1, double y1, double x2, double y2, const std::string& stroke,
                     const std::string& attrs = "") {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
         "\" stroke=\"" + stroke + "\"" + (attrs.empty() ? "" : " " + attrs) + "/>\n";
}

std::string svg_polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke,
                         const std::string& title) {
  std::string p;
  for (const auto& [x, y] : points) p += num(x) + "," + num(y) + " ";
  std::string out = "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + stroke + "\" points=\"" + p + "\"><title>" +
                    xml_escape(title) + "</title></polyline>\n";
  for (const auto& [x, y] : points)
    out += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"2.5\" fill=\"" + stroke + "\"/>\n";
  return out;
}

constexpr int kPanelW = 300, kPanelH = 200, kPerRow = 3;

// A log10 axis from the decade at or below `lo` to the decade at or above `hi`, mapped onto [bottom, bottom - h].
struct LogAxis {
  double llo, span;
  LogAxis(double lo, double hi) : llo(std::floor(std::log10(lo))), span(std::max(std::ceil(std::log10(hi)) - llo, 1.0)) {}
  [[nodiscard]] double at(double v, double bottom, double h) const {
    return bottom - (std::log10(std::max(v, std::pow(10.0, llo))) - llo) / span * h;
  }
};

// Latency percentiles against the offered rate, one panel per sweep: where p99 leaves the objective is the knee.
// Returns the SVG and adds the height used to `y`.
std::string sweep_panels(const std::vector<Summary>& summaries, int& y) {
  std::vector<const Summary*> sweeps;
  for (const Summary& s : summaries)
    if (s.sweep && !s.sweep->steps.empty()) sweeps.push_back(&s);
  if (sweeps.empty()) return "";
  const char* names[] = {"p50", "p90", "p99", "p99.9"};
  const double pct[] = {50, 90, 99, 99.9};
  const char* colours[] = {"#59a14f", "#4e79a7", "#e15759", "#b07aa1"};
  std::string out = svg_text(10, y + 12, "Sweeps: latency from the intended send (ms) against offered req/s, both on log scales",
                             "font-weight=\"bold\" font-size=\"15\"");
  for (int i = 0; i < 4; ++i) {
    out += svg_line(10 + i * 80, y + 26, 30 + i * 80, y + 26, colours[i], "stroke-width=\"2\"");
    out += svg_text(34 + i * 80, y + 30, names[i]);
  }
  out += svg_line(330, y + 26, 350, y + 26, "#e15759", "stroke-dasharray=\"4 3\"") + svg_text(354, y + 30, "p99 objective");
  out += svg_line(460, y + 26, 480, y + 26, "#59a14f", "stroke-width=\"2\"") + svg_text(484, y + 30, "max sustainable");
  const int top = y + 50;
  for (std::size_t k = 0; k < sweeps.size(); ++k) {
    const Summary& s = *sweeps[k];
    const SweepResult& sw = *s.sweep;
    const double px = 50 + static_cast<double>(k % kPerRow) * (kPanelW + 10);
    const double py = top + static_cast<double>(k / kPerRow) * (kPanelH + 50);
    const double w = kPanelW - 40, bottom = py + kPanelH;
    std::vector<const SweepStep*> steps;
    double min_rate = 1e12, max_rate = 1, lo = 1e9, hi = std::max(sw.slo_p99_ms, 1.0);
    for (const SweepStep& st : sw.steps) {
      steps.push_back(&st);
      max_rate = std::max(max_rate, st.report.offered_rps);
      min_rate = std::min(min_rate, st.report.offered_rps);
      for (double p : pct)
        if (st.report.latency_ms(p) > 0) lo = std::min(lo, st.report.latency_ms(p)), hi = std::max(hi, st.report.latency_ms(p));
    }
    std::sort(steps.begin(), steps.end(), [](auto* a, auto* b) { return a->report.offered_rps < b->report.offered_rps; });
    const LogAxis axis(std::min(lo, sw.slo_p99_ms), hi);
    // The ramp is geometric, so the offered rate goes on a log scale too: its steps fall evenly spaced.
    const LogAxis rates(min_rate, max_rate);
    auto xv = [&](double r) { return px + w - rates.at(r, w, w); };
    out += "<rect x=\"" + num(px) + "\" y=\"" + num(py) + "\" width=\"" + num(w) + "\" height=\"" + num(kPanelH) +
           "\" fill=\"none\" stroke=\"#999\"/>\n";
    out += svg_text(px, py - 4, s.target.label() + " — " + s.target.workload + " c=" + std::to_string(s.target.concurrency),
                    "font-weight=\"bold\"");
    for (double d = axis.llo; d <= axis.llo + axis.span; d += 1) {
      const double yy = axis.at(std::pow(10.0, d), bottom, kPanelH);
      out += svg_text(px - 4, yy + 4, ms(std::pow(10.0, d)), "text-anchor=\"end\" font-size=\"10\"");
      out += svg_line(px, yy, px + w, yy, "#eee");
    }
    // Ticks at each decade, and at 2 and 5 times it when the panel spans a single decade: "100", "2k", "10k".
    auto tick = [](double v) { return v >= 1000 ? std::to_string(std::lround(v / 1000)) + "k" : num(v); };
    for (double d = rates.llo; d <= rates.llo + rates.span; d += 1)
      for (double m : {1.0, 2.0, 5.0})
        if (const double v = m * std::pow(10.0, d);
            v <= std::pow(10.0, rates.llo + rates.span) && (m == 1.0 || rates.span <= 1))
          out += svg_text(xv(v), bottom + 14, tick(v), "text-anchor=\"middle\" font-size=\"10\"");
    const double slo_y = axis.at(sw.slo_p99_ms, bottom, kPanelH);
    out += svg_line(px, slo_y, px + w, slo_y, "#e15759", "stroke-dasharray=\"4 3\"");
    if (sw.max_sustainable_rps > 0) {
      out += svg_line(xv(sw.max_sustainable_rps), py, xv(sw.max_sustainable_rps), bottom, "#59a14f", "stroke-width=\"2\"");
      const bool is_right = xv(sw.max_sustainable_rps) > px + w * 0.7;  // label on the side with room
      out += svg_text(xv(sw.max_sustainable_rps) + (is_right ? -4 : 4), py + 12, "max " + rate(sw.max_sustainable_rps),
                      std::string("font-size=\"10\"") + (is_right ? " text-anchor=\"end\"" : ""));
    }
    for (int i = 0; i < 4; ++i) {
      std::vector<std::pair<double, double>> pts;
      for (const SweepStep* st : steps) pts.emplace_back(xv(st->report.offered_rps), axis.at(st->report.latency_ms(pct[i]), bottom, kPanelH));
      out += svg_polyline(pts, colours[i], s.target.label() + " " + names[i]);
    }
  }
  y = top + static_cast<int>((sweeps.size() + kPerRow - 1) / kPerRow) * (kPanelH + 50);
  return out;
}

// Requests per second against concurrency (log scale), one panel per workload, one line per target, for closed-loop
// runs at two or more concurrency levels. Returns the SVG and adds the height used to `y`.
std::string concurrency_panels(const std::vector<Summary>& summaries, const std::map<std::string, std::string>& colour,
                               int& y) {
  // workload -> label -> (concurrency, median req/s)
  std::map<std::string, std::map<std::string, std::vector<std::pair<int, double>>>> by_workload;
  std::map<std::string, std::pair<int, int>> c_range;
  for (const Summary& s : summaries) {
    if (s.is_limit() || s.offered_rps || s.sweep) continue;
    by_workload[s.target.workload][s.target.label()].emplace_back(s.target.concurrency, s.rps.median);
    auto [it, is_new] = c_range.try_emplace(s.target.workload, s.target.concurrency, s.target.concurrency);
    it->second = {std::min(it->second.first, s.target.concurrency), std::max(it->second.second, s.target.concurrency)};
  }
  std::string out;
  int panels = 0;
  const int top = y + 30;
  for (const auto& [workload, lines] : by_workload) {
    const auto [cmin, cmax] = c_range[workload];
    if (cmin == cmax) continue;
    if (panels == 0)
      out += svg_text(10, y + 12, "Requests per second against concurrency (closed loop, wrk; concurrency on a log scale)",
                      "font-weight=\"bold\" font-size=\"15\"");
    const double px = 50 + (panels % kPerRow) * (kPanelW + 10), py = top + (panels / kPerRow) * (kPanelH + 50);
    const double w = kPanelW - 40, bottom = py + kPanelH;
    ++panels;
    double max_rps = 1;
    for (const auto& [label, pts] : lines)
      for (const auto& [c, r] : pts) max_rps = std::max(max_rps, r);
    auto xv = [&](double c) { return px + (std::log10(c) - std::log10(cmin)) / (std::log10(cmax) - std::log10(cmin)) * w; };
    auto yv = [&](double r) { return bottom - r / (max_rps * 1.05) * kPanelH; };
    out += "<rect x=\"" + num(px) + "\" y=\"" + num(py) + "\" width=\"" + num(w) + "\" height=\"" + num(kPanelH) +
           "\" fill=\"none\" stroke=\"#999\"/>\n";
    out += svg_text(px, py - 4, workload, "font-weight=\"bold\"");
    for (int t = 0; t <= 4; ++t)
      out += svg_text(px - 4, yv(max_rps * t / 4) + 4, rate(max_rps * t / 4), "text-anchor=\"end\" font-size=\"10\"");
    std::set<int> levels;
    for (const auto& [label, pts] : lines)
      for (const auto& [c, r] : pts) levels.insert(c);
    for (int c : levels) out += svg_text(xv(c), bottom + 14, std::to_string(c), "text-anchor=\"middle\" font-size=\"10\"");
    for (auto [label, pts] : lines) {
      std::sort(pts.begin(), pts.end());
      std::vector<std::pair<double, double>> xy;
      for (const auto& [c, r] : pts) xy.emplace_back(xv(c), yv(r));
      out += svg_polyline(xy, colour.at(label), label);
    }
  }
  if (panels > 0) y = top + ((panels + kPerRow - 1) / kPerRow) * (kPanelH + 50);
  return out;
}

}  // namespace

nlohmann::json Summary::to_json() const {
  nlohmann::json j = {{"server", target.server},
                      {"mode", target.mode},
                      {"workload", target.workload},
                      {"concurrency", target.concurrency},
                      {"pragmas", target.pragmas},
                      {"label", target.label()},
                      {"repetitions", rps.count},
                      {"requests_per_second", {{"median", rps.median}, {"min", rps.min}, {"max", rps.max}}}};
  if (!is_limit()) {
    j["latency_ms"] = {{"p50", p50_ms}, {"p90", p90_ms}, {"p99", p99_ms}, {"p99_9", p99_9_ms}};
    j["server_cpu_us_per_request"] = cpu_us_per_request;
    j["server_cpu_complete"] = is_cpu_complete;
    j["socket_errors"] = socket_errors;
    j["non_2xx_3xx"] = non_2xx_3xx;
  }
  if (ratio_to_limit && !is_limit()) j["ratio_to_limit"] = *ratio_to_limit;
  if (offered_rps) j["offered_rps"] = *offered_rps;
  if (offered_rps || sweep) j["late_sends"] = late_sends;
  if (sweep) j["max_sustainable_rps"] = rps.median;
  if (write_checks > 0) {
    j["write_checks"] = {{"runs", write_checks}, {"ok", write_checks_ok}};
    j["wal_bytes_max"] = wal_bytes_max;
  }
  return j;
}

std::vector<Summary> summarize(const std::vector<RunResult>& runs, const std::vector<Target>& targets) {
  std::vector<Summary> out;
  std::map<std::string, double> limit_by_workload;
  for (const Target& t : targets) {
    std::vector<double> rps, p50, p90, p99, p999, cpu;
    Summary s;
    s.target = t;
    for (const RunResult& r : runs) {
      if (!(r.target == t)) continue;
      rps.push_back(r.requests_per_second());
      // An open-loop report: a --rate run, or a sweep's best passing step.
      const OpenLoopReport* open = r.open_loop ? &*r.open_loop : nullptr;
      if (r.sweep) {
        if (!s.sweep) s.sweep = r.sweep;
        if (const SweepStep* best = r.sweep->best()) open = &best->report;
      }
      if (r.open_loop) s.offered_rps = r.open_loop->offered_rps;
      if (open) {
        p50.push_back(open->latency_ms(50));
        p90.push_back(open->latency_ms(90));
        p99.push_back(open->latency_ms(99));
        p999.push_back(open->latency_ms(99.9));
        if (open->responses > 0 && r.open_loop)
          cpu.push_back(r.server_cpu_s * 1e6 / static_cast<double>(open->responses));
        s.is_cpu_complete = s.is_cpu_complete && r.is_server_cpu_complete;
        s.socket_errors += open->errors();
        s.non_2xx_3xx += open->non_2xx_3xx;
        s.late_sends += open->late_sends;
      }
      if (r.wrk) {
        p50.push_back(r.wrk->p50_ms);
        p90.push_back(r.wrk->p90_ms);
        p99.push_back(r.wrk->p99_ms);
        p999.push_back(r.wrk->p99_9_ms);
        if (r.wrk->requests > 0) cpu.push_back(r.server_cpu_s * 1e6 / static_cast<double>(r.wrk->requests));
        s.is_cpu_complete = s.is_cpu_complete && r.is_server_cpu_complete;
        s.socket_errors += r.wrk->socket_errors();
        s.non_2xx_3xx += r.wrk->non_2xx_3xx;
      }
      if (r.write_check) {
        ++s.write_checks;
        if (r.write_check->is_ok()) ++s.write_checks_ok;
        s.wal_bytes_max = std::max(s.wal_bytes_max, r.write_check->wal_bytes_max);
      }
    }
    if (rps.empty()) continue;
    s.rps = spread(rps);
    s.p50_ms = median(p50);
    s.p90_ms = median(p90);
    s.p99_ms = median(p99);
    s.p99_9_ms = median(p999);
    s.cpu_us_per_request = median(cpu);
    if (s.is_limit()) limit_by_workload[t.workload] = s.rps.median;
    out.push_back(std::move(s));
  }
  for (Summary& s : out) {
    auto it = limit_by_workload.find(s.target.workload);
    if (it != limit_by_workload.end()) s.ratio_to_limit = ratio(s.rps.median, it->second);
  }
  // Group by workload and concurrency (limit rows first in their workload), keeping the targets' order inside.
  std::stable_sort(out.begin(), out.end(), [](const Summary& a, const Summary& b) {
    if (a.target.workload != b.target.workload) return a.target.workload < b.target.workload;
    return a.target.concurrency < b.target.concurrency;
  });
  return out;
}

std::string format_table(const std::vector<Summary>& summaries) {
  std::vector<std::string> head = header(summaries);
  std::vector<Row> rows = rows_of(summaries);
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = width(head[i]);
  for (const Row& r : rows)
    for (size_t i = 0; i < r.cells.size(); ++i) w[i] = std::max(w[i], width(r.cells[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      // Text columns (workload, server / mode) left-aligned, numbers right-aligned.
      const bool left = i == 0 || i == 2;
      std::string pad(w[i] - width(cells[i]), ' ');
      out += left ? cells[i] + pad : pad + cells[i];
      out += i + 1 < cells.size() ? "  " : "";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(head);
  std::string last_group;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string group = summaries[i].target.workload;
    if (!last_group.empty() && group != last_group) out += "\n";
    last_group = group;
    out += line(rows[i].cells);
  }
  return out;
}

std::string format_markdown_table(const std::vector<Summary>& summaries) {
  std::vector<std::string> head = header(summaries);
  std::string out = "|";
  std::string rule = "|";
  for (size_t i = 0; i < head.size(); ++i) {
    out += " " + head[i] + " |";
    rule += i == 0 || i == 2 ? " --- |" : " ---: |";
  }
  out += "\n" + rule + "\n";
  for (const Row& r : rows_of(summaries)) {
    out += "|";
    for (const std::string& c : r.cells) out += " " + c + " |";
    out += "\n";
  }
  return out;
}

std::string render_chart_svg(const std::vector<Summary>& summaries, const std::string& title,
                             const std::string& subtitle) {
  // Colours by label, so that one target has the same colour in every group and in the latency plots.
  std::map<std::string, std::string> colour;
  for (const Summary& s : summaries) {
    std::string l = s.target.label();
    if (!colour.count(l)) colour[l] = kPalette[colour.size() % std::size(kPalette)];
  }
  // One group per workload and concurrency; the workload's limit row goes into each of its groups, as the reference.
  std::map<std::string, const Summary*> limit_of;
  for (const Summary& s : summaries)
    if (s.is_limit()) limit_of[s.target.workload] = &s;
  std::vector<std::pair<std::string, std::vector<const Summary*>>> groups;
  for (const Summary& s : summaries) {
    if (s.is_limit()) continue;
    std::string g = group_name(s.target);
    if (groups.empty() || groups.back().first != g) {
      groups.push_back({g, {}});
      if (auto it = limit_of.find(s.target.workload); it != limit_of.end()) groups.back().second.push_back(it->second);
    }
    groups.back().second.push_back(&s);
  }

  const int width_px = 960, label_w = 260, bar_h = 16, gap = 4, group_gap = 26;
  const int plot_w = width_px - label_w - 90;
  std::string bars;
  int y = 76;
  for (const auto& [name, members] : groups) {
    // Each group has its own log scale: process-per-request rows (hundreds of req/s) stay visible next to FastCGI and
    // static rows (tens of thousands), and equal ratios are equal distances.
    double lo = 1e12, hi = 1;
    for (const Summary* s : members) {
      if (s->rps.min > 0) lo = std::min(lo, s->rps.min);
      hi = std::max(hi, s->rps.max);
    }
    const LogAxis axis(std::min(lo, hi) / 10, hi);  // a decade below the slowest: its bar is never empty
    auto x_of = [&](double v) { return label_w + plot_w - axis.at(v, plot_w, plot_w); };
    bars += svg_text(10, y + 12, name, "font-weight=\"bold\"");
    const int group_top = y + 18;
    y = group_top;
    for (const Summary* s : members) {
      const std::string l = s->target.label();
      const double w = x_of(s->rps.median) - label_w;
      bars += svg_text(label_w - 6, y + 12, l, "text-anchor=\"end\"");
      bars += "<rect x=\"" + num(label_w) + "\" y=\"" + num(y) + "\" width=\"" + num(std::max(w, 1.0)) +
              "\" height=\"" + num(bar_h) + "\" fill=\"" + colour[l] + "\"/>\n";
      const int ym = y + bar_h / 2;
      bars += svg_line(x_of(s->rps.min), ym, x_of(s->rps.max), ym, "#000");
      bars += svg_text(x_of(s->rps.max) + 6, y + 12, rate(s->rps.median));
      y += bar_h + gap;
    }
    // Decade grid lines behind the group's bars, labelled below them.
    for (double d = axis.llo; d <= axis.llo + axis.span; d += 1) {
      const double x = x_of(std::pow(10.0, d));
      bars += svg_line(x, group_top - 2, x, y - gap + 2, "#ccc", "stroke-dasharray=\"2 2\"");
      bars += svg_text(x, y + 8, rate(std::pow(10.0, d)), "text-anchor=\"middle\" font-size=\"9\" fill=\"#777\"");
    }
    y += group_gap - gap + 6;
  }

  // Latency: one panel per HTTP group, x = percentile, y = ms on a log scale shared by all panels.
  double lo = 1e9, hi = 0;
  for (const Summary& s : summaries) {
    if (s.is_limit()) continue;
    for (double v : {s.p50_ms, s.p90_ms, s.p99_ms, s.p99_9_ms}) {
      if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  std::string lat;
  const int panel_w = 300, panel_h = 200, per_row = 3;
  int panels = 0;
  const int lat_top = y + 20;
  if (hi > 0) {
    const LogAxis axis(lo, hi);
    lat += "<text x=\"10\" y=\"" + std::to_string(lat_top - 8) +
           "\" font-weight=\"bold\" font-size=\"15\">Latency percentiles (ms, log scale; median of the repetitions)</text>\n";
    for (const auto& [name, members] : groups) {
      const int px = 50 + (panels % per_row) * (panel_w + 10);
      const int py = lat_top + 10 + (panels / per_row) * (panel_h + 50);
      ++panels;
      auto yv = [&](double v) { return static_cast<int>(axis.at(v, py + panel_h, panel_h)); };
      lat += "<rect x=\"" + std::to_string(px) + "\" y=\"" + std::to_string(py) + "\" width=\"" +
             std::to_string(panel_w - 40) + "\" height=\"" + std::to_string(panel_h) +
             "\" fill=\"none\" stroke=\"#999\"/>\n";
      lat += "<text x=\"" + std::to_string(px) + "\" y=\"" + std::to_string(py - 4) + "\" font-weight=\"bold\">" +
             xml_escape(name) + "</text>\n";
      for (double d = axis.llo; d <= axis.llo + axis.span; d += 1) {
        const int yy = yv(std::pow(10.0, d));
        lat += "<text x=\"" + std::to_string(px - 4) + "\" y=\"" + std::to_string(yy + 4) +
               "\" text-anchor=\"end\" font-size=\"10\">" + ms(std::pow(10.0, d)) + "</text>\n";
        lat += "<line x1=\"" + std::to_string(px) + "\" x2=\"" + std::to_string(px + panel_w - 40) + "\" y1=\"" +
               std::to_string(yy) + "\" y2=\"" + std::to_string(yy) + "\" stroke=\"#eee\"/>\n";
      }
      const char* names[] = {"p50", "p90", "p99", "p99.9"};
      auto xp = [&](int i) { return px + 15 + i * (panel_w - 70) / 3; };
      for (int i = 0; i < 4; ++i)
        lat += "<text x=\"" + std::to_string(xp(i)) + "\" y=\"" + std::to_string(py + panel_h + 14) +
               "\" text-anchor=\"middle\" font-size=\"10\">" + names[i] + "</text>\n";
      for (const Summary* s : members) {
        if (s->is_limit()) continue;
        const double v[] = {s->p50_ms, s->p90_ms, s->p99_ms, s->p99_9_ms};
        std::string points;
        for (int i = 0; i < 4; ++i) points += std::to_string(xp(i)) + "," + std::to_string(yv(v[i])) + " ";
        lat += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + colour[s->target.label()] + "\" points=\"" +
               points + "\"><title>" + xml_escape(s->target.label()) + "</title></polyline>\n";
      }
    }
  }
  const int lat_rows = (panels + per_row - 1) / per_row;
  int extra_y = lat_top + 10 + lat_rows * (panel_h + 50);
  lat += sweep_panels(summaries, extra_y);
  lat += concurrency_panels(summaries, colour, extra_y);
  int legend_y = extra_y;
  std::string legend;
  int i = 0;
  for (const auto& [l, c] : colour) {
    const int lx = 10 + (i % 3) * 310, ly = legend_y + (i / 3) * 18;
    legend += "<rect x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) + "\" width=\"12\" height=\"12\" fill=\"" +
              c + "\"/><text x=\"" + std::to_string(lx + 18) + "\" y=\"" + std::to_string(ly + 11) + "\">" +
              xml_escape(l) + "</text>\n";
    ++i;
  }
  const int height = legend_y + ((i + 2) / 3) * 18 + 20;
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width_px) + "\" height=\"" +
         std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n" +
         "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n" + "<text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">" +
         xml_escape(title) + "</text>\n" + "<text x=\"10\" y=\"40\">" + xml_escape(subtitle) + "</text>\n" +
         "<text x=\"10\" y=\"62\" font-weight=\"bold\" font-size=\"15\">Requests per second (bar: median of the "
         "repetitions; line: min–max; each group on its own log scale)</text>\n" + bars +
         lat + legend + "</svg>\n";
}

}  // namespace spawnd::bench
