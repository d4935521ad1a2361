//! The soak test's fast mode: 20 clients for 8 s (one small burst) against the built binary.
//! `make soak` runs the real thing (`examples/soak.rs`, which this file
//! includes as a module: cargo does not hand example binaries to tests).

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
