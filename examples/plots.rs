//! Pictures of the benchmarks: reads the JSON files the benchmark programs
//! write when `NATTER_BENCH_DATA=DIR` is set and draws SVG files from them.
//!
//! ```sh
//! NATTER_BENCH_DATA=docs/bench-data cargo bench --bench fanout -- 1 2 3
//! NATTER_BENCH_DATA=docs/bench-data make bench-compare
//! NATTER_BENCH_DATA=docs/bench-data make compare-threads
//! cargo run --release --example plots -- docs/bench-data docs/img
//! ```
//!
//! What it reads (the schemas are in `examples/loadgen.rs`, `bench_data_dir`,
//! and in the crate docs of `examples/compare_threads.rs`), and draws:
//!
//! - `fanout.json` (`benches/fanout.rs`): `cdf-s1.svg`, scenario 1's
//!   latency, line and WebSocket clients; `cdf-s3.svg`, scenario 3's; and
//!   scenario 2's ladder in `s2-steps.svg`.
//! - `compare-ws.json` (`examples/bench_compare.rs`): `cdf-vs-ws-sN.svg`
//!   for each scenario N run on both natter and Node's `ws`, and both
//!   ladders in `s2-steps.svg` (with fanout's, when both files are there).
//! - `compare-threads.json` (`examples/compare_threads.rs`): `threads.svg`
//!   (p99, RSS and CPU per delivery at each client count, natter against
//!   the thread-per-client server) and `threads-stall.svg` (the others'
//!   deliveries in each second while one reader is stalled).
//!
//! A missing file, or a file without the runs a picture needs, skips the
//! picture and says so on stderr. A file that is there but is not such a
//! file (not JSON, another schema, a field missing or of the wrong type)
//! is an error: nothing more is drawn and the exit status is 1.
//!
//! The SVG is written by hand: 720 x 420, text in the reader's
//! `sans-serif`, no script, no external reference.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The `schema` every data file carries.
pub const SCHEMA: &str = "natter-bench-data/1";

const W: f64 = 720.0;
const H: f64 = 420.0;
/// Where the panels end and their x labels begin.
const PLOT_BOTTOM: f64 = 338.0;

/// Light-mode colours (Okabe and Ito's, which stay apart for colour-blind
/// readers), and a dash pattern each so that grey print tells them apart.
const BLUE: &str = "#0072B2";
const GREEN: &str = "#009E73";
const VERMILION: &str = "#D55E00";
const PURPLE: &str = "#8E44AD";
const GREY: &str = "#666666";
const GRID: &str = "#E4E4E4";
const INK: &str = "#222222";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out] = &args[..] else {
        eprintln!("usage: plots DATA_DIR OUT_DIR");
        std::process::exit(2);
    };
    match run(Path::new(data), Path::new(out)) {
        Ok(written) => {
            for p in &written {
                println!("{}", p.display());
            }
            if written.is_empty() {
                eprintln!("plots: no data in {data}: nothing drawn");
            }
        }
        Err(e) => {
            eprintln!("plots: {e}");
            std::process::exit(1);
        }
    }
}

