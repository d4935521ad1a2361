//! The fuzz targets' invariants on stable, without cargo-fuzz: every file of
//! `fuzz/corpus/*/` is replayed through the same checks the targets run
//! (`fuzz/src/lib.rs`, included here), and so is every input a fuzzer found
//! a bug with, each in its own test below.

#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/TARGET/`; fails naming each
/// file whose check panicked.
fn replay_corpus(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| check(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} corpus files fail: {failed:#?}",
        failed.len()
    );
}

#[test]
fn corpus_line() {
    replay_corpus("line", checks::line::check);
}

#[test]
fn corpus_http() {
    replay_corpus("http", checks::http::check);
}

#[test]
fn corpus_ws() {
    replay_corpus("ws", checks::ws::check);
}

#[test]
fn corpus_json() {
    replay_corpus("json", checks::json::check);
}

#[test]
fn corpus_sniff() {
    replay_corpus("sniff", checks::sniff::check);
}

#[test]
fn corpus_resp() {
    replay_corpus("resp", checks::resp::check);
}

#[test]
fn corpus_tls() {
    replay_corpus("tls", checks::tls::check);
}

// ---------------------------------------------------------------------------
// Findings. Each replays the fuzzer's input through the target's invariants,
// and states the broken rule directly on the smallest input that shows it.
// ---------------------------------------------------------------------------

/// sniff, found by `cargo fuzz run sniff` (hex
/// `474554202f77733f6e69636b3d626f6220485454502f312e260d0a486f73743a20780d0a0d0a`,
/// `GET /ws?nick=bob HTTP/1.&\r\nHost: x\r\n\r\n`): at 25 bytes
/// (`... HTTP/1.&`) the first line cannot be a request line and `sniff` says
/// `Line`; one more byte, a CR, and it says `NeedMore` again, because
/// `could_be_request_line` accepts any `HTTP/1.?\r` without checking that
/// `?` is a digit. So the verdict depends on how reads are split, and a line
/// client whose first line stops there is taken for HTTP by the first-line
/// timeout.
#[test]
fn sniff_a_version_with_a_non_digit_then_cr_is_decided() {
    use natter::proto::sniff::{on_first_line_timeout, sniff, Sniff};
    let found = b"GET /ws?nick=bob HTTP/1.&\r\nHost: x\r\n\r\n";
    let min = b"A / HTTP/1.x\r";
    assert_eq!(sniff(&min[..min.len() - 1]), Sniff::Line);
    assert_eq!(sniff(min), Sniff::Line, "undecided again after a CR");
    assert_eq!(on_first_line_timeout(min), Sniff::Line);
    checks::sniff::check(min);
    checks::sniff::check(found);
}
