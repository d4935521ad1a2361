//! The soak test's fast mode: 20 clients for 8 s (one small burst) against the built binary,
//! once alone and once as two processes sharing the chat through a real
//! `redis-server` (`--redis`).
//! `make soak` runs the real thing (`examples/soak.rs`, which this file
//! includes as a module: cargo does not hand example binaries to tests).

mod common;

#[allow(dead_code, unreachable_pub)] // `main` and the CLI are the example's, unused here
#[path = "../examples/soak.rs"]
mod soak;

#[test]
fn twenty_clients_for_eight_seconds_pass_every_check() {
    let cfg = soak::Config::new(env!("CARGO_BIN_EXE_natter"), 20, 8);
    let report = soak::run(&cfg);
    assert!(
        report.failed == 0 && report.passed > 0,
        "soak smoke run failed:\n{}",
        report.text
    );
}

/// The same clients and checks against two natter processes sharing their
/// chat through Redis: every message numbered there, read back from there
/// for joins, catch-ups, history and search; each client goes to the
/// other process whenever it reconnects (its session resumed there).
#[test]
fn twenty_clients_on_two_processes_through_redis_pass_every_check() {
    let redis = common::RedisProc::start();
    let mut cfg = soak::Config::new(env!("CARGO_BIN_EXE_natter"), 20, 8);
    cfg.server_args = vec![format!("--redis={}", redis.url())];
    cfg.processes = 2;
    let report = soak::run(&cfg);
    assert!(
        report.failed == 0 && report.passed > 0,
        "soak smoke run through Redis failed:\n{}",
        report.text
    );
}