/// Draws every picture the files in `data` allow into `out` (created if
/// need be) and returns the files written. Skipped pictures are named on
/// stderr; malformed input is an `Err`.
pub fn run(data: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let fanout = load(data, "fanout.json")?
        .map(|v| LadderFile::parse(&v, "fanout.json"))
        .transpose()?;
    let vs_ws = load(data, "compare-ws.json")?
        .map(|v| LadderFile::parse(&v, "compare-ws.json"))
        .transpose()?;
    let threads = load(data, "compare-threads.json")?
        .map(|v| ThreadsFile::parse(&v, "compare-threads.json"))
        .transpose()?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut pictures: Vec<(String, String)> = Vec::new();
    let skip = |what: &str, why: &str| eprintln!("plots: skipped {what}: {why}");

    match &fanout {
        Some(f) => {
            for (scenario, name) in [("1", "cdf-s1.svg"), ("3", "cdf-s3.svg")] {
                let runs: Vec<&Run> = f.runs.iter().filter(|r| r.scenario == scenario).collect();
                if runs.iter().any(|r| !r.latency.cdf.is_empty()) {
                    let one_proto = runs.iter().all(|r| r.proto == runs[0].proto);
                    let title = format!("Fan-out scenario {scenario}: latency");
                    let title = (title, describe(runs[0], one_proto));
                    let series = runs
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let (colour, dash) = style(i);
                            (
                                format!("natter, {}", proto_label(&r.proto)),
                                colour,
                                dash,
                                *r,
                            )
                        })
                        .collect::<Vec<_>>();
                    pictures.push((name.into(), cdf_svg(&title, &series, &f.meta)));
                } else {
                    skip(name, &format!("no scenario {scenario} in fanout.json"));
                }
            }
        }
        None => skip("cdf-s1.svg, cdf-s3.svg", "no fanout.json"),
    }

    match &vs_ws {
        Some(f) => {
            let mut scenarios: Vec<&str> = f.runs.iter().map(|r| r.scenario.as_str()).collect();
            scenarios.dedup();
            let mut any = false;
            for scenario in scenarios {
                let natter = f
                    .runs
                    .iter()
                    .find(|r| r.scenario == scenario && r.server == "natter");
                let ws = f
                    .runs
                    .iter()
                    .find(|r| r.scenario == scenario && r.server == "ws");
                let name = format!("cdf-vs-ws-s{scenario}.svg");
                let (Some(n), Some(w)) = (natter, ws) else {
                    skip(&name, "the scenario did not run on both servers");
                    continue;
                };
                if n.latency.cdf.is_empty() || w.latency.cdf.is_empty() {
                    skip(&name, "a server delivered nothing");
                    continue;
                }
                let title = (
                    format!("natter against Node's ws, scenario {scenario}: latency"),
                    describe(n, true),
                );
                let series = vec![
                    ("natter".to_string(), BLUE, "", n),
                    ("ws (Node)".to_string(), VERMILION, "6 3", w),
                ];
                pictures.push((name, cdf_svg(&title, &series, &f.meta)));
                any = true;
            }
            if !any {
                skip(
                    "cdf-vs-ws-s*.svg",
                    "no scenario in compare-ws.json ran on both",
                );
            }
        }
        None => skip("cdf-vs-ws-s*.svg", "no compare-ws.json"),
    }

    let mut ladders: Vec<(String, &str, &str, Vec<&Step>)> = Vec::new();
    let mut sources: Vec<&Meta> = Vec::new();
    let mut limit = None;
    if let Some(f) = &fanout {
        let steps: Vec<&Step> = f.steps.iter().filter(|s| s.scenario == "2").collect();
        if !steps.is_empty() {
            let label = format!(
                "natter, {} clients (fanout 2)",
                proto_label(&steps[0].proto)
            );
            ladders.push((label, BLUE, "", steps));
            sources.push(&f.meta);
            limit = f.p99_limit_ms;
        }
    }
    if let Some(f) = &vs_ws {
        for (server, label, colour, dash) in [
            ("natter", "natter, WebSocket (bench_compare)", GREEN, "2 2"),
            ("ws", "ws (Node), WebSocket", VERMILION, "6 3"),
        ] {
            let steps: Vec<&Step> = f.steps.iter().filter(|s| s.server == server).collect();
            if !steps.is_empty() {
                ladders.push((label.into(), colour, dash, steps));
            }
        }
        if !f.steps.is_empty() {
            sources.push(&f.meta);
            limit = limit.or(f.p99_limit_ms);
        }
    }
    if ladders.is_empty() {
        skip(
            "s2-steps.svg",
            "no ladder steps in fanout.json or compare-ws.json",
        );
    } else {
        pictures.push(("s2-steps.svg".into(), steps_svg(&ladders, limit, &sources)));
    }

    match &threads {
        Some(t) if !t.sizes.is_empty() => {
            pictures.push(("threads.svg".into(), threads_svg(t)));
        }
        Some(_) => skip("threads.svg", "no sizes in compare-threads.json"),
        None => skip("threads.svg", "no compare-threads.json"),
    }
    match &threads {
        Some(t) => match &t.stall {
            Some(s) if !s.servers.is_empty() => {
                pictures.push(("threads-stall.svg".into(), stall_svg(t, s)));
            }
            _ => skip("threads-stall.svg", "no stall run in compare-threads.json"),
        },
        None => skip("threads-stall.svg", "no compare-threads.json"),
    }

    let mut written = Vec::new();
    for (name, svg) in pictures {
        let path = out.join(&name);
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

// ---------------------------------------------------------------------------
// Reading the data
// ---------------------------------------------------------------------------

/// The file `dir/name` as JSON; `None` if there is no such file.
fn load(dir: &Path, name: &str) -> Result<Option<Value>, String> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    match v.get("schema").and_then(Value::as_str) {
        Some(SCHEMA) => Ok(Some(v)),
        other => Err(format!(
            "{}: schema {other:?}, expected {SCHEMA:?}",
            path.display()
        )),
    }
}

fn field<'a>(v: &'a Value, key: &str, ctx: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("{ctx}: no field {key:?}"))
}

fn num(v: &Value, key: &str, ctx: &str) -> Result<f64, String> {
    field(v, key, ctx)?
        .as_f64()
        .ok_or_else(|| format!("{ctx}: {key:?} is not a number"))
}

fn text(v: &Value, key: &str, ctx: &str) -> Result<String, String> {
    field(v, key, ctx)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{ctx}: {key:?} is not a string"))
}

fn flag(v: &Value, key: &str, ctx: &str) -> Result<bool, String> {
    field(v, key, ctx)?
        .as_bool()
        .ok_or_else(|| format!("{ctx}: {key:?} is not true or false"))
}

fn list<'a>(v: &'a Value, key: &str, ctx: &str) -> Result<&'a Vec<Value>, String> {
    field(v, key, ctx)?
        .as_array()
        .ok_or_else(|| format!("{ctx}: {key:?} is not a list"))
}

/// Where a data file came from, for the small print.
#[derive(Debug)]
struct Meta {
    file: String,
    command: String,
    commit: String,
    date: String,
    load: String,
}

impl Meta {
    fn parse(v: &Value, file: &str) -> Result<Meta, String> {
        let first = |s: String| s.split_whitespace().next().unwrap_or("?").to_string();
        Ok(Meta {
            file: file.into(),
            command: short_command(&text(v, "command", file)?),
            commit: text(v, "commit", file)?,
            date: text(v, "date", file)?,
            load: format!(
                "{}-{}",
                first(text(v, "loadavg_start", file)?),
                first(text(v, "loadavg_end", file)?)
            ),
        })
    }

    fn line(&self) -> String {
        format!(
            "data: {} from `{}` at {}, {}, load average {}",
            self.file, self.command, self.commit, self.date, self.load
        )
    }
}

