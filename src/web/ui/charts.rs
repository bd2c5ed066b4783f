//! Dashboard charts rendered on the server as inline SVG strings: no JavaScript and no external
//! resources, so pages keep working offline. Every function takes plain data and returns one
//! standalone `<svg>` element. Templates insert it unescaped (`|safe`), so all user text is
//! XML-escaped here, and every number goes through a formatter that never prints NaN/inf.
//! Colors live in `static/app.css` (`chart-*` classes); the SVG carries only geometry.

pub use crate::quality::report::ReliabilityBin;
use std::collections::{HashMap, HashSet};

/// Labels longer than this many characters are shortened with "…".
const CUT: usize = 24;
/// Confusion matrices keep at most this many labels per axis.
const MAX_LABELS: usize = 30;
const MIN_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MIN_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Timestamps are clamped to ±year 9999 so tick arithmetic can never overflow.
const MAX_MS: i64 = 253_402_300_799_999;

/// One horizontal bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub note: String,
}

/// A time series; x in milliseconds since the Unix epoch (UTC), y any number.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(i64, f64)>,
}

// ---- markup helpers ----

/// Escapes text for XML content and attribute values, and drops characters XML 1.0 forbids so a
/// stray control byte in a label cannot make the page's SVG malformed.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Shortens a label to `CUT` characters (char boundaries, never bytes), ending in "…".
fn cut(s: &str) -> String {
    if s.chars().count() <= CUT {
        return s.to_string();
    }
    let mut t: String = s.chars().take(CUT - 1).collect();
    t.push('…');
    t
}

/// Finite value or 0, so bad input degrades to an empty mark instead of broken markup.
fn fin(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

fn clamp01(v: f64) -> f64 {
    fin(v).clamp(0.0, 1.0)
}

/// A coordinate: one decimal, trailing ".0" dropped, never NaN/inf.
fn n(v: f64) -> String {
    let s = format!("{:.1}", fin(v));
    match s.strip_suffix(".0") {
        Some("-0") => "0".to_string(),
        Some(t) => t.to_string(),
        None => s,
    }
}

/// A tick value with just enough decimals for `step` (0.25 → "0.25", 20 → "20").
fn tick_num(v: f64, step: f64) -> String {
    let decimals = if fin(step) > 0.0 {
        (-step.log10().floor() + 1.0).clamp(0.0, 8.0) as usize
    } else {
        2
    };
    let s = format!("{:.*}", decimals, fin(v));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// Opens the root element: scales with its container via `viewBox` + `width="100%"`, capped by
/// CSS (`svg.chart`) so small charts do not blow up to page-wide text; the page's CSP forbids
/// inline styles. Also an accessible name and a visible title line at the top.
fn open(kind: &str, title: &str, w: f64, h: f64) -> String {
    let w = w.max(title.chars().count() as f64 * 7.5); // a long title widens, never clips
    let t = esc(title);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{t}" font-family="system-ui, sans-serif" font-size="12"><title>{t}</title>"#,
        n(w),
        n(h)
    );
    if !title.is_empty() {
        s += &text(0.0, 14.0, "start", "chart-title", title);
    }
    s
}

/// A text element; `body` is raw user text and is escaped here.
fn text(x: f64, y: f64, anchor: &str, class: &str, body: &str) -> String {
    format!(
        r#"<text class="{}" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
        classes(class),
        n(x),
        n(y),
        esc(body)
    )
}

fn classes(extra: &str) -> String {
    format!("chart-text {extra}").trim_end().to_string()
}

/// Text rotated to read bottom-to-top around its anchor point (vertical axis captions).
fn vtext(x: f64, y: f64, anchor: &str, class: &str, body: &str) -> String {
    format!(
        r#"<text class="{}" x="{x}" y="{y}" text-anchor="{anchor}" transform="rotate(-90 {x} {y})">{}</text>"#,
        classes(class),
        esc(body),
        x = n(x),
        y = n(y)
    )
}

fn line(class: &str, x1: f64, y1: f64, x2: f64, y2: f64) -> String {
    format!(
        r#"<line class="{class}" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
        n(x1),
        n(y1),
        n(x2),
        n(y2)
    )
}

/// The placeholder every chart shows without data, so the page layout holds.
fn empty(kind: &str, title: &str) -> String {
    open(kind, title, 640.0, 72.0)
        + &text(320.0, 50.0, "middle", "chart-muted", "No data yet")
        + "</svg>"
}

// ---- bars ----

/// Horizontal bar chart: one row per bar, label left, bar, `note` right of the bar (e.g. "0.82 · n=40").
/// `max`: the value of a full-width bar (Some(1.0) for shares/accuracies); None = largest value.
pub fn bars(title: &str, bars: &[Bar], max: Option<f64>) -> String {
    if bars.is_empty() {
        return empty("bars", title);
    }
    let (w, row, top, x0, bw) = (640.0, 24.0, 28.0, 176.0, 330.0);
    let largest = bars.iter().map(|b| fin(b.value)).fold(0.0, f64::max);
    let full = match max {
        Some(m) if m.is_finite() && m > 0.0 => m,
        _ if largest > 0.0 => largest,
        _ => 1.0,
    };
    let h = top + row * bars.len() as f64 + 6.0;
    let mut s = open("bars", title, w, h);
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let len = (fin(b.value).max(0.0) / full).min(1.0) * bw;
        let hover = if b.note.is_empty() {
            b.label.clone()
        } else {
            format!("{}: {}", b.label, b.note)
        };
        s += &format!("<g><title>{}</title>", esc(&hover));
        s += &text(x0 - 8.0, y + row / 2.0 + 4.0, "end", "", &cut(&b.label));
        s += &format!(
            r#"<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" rx="2"/>"#,
            n(x0),
            n(y + 3.0),
            n(len),
            n(row - 6.0)
        );
        s += &text(
            x0 + len + 6.0,
            y + row / 2.0 + 4.0,
            "start",
            "chart-muted",
            &cut(&b.note),
        );
        s += "</g>";
    }
    s += &line("chart-axis", x0, top, x0, h - 6.0);
    s + "</svg>"
}

