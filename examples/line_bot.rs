//! A tiny bot for the line protocol, to show how a script reads natter's
//! marked lines: `***` information, `!!!` errors, `[HH:MM:SS]` events.
//!
//!     cargo run --example line_bot -- 127.0.0.1:7878 lobby
//!
//! It takes the nick `clockbot` (or its generated one if that is taken),
//! joins the room, and answers `!time` and `!ping` said in any of its rooms.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let room = args.next().unwrap_or_else(|| "lobby".into());
    let stream = TcpStream::connect(&addr)?;
    let mut out = stream.try_clone()?;
    // Speaking first makes the server decide at once that we are a line client.
    writeln!(out, "/nick clockbot")?;
    writeln!(out, "/join {room}")?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        println!("{line}");
        // `[HH:MM:SS] #room <nick> text`
        let Some(rest) = line.get(11..).filter(|_| line.starts_with('[')) else {
            continue;
        };
        let Some((room, said)) = rest.split_once(' ') else {
            continue;
        };
        let Some((_, text)) = said.strip_prefix('<').and_then(|s| s.split_once("> ")) else {
            continue;
        };
        let answer = match text.trim() {
            "!ping" => "pong".to_string(),
            "!time" => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                format!("it is {} seconds past the Unix epoch", secs)
            }
            _ => continue,
        };
        // Answer in the room the question came from.
        writeln!(out, "/join {room}")?;
        writeln!(out, "{answer}")?;
    }
    Ok(())
}