/// `/path/target/release/deps/fanout-0123456789abcdef --bench 1 2` as
/// `fanout --bench 1 2`.
fn short_command(command: &str) -> String {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or("");
    let mut name = program.rsplit('/').next().unwrap_or(program).to_string();
    if let Some((stem, hash)) = name.rsplit_once('-') {
        if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            name = stem.to_string();
        }
    }
    std::iter::once(name.as_str())
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A latency distribution: `[q, ms]` points, q rising, the last the max.
#[derive(Debug)]
struct Latency {
    cdf: Vec<(f64, f64)>,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn parse(v: &Value, ctx: &str) -> Result<Latency, String> {
        let mut cdf = Vec::new();
        for (i, p) in list(v, "cdf", ctx)?.iter().enumerate() {
            let pair = p.as_array().filter(|a| a.len() == 2);
            let q = pair.and_then(|a| a[0].as_f64());
            let ms = pair.and_then(|a| a[1].as_f64());
            match (q, ms) {
                (Some(q), Some(ms)) if (0.0..=1.0).contains(&q) && ms >= 0.0 => {
                    if cdf.last().is_some_and(|&(q0, _)| q <= q0) {
                        return Err(format!("{ctx}: cdf point {i}: q does not rise"));
                    }
                    cdf.push((q, ms));
                }
                _ => return Err(format!("{ctx}: cdf point {i} is not [q in 0..1, ms >= 0]")),
            }
        }
        Ok(Latency {
            cdf,
            p50: num(v, "p50", ctx)?,
            p99: num(v, "p99", ctx)?,
            max: num(v, "max", ctx)?,
        })
    }
}

/// One entry of `runs`.
#[derive(Debug)]
struct Run {
    scenario: String,
    server: String,
    proto: String,
    clients: f64,
    rooms: f64,
    senders: f64,
    rate: f64,
    complete: bool,
    latency: Latency,
}

/// One entry of `steps`.
#[derive(Debug)]
struct Step {
    scenario: String,
    server: String,
    proto: String,
    clients: f64,
    rate: f64,
    deliveries_per_sec: f64,
    p99_ms: f64,
    held: bool,
}

/// `fanout.json` or `compare-ws.json`.
#[derive(Debug)]
struct LadderFile {
    meta: Meta,
    p99_limit_ms: Option<f64>,
    runs: Vec<Run>,
    steps: Vec<Step>,
}

impl LadderFile {
    fn parse(v: &Value, file: &str) -> Result<LadderFile, String> {
        let mut runs = Vec::new();
        for (i, r) in list(v, "runs", file)?.iter().enumerate() {
            let ctx = format!("{file}: runs[{i}]");
            runs.push(Run {
                scenario: text(r, "scenario", &ctx)?,
                server: text(r, "server", &ctx)?,
                proto: text(r, "proto", &ctx)?,
                clients: num(r, "clients", &ctx)?,
                rooms: num(r, "rooms", &ctx)?,
                senders: num(r, "senders", &ctx)?,
                rate: num(r, "rate", &ctx)?,
                complete: flag(r, "complete", &ctx)?,
                latency: Latency::parse(field(r, "latency_ms", &ctx)?, &ctx)?,
            });
        }
        let mut steps = Vec::new();
        for (i, s) in list(v, "steps", file)?.iter().enumerate() {
            let ctx = format!("{file}: steps[{i}]");
            steps.push(Step {
                scenario: text(s, "scenario", &ctx)?,
                server: text(s, "server", &ctx)?,
                proto: text(s, "proto", &ctx)?,
                clients: num(s, "clients", &ctx)?,
                rate: num(s, "rate", &ctx)?,
                deliveries_per_sec: num(s, "deliveries_per_sec", &ctx)?,
                p99_ms: num(s, "p99_ms", &ctx)?,
                held: flag(s, "held", &ctx)?,
            });
        }
        Ok(LadderFile {
            meta: Meta::parse(v, file)?,
            p99_limit_ms: v.get("p99_limit_ms").and_then(Value::as_f64),
            runs,
            steps,
        })
    }
}

/// One entry of `compare-threads.json`'s `sizes`.
#[derive(Debug)]
struct Size {
    clients: f64,
    server: String,
    rss_kib: f64,
    threads: f64,
    cpu_us_per_delivery: f64,
    p99_ms: f64,
}

/// One server's stalled-reader run.
#[derive(Debug)]
struct Stalled {
    server: String,
    delivered: f64,
    expected: f64,
    dropped_after_s: Option<f64>,
    per_second: Vec<f64>,
}

#[derive(Debug)]
struct Stall {
    clients: f64,
    rate: f64,
    pad: f64,
    servers: Vec<Stalled>,
}

#[derive(Debug)]
struct ThreadsFile {
    meta: Meta,
    secs: f64,
    deliveries_per_sec: f64,
    sizes: Vec<Size>,
    stall: Option<Stall>,
}

impl ThreadsFile {
    fn parse(v: &Value, file: &str) -> Result<ThreadsFile, String> {
        let mut sizes = Vec::new();
        for (i, s) in list(v, "sizes", file)?.iter().enumerate() {
            let ctx = format!("{file}: sizes[{i}]");
            sizes.push(Size {
                clients: num(s, "clients", &ctx)?,
                server: text(s, "server", &ctx)?,
                rss_kib: num(s, "rss_kib", &ctx)?,
                threads: num(s, "threads", &ctx)?,
                cpu_us_per_delivery: num(s, "cpu_us_per_delivery", &ctx)?,
                p99_ms: num(s, "p99_ms", &ctx)?,
            });
        }
        let stall = match field(v, "stall", file)? {
            Value::Null => None,
            st => {
                let ctx = format!("{file}: stall");
                let mut servers = Vec::new();
                for (i, s) in list(st, "servers", &ctx)?.iter().enumerate() {
                    let ctx = format!("{ctx}.servers[{i}]");
                    let per_second = list(s, "per_second", &ctx)?
                        .iter()
                        .map(|n| {
                            n.as_f64()
                                .ok_or(format!("{ctx}: per_second holds a non-number"))
                        })
                        .collect::<Result<Vec<f64>, String>>()?;
                    let dropped = field(s, "dropped_after_s", &ctx)?;
                    servers.push(Stalled {
                        server: text(s, "server", &ctx)?,
                        delivered: num(s, "delivered", &ctx)?,
                        expected: num(s, "expected", &ctx)?,
                        dropped_after_s: match dropped {
                            Value::Null => None,
                            d => Some(d.as_f64().ok_or(format!(
                                "{ctx}: dropped_after_s is neither null nor a number"
                            ))?),
                        },
                        per_second,
                    });
                }
                Some(Stall {
                    clients: num(st, "clients", &ctx)?,
                    rate: num(st, "rate", &ctx)?,
                    pad: num(st, "pad", &ctx)?,
                    servers,
                })
            }
        };
        Ok(ThreadsFile {
            meta: Meta::parse(v, file)?,
            secs: num(v, "secs", file)?,
            deliveries_per_sec: num(v, "deliveries_per_sec", file)?,
            sizes,
            stall,
        })
    }
}

