//! `natter`: parse the command line, set up logging, run the server (or a
//! subcommand: `natter accounts ...`).

#![forbid(unsafe_code)]

use std::io::IsTerminal;

use clap::Parser;

use natter::accounts_cli;
use natter::config::{Config, Sub};
use natter::server::{announce, Server};

fn main() {
    let config = Config::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("natter=info"))
        .init();
    if let Some(Sub::Accounts { action }) = &config.command {
        let stdin = std::io::stdin();
        let prompt = stdin.is_terminal();
        let mut io = accounts_cli::Io {
            input: &mut stdin.lock(),
            out: &mut std::io::stdout().lock(),
            note: &mut std::io::stderr().lock(),
            prompt,
        };
        let place = accounts_cli::Place {
            db: &config.db,
            redis: config.redis.as_deref(),
        };
        if let Err(e) = accounts_cli::run_at(&place, action, &mut io) {
            eprintln!("natter: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("natter: {e}");
            std::process::exit(1);
        }
    };
    match server.local_addrs() {
        Ok(addrs) => announce(&addrs),
        Err(e) => {
            eprintln!("natter: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = server.run() {
        eprintln!("natter: event loop failed: {e}");
        std::process::exit(1);
    }
}
