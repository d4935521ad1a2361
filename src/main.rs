//! `natter`: parse the command line, set up logging, run the server.

#![forbid(unsafe_code)]

use clap::Parser;

use natter::config::Config;
use natter::server::{announce, Server};

fn main() {
    let config = Config::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("natter=info"))
        .init();
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