// ---------------------------------------------------------------------------
// Words and numbers
// ---------------------------------------------------------------------------

fn proto_label(proto: &str) -> &str {
    match proto {
        "ws" => "WebSocket",
        other => other,
    }
}

/// The load of a run, in a title's words.
fn describe(r: &Run, proto: bool) -> String {
    let who = if proto {
        format!("{} {} clients", fmt_count(r.clients), proto_label(&r.proto))
    } else {
        format!("{} clients", fmt_count(r.clients))
    };
    if r.rooms <= 1.0 {
        format!(
            "{who} in one room, {} senders x {} msg/s",
            fmt_count(r.senders),
            fmt_num(r.rate)
        )
    } else {
        let each = if r.senders >= r.clients {
            format!("each sending {} msg/s", fmt_num(r.rate))
        } else if r.senders == r.rooms {
            format!("one sender a room at {} msg/s", fmt_num(r.rate))
        } else {
            format!(
                "{} senders x {} msg/s",
                fmt_count(r.senders),
                fmt_num(r.rate)
            )
        };
        format!(
            "{who} in {} rooms of {}, {each}",
            fmt_count(r.rooms),
            fmt_num((r.clients / r.rooms).round())
        )
    }
}

/// The style of the `i`th series of one server.
fn style(i: usize) -> (&'static str, &'static str) {
    [
        (BLUE, ""),
        (GREEN, "6 3"),
        (PURPLE, "2 2"),
        (VERMILION, "8 2 2 2"),
    ][i % 4]
}

/// 1234567 as `1,234,567`.
fn fmt_count(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A number with at most 3 significant digits and no trailing zeros.
fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `fmt_num` with k and M for thousands and millions.
fn fmt_si(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{}M", fmt_num(v / 1e6))
    } else if v.abs() >= 1e3 {
        format!("{}k", fmt_num(v / 1e3))
    } else {
        fmt_num(v)
    }
}

/// `line` cut at spaces into lines of at most `width` characters (a
/// longer word stays whole), the later ones indented.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in line.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut cur));
            cur.push_str("    ");
        }
        if !cur.is_empty() && !cur.ends_with("    ") {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    out.push(cur);
    out
}

/// Text for XML: `&`, `<`, `>` and `"` escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------
// Axes
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
    /// -log10(1 - q): 90%, 99%, 99.9%... evenly spaced; q = 1 (the max)
    /// half a step above the last finite point.
    Tail,
}

#[derive(Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    scale: Scale,
    label: String,
    /// Tick labels with k and M.
    si: bool,
}

/// Where q = 1 goes on a tail axis.
const TAIL_MAX: f64 = 4.5;

impl Axis {
    /// A linear axis from 0 (or `lo`) to a round number at or over `max`.
    fn linear(lo: f64, max: f64, label: &str) -> Axis {
        let step = nice_step((max - lo).max(1e-9) / 5.0);
        Axis {
            lo,
            hi: (max / step).ceil().max(1.0) * step,
            scale: Scale::Linear,
            label: label.into(),
            si: true,
        }
    }

    /// A log axis from a 1-2-5 number at or under `min` to one at or over `max`.
    fn log(min: f64, max: f64, label: &str) -> Axis {
        let min = min.max(1e-6);
        let max = max.max(min * 1.0001);
        let lo = round125(min, false);
        let mut hi = round125(max, true);
        if hi <= lo {
            hi = round125(lo * 1.01, true);
        }
        Axis {
            lo,
            hi,
            scale: Scale::Log,
            label: label.into(),
            si: false,
        }
    }

    fn tail(label: &str) -> Axis {
        Axis {
            lo: 1.0,
            hi: TAIL_MAX,
            scale: Scale::Tail,
            label: label.into(),
            si: false,
        }
    }

    /// Where `v` lies, 0 at `lo` to 1 at `hi` (clamped a little past both).
    fn frac(&self, v: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => {
                let v = v.max(self.lo * 1e-3);
                (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
            }
            Scale::Tail => (tail_pos(v) - self.lo) / (self.hi - self.lo),
        };
        f.clamp(-0.02, 1.02)
    }

