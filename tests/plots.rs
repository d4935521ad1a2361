//! The benchmark pictures: `examples/plots.rs` (compiled in here as a
//! module, as `tests/examples_run.rs` does with other examples) draws every
//! picture from the small benchmark output in `tests/fixtures/bench/`
//! (written by the benchmark programs themselves with `NATTER_BENCH_DATA`;
//! see its README), each one a well-formed SVG with its series and axes
//! named; a missing file skips its pictures, a malformed one is an error.

#[path = "../examples/plots.rs"]
#[allow(dead_code, unreachable_pub)] // its main is not used here
mod plots;

use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bench")
}

/// A fresh empty directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natter-plots-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Checks that `svg` is one `<svg>` element whose tags all close in order,
/// with no raw `&` or `<` in text; returns what is wrong otherwise.
fn well_formed(svg: &str) -> Result<(), String> {
    if !svg.starts_with("<svg ") {
        return Err("does not start with <svg".into());
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open])?;
        let tag = &rest[open..];
        let close = tag.find('>').ok_or("a tag never closes")?;
        let inner = &tag[1..close];
        rest = &tag[close + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            match stack.pop() {
                Some(top) if top == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let name = inner
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("bad tag <{inner}>"));
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !inner.ends_with('/') {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("never closed: {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

fn check_text(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        rest = &rest[i + 1..];
        let entity = rest.split(';').next().unwrap_or("");
        if !["amp", "lt", "gt", "quot", "apos"].contains(&entity) {
            return Err(format!("raw & in text: {t:?}"));
        }
    }
    Ok(())
}

#[test]
fn the_checker_fails_what_is_not_well_formed() {
    assert!(well_formed("<svg a=\"1\"><g><line/></g></svg>\n").is_ok());
    assert!(well_formed("<svg a=\"1\"><g></svg>").is_err());
    assert!(well_formed("<svg a=\"1\"><text>a & b</text></svg>").is_err());
    assert!(well_formed("<svg a=\"1\"></svg><svg b=\"2\"></svg>").is_err());
    assert!(well_formed("<html></html>").is_err());
}

/// Each picture with what it must name: series, axes, headings.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "cdf-s1.svg",
        &[
            "Fan-out scenario 1",
            "natter, line: p50",
            "natter, WebSocket: p50",
            "latency (ms, log scale)",
            "fraction of deliveries",
            "quantile",
            "99.9%",
        ],
    ),
    (
        "cdf-s3.svg",
        &[
            "Fan-out scenario 3",
            "natter, WebSocket: p50",
            "latency (ms, log scale)",
            "fraction of deliveries",
        ],
    ),
    (
        "cdf-vs-ws-s1.svg",
        &[
            "natter against Node's ws, scenario 1",
            "natter: p50",
            "ws (Node): p50",
            "latency (ms, log scale)",
        ],
    ),
    (
        "s2-steps.svg",
        &[
            "Rate steps",
            "natter, line clients (fanout 2)",
            "natter, WebSocket (bench_compare)",
            "ws (Node), WebSocket",
            "offered rate (messages/s, all senders)",
            "p99 latency (ms)",
            "deliveries/s",
            "limit 250 ms",
        ],
    ),
    (
        "threads.svg",
        &[
            "natter against a thread per client",
            "natter (one event loop)",
            "threaded (examples/threaded.rs",
            "p99 latency",
            "resident memory",
            "CPU per delivery",
            "clients",
            "MiB",
        ],
    ),
    (
        "threads-stall.svg",
        &[
            "One reader stops reading",
            "natter: ",
            "threaded: ",
            "second of the load",
            "deliveries in that second",
        ],
    ),
];

#[test]
fn every_picture_is_drawn_from_the_fixture() {
    let out = temp_dir("all");
    let written = plots::run(&fixture(), &out).expect("the fixture draws");
    for (name, words) in EXPECTED {
        let path = out.join(name);
        assert!(written.contains(&path), "{name} not drawn: {written:?}");
        let svg = std::fs::read_to_string(&path).expect(name);
        if let Err(e) = well_formed(&svg) {
            panic!("{name}: {e}");
        }
        for w in *words {
            assert!(svg.contains(w), "{name} does not say {w:?}");
        }
        // Every picture says where its figures came from and how to remake it.
        assert!(svg.contains("data: "), "{name}: no source line");
        assert!(
            svg.contains("cargo run --release --example plots"),
            "{name}: no command"
        );
        assert!(svg.contains("width=\"720\" height=\"420\""), "{name}: size");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_missing_file_skips_its_pictures() {
    let data = temp_dir("some-data");
    std::fs::copy(
        fixture().join("compare-threads.json"),
        data.join("compare-threads.json"),
    )
    .expect("copy");
    let out = temp_dir("some-out");
    let mut written = plots::run(&data, &out).expect("drawn");
    written.sort();
    assert_eq!(
        written,
        vec![out.join("threads-stall.svg"), out.join("threads.svg")]
    );
    let empty = temp_dir("no-data");
    assert_eq!(
        plots::run(&empty, &out).expect("nothing to draw"),
        Vec::<PathBuf>::new()
    );
    for d in [data, out, empty] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn malformed_input_is_an_error() {
    let fanout = std::fs::read_to_string(fixture().join("fanout.json")).expect("fixture");
    let threads = std::fs::read_to_string(fixture().join("compare-threads.json")).expect("fixture");
    let cases: [(&str, String, &str); 5] = [
        ("fanout.json", "{\"schema\": ".into(), "not JSON"),
        (
            "fanout.json",
            fanout.replace("natter-bench-data/1", "natter-bench-data/0"),
            "schema",
        ),
        (
            "fanout.json",
            fanout.replacen("\"p99\":", "\"p99_gone\":", 1),
            "no field \"p99\"",
        ),
        (
            "fanout.json",
            fanout.replacen("[0.5, ", "[0.5, \"x\", ", 1),
            "cdf point",
        ),
        (
            "compare-threads.json",
            threads.replacen("\"rss_kib\": ", "\"rss_kib\": \"a lot\", \"was\": ", 1),
            "\"rss_kib\" is not a number",
        ),
    ];
    for (i, (file, text, why)) in cases.iter().enumerate() {
        let data = temp_dir(&format!("bad-{i}"));
        std::fs::write(data.join(file), text).expect("write");
        match plots::run(&data, &data.join("out")) {
            Ok(w) => panic!("case {i}: malformed {file} drew {w:?}"),
            Err(e) => assert!(
                e.contains(why),
                "case {i}: error {e:?} does not say {why:?}"
            ),
        }
        let _ = std::fs::remove_dir_all(data);
    }
}