// ---- lines ----

/// Round axis ticks covering [lo, hi] (lo <= 0 <= hi): a step of 1, 2, 2.5 or 5 × 10^k chosen
/// so positive data spans 2–4 intervals, i.e. 3–5 readable ticks starting at 0.
fn nice_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let (lo, hi) = (fin(lo), fin(hi));
    let hi = if hi > lo { hi } else { lo + 1.0 }; // all zeros: show 0..1
    let raw = (hi - lo) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let (a, b) = ((lo / step).floor(), (hi / step).ceil());
    if !(b - a).is_finite() || b - a > 12.0 {
        return (vec![lo, hi], hi - lo); // absurd magnitudes: just the ends
    }
    (
        (a as i64..=b as i64).map(|k| k as f64 * step).collect(),
        step,
    )
}

/// Time ticks aligned to UTC: clock steps (HH:MM labels) for spans under two days, whole days
/// (date labels) otherwise; the smallest step giving at most 5 intervals, padded to at least 2.
/// Returns the ticks (first and last are the axis ends) and whether labels are clock times.
fn time_ticks(lo: i64, hi: i64) -> (Vec<i64>, bool) {
    let clock = hi - lo < 2 * DAY_MS;
    let steps: Vec<i64> = if clock {
        let mins = [1, 5, 10, 15, 30].map(|m| m * MIN_MS);
        let hours = [1, 2, 3, 6, 12, 24].map(|h| h * HOUR_MS);
        mins.into_iter().chain(hours).collect()
    } else {
        let days = [
            1, 2, 3, 7, 14, 30, 61, 91, 182, 365, 730, 1826, 3652, 7305, 18262, 36525,
        ];
        days.into_iter()
            .chain([365_250, 3_652_500])
            .map(|d| d * DAY_MS)
            .collect()
    };
    // Clock ticks sit on round UTC times; day ticks start at the first data day.
    let origin = if clock {
        0
    } else {
        lo.div_euclid(DAY_MS) * DAY_MS
    };
    let (lo, hi) = (lo - origin, hi - origin);
    let range = |s: i64| {
        (
            lo.div_euclid(s),
            hi.div_euclid(s) + i64::from(hi.rem_euclid(s) != 0),
        )
    };
    let step = steps
        .iter()
        .copied()
        .find(|&s| {
            let (a, b) = range(s);
            b - a <= 5
        })
        .unwrap_or(3_652_500 * DAY_MS);
    let (mut a, mut b) = range(step);
    while b - a < 2 {
        if (b - a) % 2 == 0 {
            b += 1;
        } else {
            a -= 1;
        }
    }
    ((a..=b).map(|k| origin + k * step).collect(), clock)
}

/// Formats a UTC timestamp as "YYYY-MM-DD", or "HH:MM" when `clock`.
fn fmt_time(ms: i64, clock: bool) -> String {
    let ms = ms.clamp(-MAX_MS, MAX_MS);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    if clock {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    }
}