    /// Ticks: (value, label or "" for an unlabelled minor one).
    fn ticks(&self) -> Vec<(f64, String)> {
        let label = |v: f64| if self.si { fmt_si(v) } else { fmt_num(v) };
        match self.scale {
            Scale::Linear => {
                let step = nice_step((self.hi - self.lo) / 5.0);
                let mut v = (self.lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= self.hi + step * 1e-6 {
                    out.push((v, label(v)));
                    v += step;
                }
                out
            }
            Scale::Log => {
                let decades = (self.hi / self.lo).log10();
                let k0 = self.lo.log10().floor() as i32;
                let k1 = self.hi.log10().ceil() as i32;
                let mut out = Vec::new();
                for k in k0..=k1 {
                    for m in 1..=9 {
                        let v = f64::from(m) * 10f64.powi(k);
                        if v < self.lo * (1.0 - 1e-9) || v > self.hi * (1.0 + 1e-9) {
                            continue;
                        }
                        let named = m == 1 || (decades <= 2.5 && (m == 2 || m == 5));
                        out.push((v, if named { label(v) } else { String::new() }));
                    }
                }
                out
            }
            Scale::Tail => vec![
                (0.9, "90%".into()),
                (0.99, "99%".into()),
                (0.999, "99.9%".into()),
                (0.9999, "99.99%".into()),
                (1.0, "max".into()),
            ],
        }
    }
}

/// A tail axis's coordinate of quantile `q`.
fn tail_pos(q: f64) -> f64 {
    if q >= 1.0 {
        TAIL_MAX
    } else {
        (-(1.0 - q).log10()).min(TAIL_MAX - 0.25)
    }
}

/// 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// The 1-2-5 number at or under `v` (`up`: at or over).
fn round125(v: f64, up: bool) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    if up {
        steps
            .iter()
            .map(|m| m * p)
            .find(|&c| c >= v * (1.0 - 1e-9))
            .unwrap_or(10.0 * p)
    } else {
        steps
            .iter()
            .rev()
            .map(|m| m * p)
            .find(|&c| c <= v * (1.0 + 1e-9))
            .unwrap_or(p)
    }
}

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

/// An SVG document being written.
struct Svg {
    body: String,
    /// Where the legend begins: under the title and its subtitle.
    top: f64,
}

impl Svg {
    /// A picture with its title, a line under it (if not empty) and the
    /// small print at the bottom.
    fn new(title: &str, subtitle: &str, footer: &[String]) -> Svg {
        let mut s = Svg {
            body: String::new(),
            top: if subtitle.is_empty() { 46.0 } else { 62.0 },
        };
        let whole = if subtitle.is_empty() {
            title.to_string()
        } else {
            format!("{title}: {subtitle}")
        };
        let _ = write!(
            s.body,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
             viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" fill=\"{INK}\">\n\
             <title>{}</title>\n\
             <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\n",
            esc(&whole)
        );
        s.text(16.0, 24.0, title, 14.0, "start", "bold");
        if !subtitle.is_empty() {
            s.text(16.0, 41.0, subtitle, 12.0, "start", "normal");
        }
        let footer: Vec<String> = footer.iter().flat_map(|l| wrap(l, 150)).collect();
        let mut y = H - 6.0 - 11.0 * (footer.len() as f64 - 1.0);
        for line in &footer {
            s.text_fill(12.0, y, line, 9.0, "start", "normal", GREY);
            y += 11.0;
        }
        s
    }

    fn text(&mut self, x: f64, y: f64, t: &str, size: f64, anchor: &str, weight: &str) {
        self.text_fill(x, y, t, size, anchor, weight, INK);
    }

    #[allow(clippy::too_many_arguments)]
    fn text_fill(
        &mut self,
        x: f64,
        y: f64,
        t: &str,
        size: f64,
        anchor: &str,
        weight: &str,
        fill: &str,
    ) {
        let _ = writeln!(
            self.body,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" \
             font-weight=\"{weight}\" fill=\"{fill}\">{}</text>",
            esc(t)
        );
    }

    fn line(
        &mut self,
        (x1, y1): (f64, f64),
        (x2, y2): (f64, f64),
        stroke: &str,
        width: f64,
        dash: &str,
    ) {
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            self.body,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" \
             stroke-width=\"{width}\"{dash}/>"
        );
    }

    fn polyline(&mut self, points: &[(f64, f64)], stroke: &str, dash: &str) {
        if points.is_empty() {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            self.body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"2\" \
             stroke-linejoin=\"round\"{dash}/>",
            pts.join(" ")
        );
    }

    /// A marker: filled, or hollow (white inside).
    fn dot(&mut self, (x, y): (f64, f64), colour: &str, filled: bool) {
        let fill = if filled { colour } else { "#ffffff" };
        let _ = writeln!(
            self.body,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{fill}\" stroke=\"{colour}\" \
             stroke-width=\"1.5\"/>"
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>",
            w.max(0.0),
            h.max(0.0)
        );
    }

    /// A legend across the picture under the title: each entry a short line
    /// in its style and its text, wrapped to the width. Returns where the
    /// panels may begin.
    fn legend(&mut self, entries: &[(String, &str, &str)]) -> f64 {
        let (mut x, mut y) = (16.0, self.top);
        for (label, colour, dash) in entries {
            let width = 30.0 + 5.6 * label.chars().count() as f64 + 18.0;
            if x + width > W - 12.0 && x > 16.0 {
                x = 16.0;
                y += 16.0;
            }
            self.line((x, y - 4.0), (x + 24.0, y - 4.0), colour, 2.5, dash);
            self.text(x + 30.0, y, label, 11.0, "start", "normal");
            x += width;
        }
        y + 14.0
    }

    /// A line of small print under the legend; returns where the panels
    /// may begin.
    fn note(&mut self, top: f64, t: &str) -> f64 {
        self.text_fill(16.0, top + 2.0, t, 9.5, "start", "normal", GREY);
        top + 12.0
    }

    fn finish(mut self) -> String {
        self.body.push_str("</svg>\n");
        self.body
    }
}

/// A chart's frame on the picture.
struct Panel {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    xa: Axis,
    ya: Axis,
}

impl Panel {
    fn at(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.x + self.xa.frac(x) * self.w,
            self.y + self.h - self.ya.frac(y) * self.h,
        )
    }

    /// Grid, ticks, tick labels, axis labels and a frame; `heading` above.
    /// The panel's border, its axes' names and its heading (if any).
    fn frame(&self, svg: &mut Svg, heading: &str) {
        let (x0, y0, x1, y1) = (self.x, self.y, self.x + self.w, self.y + self.h);
        let _ = writeln!(
            svg.body,
            "<rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" \
             stroke=\"{INK}\" stroke-width=\"1\"/>",
            self.w, self.h
        );
        svg.text(
            (x0 + x1) / 2.0,
            y1 + 31.0,
            &self.xa.label,
            11.0,
            "middle",
            "normal",
        );
        let (lx, ly) = (x0 - 44.0, (y0 + y1) / 2.0);
        let _ = writeln!(
            svg.body,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"middle\" \
             transform=\"rotate(-90 {lx:.1} {ly:.1})\">{}</text>",
            esc(&self.ya.label)
        );
        if !heading.is_empty() {
            svg.text(x0, y0 - 6.0, heading, 11.0, "start", "bold");
        }
    }

    fn draw_axes(&self, svg: &mut Svg, heading: &str) {
        let (x0, y0, x1, y1) = (self.x, self.y, self.x + self.w, self.y + self.h);
        for (v, label) in self.xa.ticks() {
            let x = x0 + self.xa.frac(v) * self.w;
            if !label.is_empty() {
                svg.line((x, y0), (x, y1), GRID, 1.0, "");
                svg.text(x, y1 + 14.0, &label, 10.0, "middle", "normal");
            }
            svg.line(
                (x, y1),
                (x, y1 + if label.is_empty() { 3.0 } else { 5.0 }),
                INK,
                1.0,
                "",
            );
        }
        for (v, label) in self.ya.ticks() {
            let y = y1 - self.ya.frac(v) * self.h;
            if !label.is_empty() {
                svg.line((x0, y), (x1, y), GRID, 1.0, "");
                svg.text(x0 - 7.0, y + 3.5, &label, 10.0, "end", "normal");
            }
            svg.line(
                (x0 - if label.is_empty() { 3.0 } else { 5.0 }, y),
                (x0, y),
                INK,
                1.0,
                "",
            );
        }
        self.frame(svg, heading);
    }

    /// A series, clipped to the frame.
    fn series(&self, svg: &mut Svg, points: &[(f64, f64)], colour: &str, dash: &str) {
        let pts: Vec<(f64, f64)> = points.iter().map(|&(x, y)| self.at(x, y)).collect();
        svg.polyline(&pts, colour, dash);
    }
}

/// Panels side by side between `top` and `PLOT_BOTTOM`, each with room
/// on its left for tick labels and its y label.
fn panels(top: f64, axes: Vec<(Axis, Axis)>) -> Vec<Panel> {
    let n = axes.len() as f64;
    let (left, gap, right) = (62.0, 66.0, 16.0);
    let w = (W - left - right - gap * (n - 1.0)) / n;
    axes.into_iter()
        .enumerate()
        .map(|(i, (xa, ya))| Panel {
            x: left + i as f64 * (w + gap),
            y: top + 16.0,
            w,
            h: PLOT_BOTTOM - top - 16.0,
            xa,
            ya,
        })
        .collect()
}

fn remake_line() -> String {
    "picture: cargo run --release --example plots -- DATA_DIR OUT_DIR (examples/plots.rs)".into()
}

/// Latency CDFs: all deliveries on the left, the tail on the right.
fn cdf_svg(
    (title, subtitle): &(String, String),
    series: &[(String, &str, &str, &Run)],
    meta: &Meta,
) -> String {
    let mut svg = Svg::new(title, subtitle, &[meta.line(), remake_line()]);
    let legend: Vec<(String, &str, &str)> = series
        .iter()
        .map(|(name, colour, dash, r)| {
            let l = &r.latency;
            (
                format!(
                    "{name}: p50 {} ms, p99 {} ms, max {} ms{}",
                    fmt_num(l.p50),
                    fmt_num(l.p99),
                    fmt_num(l.max),
                    if r.complete { "" } else { " (INCOMPLETE)" }
                ),
                *colour,
                *dash,
            )
        })
        .collect();
    let top = svg.legend(&legend);
    let points = |r: &Run, from: f64| -> Vec<(f64, f64)> {
        r.latency
            .cdf
            .iter()
            .filter(|&&(q, _)| q >= from)
            .map(|&(q, ms)| (ms, q))
            .collect()
    };
    let range = |from: f64| {
        let all: Vec<f64> = series
            .iter()
            .flat_map(|s| points(s.3, from).into_iter().map(|p| p.0))
            .filter(|&v| v > 0.0)
            .collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(0.0, f64::max);
        if lo.is_finite() {
            (lo, hi)
        } else {
            (0.1, 1.0)
        }
    };
    let (lo, hi) = range(0.0);
    let (tlo, thi) = range(0.9);
    let mut cdf_y = Axis::linear(0.0, 1.0, "fraction of deliveries");
    cdf_y.si = false;
    let ps = panels(
        top,
        vec![
            (Axis::log(lo, hi, "latency (ms, log scale)"), cdf_y),
            (
                Axis::log(tlo, thi, "latency (ms, log scale)"),
                Axis::tail("quantile"),
            ),
        ],
    );
    ps[0].draw_axes(&mut svg, "every delivery");
    ps[1].draw_axes(&mut svg, "the tail: p90 to the max");
    for (_, colour, dash, r) in series {
        ps[0].series(&mut svg, &points(r, 0.0), colour, dash);
        ps[1].series(&mut svg, &points(r, 0.9), colour, dash);
        let p99 = ps[1].at(r.latency.p99, 0.99);
        svg.dot(p99, colour, true);
    }
    svg.finish()
}