/// Line chart with up to 4 series (more are dropped), x axis with 3–6 date ticks (YYYY-MM-DD, or HH:MM when the span is under two days),
/// y axis from 0 with 3–5 round ticks, a legend when there are 2+ series. Points sorted by x by the function.
pub fn lines(title: &str, series: &[Series], y_label: &str) -> String {
    let data: Vec<(&str, Vec<(i64, f64)>)> = series
        .iter()
        .take(4)
        .map(|s| {
            let mut p: Vec<(i64, f64)> = s
                .points
                .iter()
                .filter(|(_, y)| y.is_finite())
                .map(|&(x, y)| (x.clamp(-MAX_MS, MAX_MS), y))
                .collect();
            p.sort_by_key(|&(x, _)| x);
            (s.name.as_str(), p)
        })
        .collect();
    let all = || data.iter().flat_map(|(_, p)| p.iter());
    let (Some(x_lo), Some(x_hi)) = (all().map(|p| p.0).min(), all().map(|p| p.0).max()) else {
        return empty("lines", title);
    };
    let y_lo = all().map(|p| p.1).fold(0.0, f64::min);
    let y_hi = all().map(|p| p.1).fold(0.0, f64::max);
    let (xt, clock) = time_ticks(x_lo, x_hi);
    let (yt, ystep) = nice_ticks(y_lo, y_hi);
    let (w, l, r, t, ph) = (640.0, 64.0, 40.0, 28.0, 200.0);
    let pw = w - l - r;
    let legend_rows = if data.len() >= 2 {
        data.len().div_ceil(2)
    } else {
        0
    };
    let h = t + ph + 28.0 + 18.0 * legend_rows as f64;
    let (x0, x1) = (
        xt.first().copied().unwrap_or(x_lo),
        xt.last().copied().unwrap_or(x_hi),
    );
    let (y0, y1) = (
        yt.first().copied().unwrap_or(0.0),
        yt.last().copied().unwrap_or(1.0),
    );
    let px = |x: i64| l + (x - x0) as f64 / ((x1 - x0).max(1)) as f64 * pw;
    let py = |y: f64| t + ph - (y - y0) / (y1 - y0) * ph;

    let mut s = open("lines", title, w, h);
    for &v in &yt {
        s += &line("chart-grid", l, py(v), l + pw, py(v));
        s += &text(
            l - 6.0,
            py(v) + 4.0,
            "end",
            "chart-muted",
            &tick_num(v, ystep),
        );
    }
    for &x in &xt {
        s += &line("chart-axis", px(x), t + ph, px(x), t + ph + 4.0);
        s += &text(
            px(x),
            t + ph + 17.0,
            "middle",
            "chart-muted",
            &fmt_time(x, clock),
        );
    }
    s += &line("chart-axis", l, t, l, t + ph);
    s += &line("chart-axis", l, py(0.0), l + pw, py(0.0));
    s += &vtext(14.0, t + ph / 2.0, "middle", "chart-muted", y_label);
    for (i, (name, pts)) in data.iter().enumerate() {
        let coords: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{},{}", n(px(x)), n(py(y))))
            .collect();
        s += &format!(
            r#"<polyline class="chart-line chart-line-{i}" fill="none" points="{}"><title>{}</title></polyline>"#,
            coords.join(" "),
            esc(name)
        );
        if pts.len() <= 40 {
            for &(x, y) in pts {
                s += &format!(
                    r#"<circle class="chart-line-{i}" fill="currentColor" cx="{}" cy="{}" r="2.5"/>"#,
                    n(px(x)),
                    n(py(y))
                );
            }
        }
        if legend_rows > 0 {
            let (lx, ly) = (
                l + 290.0 * (i % 2) as f64,
                t + ph + 40.0 + 18.0 * (i / 2) as f64,
            );
            s += &line(
                &format!("chart-line chart-line-{i}"),
                lx,
                ly - 4.0,
                lx + 18.0,
                ly - 4.0,
            );
            s += &text(lx + 24.0, ly, "start", "", &cut(name));
        }
    }
    s + "</svg>"
}

// ---- reliability ----

/// Reliability diagram: x = confidence 0..1, y = accuracy 0..1; one bar per non-empty bin
/// spanning lo..hi with height = accuracy, the diagonal (perfect calibration) as a dashed line,
/// a dot at (confidence, accuracy) per bin, and the ECE printed in a corner ("ECE 0.043").
pub fn reliability(title: &str, bins: &[ReliabilityBin], ece: Option<f64>) -> String {
    let used: Vec<&ReliabilityBin> = bins.iter().filter(|b| b.count > 0).collect();
    if used.is_empty() {
        return empty("reliability", title);
    }
    let (l, t, sz) = (52.0, 28.0, 260.0);
    let (w, h) = (l + sz + 16.0, t + sz + 40.0);
    let px = |v: f64| l + clamp01(v) * sz;
    let py = |v: f64| t + sz - clamp01(v) * sz;
    let mut s = open("reliability", title, w, h);
    for k in 0..=5 {
        let v = k as f64 / 5.0;
        s += &line("chart-grid", px(v), t, px(v), t + sz);
        s += &line("chart-grid", l, py(v), l + sz, py(v));
        s += &text(
            px(v),
            t + sz + 15.0,
            "middle",
            "chart-muted",
            &tick_num(v, 0.2),
        );
        s += &text(
            l - 6.0,
            py(v) + 4.0,
            "end",
            "chart-muted",
            &tick_num(v, 0.2),
        );
    }
    for b in &used {
        let (lo, hi) = (
            clamp01(b.lo).min(clamp01(b.hi)),
            clamp01(b.lo).max(clamp01(b.hi)),
        );
        let hover = format!(
            "{}–{}: n={}, confidence {:.3}, accuracy {:.3}",
            tick_num(lo, 0.01),
            tick_num(hi, 0.01),
            b.count,
            fin(b.confidence),
            fin(b.accuracy)
        );
        s += &format!(
            r#"<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
            n(px(lo)),
            n(py(b.accuracy)),
            n(px(hi) - px(lo)),
            n(t + sz - py(b.accuracy)),
            esc(&hover)
        );
    }
    s += &line("chart-diag", px(0.0), py(0.0), px(1.0), py(1.0));
    for b in &used {
        let (cx, cy) = (n(px(b.confidence)), n(py(b.accuracy)));
        s += &format!(r#"<circle class="chart-dot" cx="{cx}" cy="{cy}" r="3"/>"#);
    }
    s += &line("chart-axis", l, t, l, t + sz);
    s += &line("chart-axis", l, t + sz, l + sz, t + sz);
    s += &text(
        l + sz / 2.0,
        t + sz + 32.0,
        "middle",
        "chart-muted",
        "confidence",
    );
    s += &vtext(14.0, t + sz / 2.0, "middle", "chart-muted", "accuracy");
    if let Some(e) = ece.filter(|e| e.is_finite()) {
        s += &text(
            l + 8.0,
            t + 18.0,
            "start",
            "chart-ece",
            &format!("ECE {e:.3}"),
        );
    }
    s + "</svg>"
}

// ---- confusion ----

/// Indices of the labels to keep, in their original order: all of them, or the `MAX_LABELS`
/// with the largest totals (ties keep the earlier label).
fn keep(labels: &[String], total: &HashMap<&str, u64>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..labels.len()).collect();
    if labels.len() > MAX_LABELS {
        idx.sort_by_key(|&i| {
            (
                std::cmp::Reverse(total.get(labels[i].as_str()).copied().unwrap_or(0)),
                i,
            )
        });
        idx.truncate(MAX_LABELS);
        idx.sort_unstable();
    }
    idx
}