/// The rate ladders: p99 and deliveries/s against the offered rate.
fn steps_svg(
    ladders: &[(String, &str, &str, Vec<&Step>)],
    limit: Option<f64>,
    sources: &[&Meta],
) -> String {
    let clients = ladders[0].3[0].clients;
    let title = format!(
        "Rate steps (fan-out scenario 2): {} clients in one room, rising total rates",
        fmt_count(clients)
    );
    let subtitle = match limit {
        Some(l) => format!(
            "a rate holds if every message is delivered once, in order, with p99 under {} ms",
            fmt_num(l)
        ),
        None => String::new(),
    };
    let mut footer: Vec<String> = sources.iter().map(|m| m.line()).collect();
    footer.push(remake_line());
    let mut svg = Svg::new(&title, &subtitle, &footer);
    let mut legend: Vec<(String, &str, &str)> = ladders
        .iter()
        .map(|(name, colour, dash, _)| (name.clone(), *colour, *dash))
        .collect();
    legend.push(("every message to every client".into(), GREY, "1 3"));
    let top = svg.legend(&legend);
    let top = svg.note(
        top,
        "each dot a step, all on the same connections; filled: it held; hollow: it did not",
    );
    let all = ladders.iter().flat_map(|l| l.3.iter());
    let rates: Vec<f64> = all.clone().map(|s| s.rate).filter(|&v| v > 0.0).collect();
    let p99s: Vec<f64> = all.clone().map(|s| s.p99_ms).filter(|&v| v > 0.0).collect();
    let dps: Vec<f64> = all
        .clone()
        .map(|s| s.deliveries_per_sec)
        .filter(|&v| v > 0.0)
        .collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (rlo, rhi) = (min(&rates), max(&rates));
    let mut p99_hi = max(&p99s);
    if let Some(l) = limit {
        p99_hi = p99_hi.max(l * 1.2);
    }
    let mut x = Axis::log(rlo, rhi, "offered rate (messages/s, all senders)");
    x.si = true;
    let mut yd = Axis::log(
        min(&dps).min(rlo * clients),
        max(&dps).max(rhi * clients),
        "deliveries/s",
    );
    yd.si = true;
    let ps = panels(
        top,
        vec![
            (x.clone(), Axis::log(min(&p99s), p99_hi, "p99 latency (ms)")),
            (x, yd),
        ],
    );
    ps[0].draw_axes(&mut svg, "p99 latency");
    ps[1].draw_axes(&mut svg, "deliveries per second");
    if let Some(l) = limit {
        let (a, b) = (ps[0].at(ps[0].xa.lo, l), ps[0].at(ps[0].xa.hi, l));
        svg.line(a, b, GREY, 1.0, "4 3");
        // The label in the middle: the ladders cross the line at its ends.
        let a = ((a.0 + b.0) / 2.0 - 30.0, a.1);
        svg.text_fill(
            a.0 + 4.0,
            a.1 - 4.0,
            &format!("limit {} ms", fmt_num(l)),
            9.0,
            "start",
            "normal",
            GREY,
        );
    }
    ps[1].series(
        &mut svg,
        &[(rlo, rlo * clients), (rhi, rhi * clients)],
        GREY,
        "1 3",
    );
    for (_, colour, dash, steps) in ladders {
        let mut steps = steps.clone();
        steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let p99: Vec<(f64, f64)> = steps.iter().map(|s| (s.rate, s.p99_ms)).collect();
        let dps: Vec<(f64, f64)> = steps
            .iter()
            .map(|s| (s.rate, s.deliveries_per_sec))
            .collect();
        ps[0].series(&mut svg, &p99, colour, dash);
        ps[1].series(&mut svg, &dps, colour, dash);
        for s in &steps {
            svg.dot(ps[0].at(s.rate, s.p99_ms), colour, s.held);
            svg.dot(ps[1].at(s.rate, s.deliveries_per_sec), colour, s.held);
        }
    }
    svg.finish()
}