/// Confusion matrix heat map: rows = `rows[i]` (human labels), columns = `cols[j]` (model labels),
/// `counts[i][j]`; cell opacity by count relative to the max, count printed in non-zero cells,
/// axis captions "human" (rows) and "model" (columns). Label lists longer than 30 are cut to the
/// 30 most frequent (by row+column totals) and the title says how many were left out.
pub fn confusion(title: &str, rows: &[String], cols: &[String], counts: &[Vec<u64>]) -> String {
    let at = |i: usize, j: usize| counts.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0);
    let mut total: HashMap<&str, u64> = HashMap::new();
    for (i, name) in rows.iter().enumerate() {
        let sum = (0..cols.len()).fold(0u64, |a, j| a.saturating_add(at(i, j)));
        total
            .entry(name)
            .and_modify(|t| *t = t.saturating_add(sum))
            .or_insert(sum);
    }
    for (j, name) in cols.iter().enumerate() {
        let sum = (0..rows.len()).fold(0u64, |a, i| a.saturating_add(at(i, j)));
        total
            .entry(name)
            .and_modify(|t| *t = t.saturating_add(sum))
            .or_insert(sum);
    }
    if rows.is_empty() || cols.is_empty() || total.values().all(|&t| t == 0) {
        return empty("confusion", title);
    }
    let (kr, kc) = (keep(rows, &total), keep(cols, &total));
    let shown: HashSet<&str> = kr
        .iter()
        .map(|&i| rows[i].as_str())
        .chain(kc.iter().map(|&j| cols[j].as_str()))
        .collect();
    let left_out = total.keys().filter(|k| !shown.contains(*k)).count();
    let title = match left_out {
        0 => title.to_string(),
        1 => format!("{title} (1 label left out)"),
        k => format!("{title} ({k} labels left out)"),
    };
    let max = kr
        .iter()
        .flat_map(|&i| kc.iter().map(move |&j| (i, j)))
        .map(|(i, j)| at(i, j))
        .max()
        .unwrap_or(0)
        .max(1);

    let chars = |v: &[usize], names: &[String]| {
        v.iter()
            .map(|&i| names[i].chars().count().min(CUT))
            .max()
            .unwrap_or(0)
    };
    let cell = (440.0 / kr.len().max(kc.len()) as f64).clamp(14.0, 40.0);
    let l = 24.0 + chars(&kr, rows) as f64 * 6.6 + 8.0;
    let t = 46.0 + chars(&kc, cols) as f64 * 6.6 + 8.0;
    let (w, h) = (
        l + cell * kc.len() as f64 + 12.0,
        t + cell * kr.len() as f64 + 12.0,
    );
    let mut s = open("confusion", &title, w, h);
    s += &text(
        l + cell * kc.len() as f64 / 2.0,
        38.0,
        "middle",
        "chart-muted",
        "model",
    );
    s += &vtext(
        12.0,
        t + cell * kr.len() as f64 / 2.0,
        "middle",
        "chart-muted",
        "human",
    );
    for (c, &j) in kc.iter().enumerate() {
        let x = l + cell * (c as f64 + 0.5) + 4.0;
        s += &format!(
            "<g><title>{}</title>{}</g>",
            esc(&cols[j]),
            vtext(x, t - 6.0, "start", "", &cut(&cols[j]))
        );
    }
    for (r, &i) in kr.iter().enumerate() {
        let y = t + cell * r as f64;
        s += &format!(
            "<g><title>{}</title>{}</g>",
            esc(&rows[i]),
            text(l - 6.0, y + cell / 2.0 + 4.0, "end", "", &cut(&rows[i]))
        );
        for (c, &j) in kc.iter().enumerate() {
            let (x, v) = (l + cell * c as f64, at(i, j));
            let op = if v == 0 {
                0.04
            } else {
                0.12 + 0.88 * v as f64 / max as f64
            };
            let hover = format!("human {} · model {}: {v}", rows[i], cols[j]);
            s += &format!(
                r#"<rect class="chart-cell" x="{}" y="{}" width="{c}" height="{c}" fill-opacity="{:.2}"><title>{}</title></rect>"#,
                n(x),
                n(y),
                op,
                esc(&hover),
                c = n(cell)
            );
            if v > 0 {
                let digits = v.to_string().len() as f64;
                let size = (cell * 0.85 / (digits * 0.62)).min(11.0);
                let class = if op > 0.55 {
                    "chart-cell-text chart-on-dark"
                } else {
                    "chart-cell-text"
                };
                s += &format!(
                    r#"<text class="chart-text {class}" x="{}" y="{}" text-anchor="middle" font-size="{}">{v}</text>"#,
                    n(x + cell / 2.0),
                    n(y + cell / 2.0 + size * 0.35),
                    n(size)
                );
            }
        }
    }
    s + "</svg>"
}