/// natter against the threaded server: grouped bars per client count.
fn threads_svg(t: &ThreadsFile) -> String {
    let mut sizes: Vec<f64> = t.sizes.iter().map(|s| s.clients).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut servers: Vec<&str> = t.sizes.iter().map(|s| s.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    let colour = |server: &str| if server == "natter" { BLUE } else { VERMILION };
    let subtitle = format!(
        "N line clients in one room, {} deliveries/s offered at each size",
        fmt_count(t.deliveries_per_sec)
    );
    let mut svg = Svg::new(
        "natter against a thread per client",
        &subtitle,
        &[t.meta.line(), remake_line()],
    );
    let legend: Vec<(String, &str, &str)> = servers
        .iter()
        .map(|s| {
            let name = if *s == "threaded" {
                "threaded (examples/threaded.rs, a thread per client)".to_string()
            } else {
                format!("{s} (one event loop)")
            };
            (name, colour(s), "")
        })
        .collect();
    let mut top = svg.legend(&legend);
    // Threads, in words under the legend: the loop's few against N + 1.
    let threads: Vec<String> = sizes
        .iter()
        .filter_map(|n| {
            let of = |srv: &str| {
                t.sizes
                    .iter()
                    .find(|s| s.clients == *n && s.server == srv)
                    .map(|s| fmt_count(s.threads))
            };
            Some(format!(
                "{} clients, {} against {}",
                fmt_count(*n),
                of("natter")?,
                of("threaded")?
            ))
        })
        .collect();
    if !threads.is_empty() {
        top = svg.note(
            top,
            &format!(
                "threads (natter's loop and helpers): {}",
                threads.join("; ")
            ),
        );
    }
    type Get = fn(&Size) -> f64;
    let metrics: [(&str, &str, Get); 3] = [
        ("p99 latency", "ms", |s| s.p99_ms),
        ("resident memory", "MiB", |s| s.rss_kib / 1024.0),
        ("CPU per delivery", "µs", |s| s.cpu_us_per_delivery),
    ];
    let axes = metrics
        .iter()
        .map(|(_, unit, get)| {
            let hi = t.sizes.iter().map(get).fold(0.0, f64::max).max(1e-3);
            let lo = t.sizes.iter().map(get).fold(f64::INFINITY, f64::min);
            let mut x = Axis::linear(0.0, 1.0, "clients");
            x.hi = sizes.len() as f64;
            // Values a hundred times apart: a log scale, or the small
            // ones vanish.
            let y = if lo > 0.0 && hi / lo > 30.0 {
                Axis::log(lo / 1.5, hi * 1.6, &format!("{unit} (log scale)"))
            } else {
                let mut y = Axis::linear(0.0, hi * 1.12, unit);
                y.si = false;
                y
            };
            (x, y)
        })
        .collect();
    let ps = panels(top, axes);
    for (p, (heading, _, get)) in ps.iter().zip(&metrics) {
        draw_category_axes(&mut svg, p, heading, &sizes);
        let group = p.w / sizes.len() as f64;
        let bar = (group * 0.8 / servers.len() as f64).min(28.0);
        for (i, n) in sizes.iter().enumerate() {
            for (j, server) in servers.iter().enumerate() {
                let Some(row) = t
                    .sizes
                    .iter()
                    .find(|s| s.clients == *n && s.server == *server)
                else {
                    continue;
                };
                let v = get(row);
                let x =
                    p.x + group * (i as f64 + 0.5) + bar * (j as f64 - servers.len() as f64 / 2.0);
                let (_, y) = p.at(0.0, v.max(p.ya.lo));
                svg.rect(x, y, bar - 2.0, p.y + p.h - y, colour(server));
                svg.text(
                    x + (bar - 2.0) / 2.0,
                    y - 3.0,
                    &fmt_num(v),
                    8.5,
                    "middle",
                    "normal",
                );
            }
        }
    }
    svg.finish()
}

/// The frame, y ticks and category names for a bar chart.
fn draw_category_axes(svg: &mut Svg, p: &Panel, heading: &str, sizes: &[f64]) {
    let (x0, x1, y1) = (p.x, p.x + p.w, p.y + p.h);
    for (v, label) in p.ya.ticks() {
        let y = y1 - p.ya.frac(v) * p.h;
        if label.is_empty() {
            svg.line((x0 - 3.0, y), (x0, y), INK, 1.0, "");
            continue;
        }
        svg.line((x0, y), (x1, y), GRID, 1.0, "");
        svg.line((x0 - 5.0, y), (x0, y), INK, 1.0, "");
        svg.text(x0 - 7.0, y + 3.5, &label, 10.0, "end", "normal");
    }
    let group = p.w / sizes.len() as f64;
    for (i, n) in sizes.iter().enumerate() {
        svg.text(
            x0 + group * (i as f64 + 0.5),
            y1 + 14.0,
            &fmt_count(*n),
            10.0,
            "middle",
            "normal",
        );
    }
    p.frame(svg, heading);
}

/// Deliveries to the others in each second while one reader is stalled.
fn stall_svg(t: &ThreadsFile, s: &Stall) -> String {
    let subtitle = format!(
        "{} line clients in one room, {} msg/s of {} bytes each; what the other {} were delivered",
        fmt_count(s.clients),
        fmt_count(s.rate),
        fmt_count(s.pad),
        fmt_count(s.clients - 1.0)
    );
    let mut svg = Svg::new(
        "One reader stops reading",
        &subtitle,
        &[t.meta.line(), remake_line()],
    );
    let colour = |server: &str| if server == "natter" { BLUE } else { VERMILION };
    let dash = |server: &str| if server == "natter" { "" } else { "6 3" };
    let legend: Vec<(String, &str, &str)> = s
        .servers
        .iter()
        .map(|r| {
            let reader = match r.dropped_after_s {
                Some(d) => format!("stalled reader dropped after {d:.1} s"),
                None => "stalled reader still connected".into(),
            };
            (
                format!(
                    "{}: {:.1}% delivered, {reader}",
                    r.server,
                    100.0 * r.delivered / r.expected.max(1.0)
                ),
                colour(&r.server),
                dash(&r.server),
            )
        })
        .collect();
    let top = svg.legend(&legend);
    let seconds = s
        .servers
        .iter()
        .map(|r| r.per_second.len())
        .max()
        .unwrap_or(1) as f64;
    let hi = s
        .servers
        .iter()
        .flat_map(|r| r.per_second.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0);
    let mut x = Axis::linear(0.0, seconds, "second of the load (then of the drain)");
    x.hi = seconds;
    let ps = panels(
        top,
        vec![(x, Axis::linear(0.0, hi * 1.1, "deliveries in that second"))],
    );
    let p = &ps[0];
    // The drain: after the load's last second.
    if t.secs < seconds {
        let (a, _) = p.at(t.secs, 0.0);
        let (b, _) = p.at(seconds, 0.0);
        svg.rect(a, p.y, b - a, p.h, "#F3F3F3");
        svg.text_fill(a + 4.0, p.y + 12.0, "drain", 9.0, "start", "normal", GREY);
    }
    p.draw_axes(&mut svg, "");
    for r in &s.servers {
        // Second i covers [i, i + 1): a step line.
        let mut pts = Vec::new();
        for (i, &n) in r.per_second.iter().enumerate() {
            pts.push((i as f64, n));
            pts.push((i as f64 + 1.0, n));
        }
        p.series(&mut svg, &pts, colour(&r.server), dash(&r.server));
        if let Some(d) = r.dropped_after_s {
            let (a, b) = (p.at(d, 0.0), p.at(d, p.ya.hi));
            svg.line(a, b, colour(&r.server), 1.0, "2 2");
            svg.text_fill(
                a.0 + 4.0,
                p.y + p.h * 0.7,
                &format!("{} drops the stalled reader", r.server),
                9.0,
                "start",
                "normal",
                colour(&r.server),
            );
        }
    }
    svg.finish()
}