// ---- learning curve ----

/// One point of the online-accuracy chart: the human answers given while one model was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyPoint {
    /// Human labels the shown model was trained on (the x position; 0: the language model alone).
    pub labels: i64,
    /// Answers behind the point.
    pub answers: i64,
    /// The prediction shown's score on those answers (accuracy or span F1).
    pub shown: f64,
    /// The language model alone's score, on the same answers.
    pub lm: f64,
}

/// Which of a point's accuracies a series draws.
type Accuracy = fn(&AccuracyPoint) -> f64;

/// Online quality as the learner is retrained: x = human answers the shown model was trained
/// on (named `trained_on`: "human labels", "answered sentences"), y = `measure` (accuracy or
/// span F1) 0..1, two series (the prediction shown, the language model alone) with one
/// `circle.chart-point` per point per series (`data-series` "shown" or "lm"), whose hover title
/// gives the number of answers behind it. Points are sorted by x here. Without points it says
/// the chart appears after the first answers.
pub fn learning_curve(
    title: &str,
    trained_on: &str,
    measure: &str,
    points: &[AccuracyPoint],
) -> String {
    const KIND: &str = "learning-curve";
    let mut pts: Vec<&AccuracyPoint> = points.iter().filter(|p| p.answers > 0).collect();
    if pts.is_empty() {
        return open(KIND, title, 640.0, 72.0)
            + &text(
                320.0,
                50.0,
                "middle",
                "chart-muted",
                "The chart appears after the first answers to a shown prediction.",
            )
            + "</svg>";
    }
    pts.sort_by_key(|p| p.labels);
    let x_hi = pts
        .iter()
        .map(|p| p.labels.max(0))
        .max()
        .unwrap_or(0)
        .max(4);
    let (xt, xstep) = nice_ticks(0.0, x_hi as f64);
    let (w, l, r, t, ph) = (640.0, 64.0, 40.0, 28.0, 200.0);
    let pw = w - l - r;
    let h = t + ph + 44.0 + 18.0;
    let (x0, x1) = (
        xt.first().copied().unwrap_or(0.0),
        xt.last().copied().unwrap_or(x_hi as f64),
    );
    let px = |x: i64| l + (x.max(0) as f64 - x0) / (x1 - x0).max(1.0) * pw;
    let py = |y: f64| t + ph - clamp01(y) * ph;

    let mut s = open(KIND, title, w, h);
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        s += &line("chart-grid", l, py(v), l + pw, py(v));
        s += &text(
            l - 6.0,
            py(v) + 4.0,
            "end",
            "chart-muted",
            &tick_num(v, 0.25),
        );
    }
    for &x in &xt {
        let xp = l + (x - x0) / (x1 - x0).max(1.0) * pw;
        s += &line("chart-axis", xp, t + ph, xp, t + ph + 4.0);
        s += &text(
            xp,
            t + ph + 17.0,
            "middle",
            "chart-muted",
            &tick_num(x, xstep),
        );
    }
    s += &line("chart-axis", l, t, l, t + ph);
    s += &line("chart-axis", l, t + ph, l + pw, t + ph);
    s += &text(
        l + pw / 2.0,
        t + ph + 32.0,
        "middle",
        "chart-muted",
        &format!("{trained_on} so far"),
    );
    s += &vtext(14.0, t + ph / 2.0, "middle", "chart-muted", measure);
    let series: [(&str, &str, Accuracy); 2] = [
        ("shown", "prediction shown", |p| p.shown),
        ("lm", "language model alone", |p| p.lm),
    ];
    for (i, (key, name, acc)) in series.iter().enumerate() {
        let coords: Vec<String> = pts
            .iter()
            .map(|p| format!("{},{}", n(px(p.labels)), n(py(acc(p)))))
            .collect();
        s += &format!(
            r#"<polyline class="chart-line chart-line-{i}" fill="none" points="{}"><title>{}</title></polyline>"#,
            coords.join(" "),
            esc(name)
        );
        for p in &pts {
            let hover = format!(
                "{} {trained_on} · {name} {:.2} · {} answer{}",
                p.labels,
                fin(acc(p)),
                p.answers,
                if p.answers == 1 { "" } else { "s" }
            );
            s += &format!(
                r#"<circle class="chart-point chart-point-{key} chart-line-{i}" data-series="{key}" data-labels="{}" data-answers="{}" cx="{}" cy="{}" r="4"><title>{}</title></circle>"#,
                p.labels,
                p.answers,
                n(px(p.labels)),
                n(py(acc(p))),
                esc(&hover)
            );
        }
        let (lx, ly) = (l + 290.0 * i as f64, h - 6.0);
        s += &line(
            &format!("chart-line chart-line-{i}"),
            lx,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
        );
        s += &text(lx + 24.0, ly, "start", "", name);
    }
    s + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal well-formedness check: balanced, properly nested tags, quoted attributes with no
    /// raw `<`, and every `&` starting a known entity.
    fn well_formed(s: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = s;
        let mut root_closed = false;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt])?;
            if root_closed {
                return Err("content after the root element".into());
            }
            let gt = rest[lt..].find('>').ok_or("unterminated tag")? + lt;
            let tag = &rest[lt + 1..gt];
            if !tag.matches('"').count().is_multiple_of(2) || tag.contains('<') {
                return Err(format!("bad tag <{tag}>"));
            }
            let name_end = |t: &str| {
                t.find(|c: char| c.is_whitespace() || c == '/')
                    .unwrap_or(t.len())
            };
            if let Some(close) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == close => root_closed = stack.is_empty(),
                    other => return Err(format!("</{close}> closes {other:?}")),
                }
            } else if !tag.ends_with('/') {
                stack.push(&tag[..name_end(tag)]);
            } else if stack.is_empty() {
                return Err("self-closing root".into());
            }
            check_text(tag)?;
            rest = &rest[gt + 1..];
        }
        check_text(rest)?;
        if !stack.is_empty() || !root_closed || !rest.trim().is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        Ok(())
    }

    fn check_text(t: &str) -> Result<(), String> {
        if t.contains('>') {
            return Err(format!("raw > in {t:?}"));
        }
        for (i, _) in t.match_indices('&') {
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| t[i..].starts_with(e));
            if !ok {
                return Err(format!("bare & in {t:?}"));
            }
        }
        Ok(())
    }

    fn check(svg: &str) {
        assert!(
            svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"width="100%""#)
                && svg.contains("viewBox=\"0 0 ")
                && svg.contains(r#"role="img""#)
        );
        assert!(svg.contains("<title>"));
        if let Err(e) = well_formed(svg) {
            panic!("{e}\n{svg}");
        }
        for bad in ["NaN", "inf"] {
            assert!(!svg.contains(bad), "{bad} in {svg}");
        }
    }

    fn bar(label: &str, value: f64) -> Bar {
        let note = if value.is_finite() {
            format!("{value:.2} · n=40")
        } else {
            "n=0".into()
        };
        Bar {
            label: label.into(),
            value,
            note,
        }
    }

    fn bin(lo: f64, count: u64, conf: f64, acc: f64) -> ReliabilityBin {
        ReliabilityBin {
            lo,
            hi: lo + 0.1,
            count,
            confidence: conf,
            accuracy: acc,
        }
    }

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

    #[test]
    fn checker_rejects_broken_markup() {
        assert!(well_formed("<svg><g></svg></g>").is_err());
        assert!(well_formed("<svg><text>a<b</text></svg>").is_err());
        assert!(well_formed("<svg>&x</svg>").is_err());
        assert!(well_formed("<svg><g/></svg>").is_ok());
    }

    #[test]
    fn escapes_user_text_everywhere() {
        let evil = r#"<b>&"x"'"#;
        let outs = [
            bars(
                evil,
                &[Bar {
                    label: evil.into(),
                    value: 1.0,
                    note: evil.into(),
                }],
                None,
            ),
            lines(
                evil,
                &[
                    Series {
                        name: evil.into(),
                        points: vec![(T0, 1.0)],
                    },
                    Series {
                        name: "b".into(),
                        points: vec![(T0 + DAY, 2.0)],
                    },
                ],
                evil,
            ),
            reliability(evil, &[bin(0.5, 3, 0.55, 0.5)], Some(0.1)),
            confusion(evil, &[evil.to_string()], &[evil.to_string()], &[vec![2]]),
        ];
        for svg in &outs {
            check(svg);
            assert!(!svg.contains("<b>"), "{svg}");
            assert!(svg.contains("&lt;b&gt;&amp;&quot;x&quot;&apos;"), "{svg}");
        }
        assert!(!esc("a\u{0}b\u{1b}").contains(|c: char| (c as u32) < 0x20));
    }

    #[test]
    fn bars_one_rect_per_bar_and_full_width_at_max() {
        let bs: Vec<Bar> = (0..5)
            .map(|i| bar(&format!("l{i}"), i as f64 * 0.25))
            .collect();
        let svg = bars("Accuracy", &bs, Some(1.0));
        check(&svg);
        assert_eq!(svg.matches(r#"<rect class="chart-bar""#).count(), 5);
        assert_eq!(
            svg.matches(r#"width="330""#).count(),
            1,
            "value 1.0 == max is full width"
        );
        assert!(svg.contains("1.00 · n=40"));
        // None: the largest value is the full width; over-max values are clamped.
        let svg = bars("t", &[bar("a", 3.0), bar("b", 6.0)], None);
        assert_eq!(svg.matches(r#"width="330""#).count(), 1);
        assert!(svg.contains(r#"width="165""#));
        assert_eq!(
            bars("t", &[bar("a", 5.0)], Some(2.0))
                .matches(r#"width="330""#)
                .count(),
            1
        );
    }

    #[test]
    fn non_finite_inputs_never_print() {
        let b = bars(
            "t",
            &[bar("a", f64::NAN), bar("b", f64::INFINITY), bar("c", -1.0)],
            Some(f64::NAN),
        );
        check(&b);
        assert_eq!(b.matches(r#"<rect class="chart-bar""#).count(), 3);
        let pts = vec![
            (T0, f64::NAN),
            (T0 + DAY, 1.0),
            (T0 + 2 * DAY, f64::INFINITY),
            (T0 + 3 * DAY, 2.0),
        ];
        check(&lines(
            "t",
            &[Series {
                name: "s".into(),
                points: pts,
            }],
            "y",
        ));
        let nan_bin = ReliabilityBin {
            lo: f64::NAN,
            hi: f64::INFINITY,
            count: 1,
            confidence: f64::NAN,
            accuracy: f64::NAN,
        };
        let r = reliability("t", &[nan_bin], Some(f64::NAN));
        check(&r);
        assert!(!r.contains("ECE"));
        check(&lines(
            "t",
            &[Series {
                name: "s".into(),
                points: vec![(i64::MIN, 1e308), (i64::MAX, -1e308)],
            }],
            "y",
        ));
    }

    #[test]
    fn empty_charts_say_no_data() {
        let nan_only = Series {
            name: "s".into(),
            points: vec![(T0, f64::NAN)],
        };
        let outs = [
            bars("t", &[], None),
            lines("t", &[], "y"),
            lines("t", &[nan_only], "y"),
            reliability("t", &[], Some(0.1)),
            reliability("t", &[bin(0.0, 0, 0.05, 0.0)], None),
            confusion("t", &[], &[], &[]),
            confusion("t", &["a".into()], &["a".into()], &[vec![0]]),
        ];
        for svg in &outs {
            check(svg);
            assert!(svg.contains("No data yet"), "{svg}");
        }
    }

    #[test]
    fn date_ticks() {
        assert_eq!(fmt_time(0, false), "1970-01-01");
        assert_eq!(fmt_time(T0, false), "2024-01-01");
        assert_eq!(fmt_time(T0 + 59 * DAY, false), "2024-02-29");
        assert_eq!(fmt_time(-DAY, false), "1969-12-31");
        assert_eq!(fmt_time(T0 + 13 * 3_600_000 + 5 * 60_000, true), "13:05");
        // Every span gets 3–6 ticks; date labels from two days up, clock labels below.
        for span in [
            0,
            1,
            59_000,
            3_600_000,
            DAY,
            2 * DAY - 1,
            2 * DAY,
            9 * DAY,
            400 * DAY,
            40_000 * DAY,
        ] {
            let (ticks, clock) = time_ticks(T0 + 7, T0 + 7 + span);
            assert!((3..=6).contains(&ticks.len()), "span {span}: {ticks:?}");
            assert_eq!(clock, span < 2 * DAY);
            assert!(ticks[0] <= T0 + 7 && *ticks.last().unwrap_or(&0) >= T0 + 7 + span);
        }
        let week = Series {
            name: "s".into(),
            points: (0..8).rev().map(|d| (T0 + d * DAY, d as f64)).collect(),
        };
        let svg = lines("t", &[week], "items");
        check(&svg);
        assert!(svg.contains(">2024-01-01</text>"), "{svg}");
        let hours = Series {
            name: "s".into(),
            points: vec![(T0, 1.0), (T0 + 6 * 3_600_000, 3.0)],
        };
        let svg = lines("t", &[hours], "items");
        assert!(
            svg.contains(">00:00</text>") && !svg.contains(">2024-"),
            "{svg}"
        );
    }

    #[test]
    fn y_ticks_are_round_from_zero() {
        for hi in [0.0, 0.3, 1.0, 7.0, 10.0, 99.0, 1234.5] {
            let (t, _) = nice_ticks(0.0, hi);
            assert!(
                (3..=5).contains(&t.len()) && t[0] == 0.0 && t[t.len() - 1] >= hi,
                "{hi}: {t:?}"
            );
        }
        assert_eq!(nice_ticks(0.0, 0.0).0, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(tick_num(0.25, 0.25), "0.25");
        assert_eq!(tick_num(20.0, 5.0), "20");
    }

    #[test]
    fn lines_legend_and_series_cap() {
        let s = |i: i64| Series {
            name: format!("series{i}"),
            points: vec![(T0, i as f64), (T0 + DAY * 3, 1.0)],
        };
        let svg = lines("t", &(0..6).map(s).collect::<Vec<_>>(), "y");
        check(&svg);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains(">series3</text>") && !svg.contains("series4"));
        assert!(
            !lines("t", &[s(0)], "y").contains(">series0</text>"),
            "no legend for one series"
        );
    }

    #[test]
    fn reliability_bars_and_ece() {
        let bins = [
            bin(0.5, 10, 0.55, 0.5),
            bin(0.6, 0, 0.0, 0.0),
            bin(0.7, 4, 0.75, 0.8),
            bin(0.9, 30, 0.95, 0.9),
        ];
        let svg = reliability("Calibration", &bins, Some(0.0431));
        check(&svg);
        assert_eq!(svg.matches(r#"<rect class="chart-bar""#).count(), 3);
        assert_eq!(svg.matches(r#"<circle class="chart-dot""#).count(), 3);
        assert!(svg.contains(">ECE 0.043</text>") && svg.contains(r#"class="chart-diag""#));
    }

    #[test]
    fn confusion_cuts_to_30_labels() {
        let labels: Vec<String> = (0..35).map(|i| format!("label{i:02}")).collect();
        // label i occurs i+1 times on the diagonal, so labels 00..04 are the rarest.
        let counts: Vec<Vec<u64>> = (0..35)
            .map(|i| {
                (0..35)
                    .map(|j| if i == j { i as u64 + 1 } else { 0 })
                    .collect()
            })
            .collect();
        let svg = confusion("Confusion", &labels, &labels, &counts);
        check(&svg);
        assert!(svg.contains("Confusion (5 labels left out)"));
        assert_eq!(svg.matches(r#"<rect class="chart-cell""#).count(), 30 * 30);
        assert!(!svg.contains("label04") && svg.contains("label05") && svg.contains(">35</text>"));
        assert!(svg.contains(">human</text>") && svg.contains(">model</text>"));
        // Small matrices keep every label, ragged rows read as 0.
        let two = ["a".to_string(), "b".to_string()];
        let svg = confusion("C", &two, &two, &[vec![3]]);
        check(&svg);
        assert_eq!(svg.matches(r#"<rect class="chart-cell""#).count(), 4);
        assert!(svg.contains(">3</text>") && !svg.contains("left out"));
    }

    #[test]
    fn long_labels_cut_on_char_boundaries() {
        let long = "é".repeat(40);
        let svg = bars("t", &[bar(&long, 1.0)], None);
        check(&svg);
        assert!(svg.contains(&format!(">{}…</text>", "é".repeat(23))));
        assert!(
            svg.contains(&format!("<title>{long}: ")),
            "full label on hover"
        );
    }

    fn point(labels: i64, answers: i64, shown: f64, lm: f64) -> AccuracyPoint {
        AccuracyPoint {
            labels,
            answers,
            shown,
            lm,
        }
    }

    #[test]
    fn learning_curve_one_marker_per_point_per_series() {
        // Given out of order; drawn by labels.
        let pts = [
            point(20, 3, 1.0, 1.0 / 3.0),
            point(0, 2, 0.5, 0.5),
            point(40, 1, 1.0, 0.0),
        ];
        let svg = learning_curve("Online accuracy", "human labels", "accuracy", &pts);
        check(&svg);
        assert!(svg.contains(r#"class="chart chart-learning-curve""#));
        assert_eq!(svg.matches(r#"data-series="shown""#).count(), 3);
        assert_eq!(svg.matches(r#"data-series="lm""#).count(), 3);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("20 human labels · prediction shown 1.00 · 3 answers"));
        assert!(svg.contains("40 human labels · language model alone 0.00 · 1 answer<"));
        assert!(svg.contains(">human labels so far</text>") && svg.contains(">accuracy</text>"));
        // x grows with the labels, y with the accuracy (1.0 at the top of the plot, y = 28).
        let cx = |labels: i64| {
            let at = svg
                .find(&format!(r#"data-series="shown" data-labels="{labels}""#))
                .expect("marker");
            let rest = &svg[at..];
            let v = &rest[rest.find("cx=\"").expect("cx") + 4..];
            v[..v.find('"').expect("end")]
                .parse::<f64>()
                .expect("number")
        };
        assert!(cx(0) < cx(20) && cx(20) < cx(40));
        assert_eq!(cx(0), 64.0);
        assert!(
            svg.contains(r#"data-labels="40" data-answers="1" cx="600" cy="28""#),
            "{svg}"
        );
    }

    #[test]
    fn learning_curve_empty_and_odd_inputs() {
        for pts in [vec![], vec![point(5, 0, 1.0, 1.0)]] {
            let svg = learning_curve("Online accuracy", "human labels", "accuracy", &pts);
            check(&svg);
            assert!(svg.contains("appears after the first answers"), "{svg}");
            assert!(!svg.contains("<circle"));
        }
        let svg = learning_curve(
            "t",
            "answered sentences",
            "span F1",
            &[point(0, 1, f64::NAN, f64::INFINITY)],
        );
        check(&svg);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(
            svg.contains(">4</text>"),
            "a lone point still gets an x axis: {svg}"
        );
    }
}
