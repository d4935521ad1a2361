//! A WebSocket bot that reacts to messages (PROTOCOL-2 section 3), to show
//! the JSON side of natter from a script:
//!
//!     cargo run --example react_bot -- 127.0.0.1:7878 lobby
//!
//! It joins the room as `reactbot` and, for every message it sees:
//! - puts 👍 on one that says thanks (`thanks`, `thank you`, `+1`);
//! - puts 👀 on one that mentions it (the server resolves `@reactbot` into
//!   the message's `mentions`);
//! - answers `!find WORDS` with a reply (`reply_to`) naming the newest
//!   earlier message with those words, from a `search`.
//!
//! One request at a time goes out and the bot reads until its answer
//! (matched by `ref`), keeping what else arrives meanwhile for later; that
//! keeps it short. A busier bot would keep a map of refs in flight.

use std::collections::VecDeque;
use std::net::TcpStream;

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// Any failure ends the bot: it says why and stops.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Bot {
    ws: WebSocket<TcpStream>,
    next_ref: u64,
    nick: String,
    /// Events that arrived while the bot waited for an answer.
    later: VecDeque<Value>,
}

impl Bot {
    fn send(&mut self, mut req: Value) -> Result<String> {
        self.next_ref += 1;
        let r = format!("b{}", self.next_ref);
        req["ref"] = Value::from(r.as_str());
        self.ws.send(Message::text(req.to_string()))?;
        Ok(r)
    }

    /// The next JSON object from the server (`None` once it closed).
    fn recv(&mut self) -> Result<Option<Value>> {
        loop {
            match self.ws.read()? {
                Message::Text(t) => return Ok(serde_json::from_str(t.as_str()).ok()),
                Message::Close(_) => return Ok(None),
                _ => {}
            }
        }
    }

    /// Sends `req` and reads until the answer carrying its ref.
    fn ask(&mut self, req: Value) -> Result<Option<Value>> {
        let r = self.send(req)?;
        while let Some(v) = self.recv()? {
            if v["ref"] == r.as_str() {
                return Ok(Some(v));
            }
            self.later.push_back(v);
        }
        Ok(None)
    }

    /// What the bot does with one message of the room.
    fn on_message(&mut self, m: &Value) -> Result<()> {
        let (room, seq) = (&m["room"], &m["seq"]);
        let text = m["text"].as_str().unwrap_or_default();
        let lower = text.to_lowercase();
        if ["thanks", "thank you", "+1"]
            .iter()
            .any(|w| lower.contains(w))
        {
            self.ask(json!({"type":"react","room":room,"seq":seq,"emoji":"👍"}))?;
        }
        let mentioned = m["mentions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(self.nick.as_str())));
        if mentioned {
            self.ask(json!({"type":"react","room":room,"seq":seq,"emoji":"👀"}))?;
        }
        if let Some(words) = text.strip_prefix("!find ") {
            let found = self.ask(json!({"type":"search","q":words,"room":room,"limit":1,
                                        "before":seq}))?;
            let answer = match found.as_ref().and_then(|f| f["results"].get(0)) {
                Some(hit) => format!(
                    "{} said it: \"{}\"",
                    hit["from"].as_str().unwrap_or("someone"),
                    hit["snippet"].as_str().unwrap_or_default()
                ),
                None => format!("nobody said \"{words}\" here yet"),
            };
            self.ask(json!({"type":"say","room":room,"text":answer,"reply_to":seq}))?;
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let room = args.next().unwrap_or_else(|| "lobby".into());
    run(&addr, &room)
}

/// The bot, connected to natter at `addr`, in `room`, until the server
/// closes the connection.
pub(crate) fn run(addr: &str, room: &str) -> Result<()> {
    let stream = TcpStream::connect(addr)?;
    let url = format!("ws://{addr}/ws?nick=reactbot");
    let (ws, _) = tungstenite::client(url.as_str(), stream).map_err(|e| e.to_string())?;
    let mut bot = Bot {
        ws,
        next_ref: 0,
        nick: String::new(),
        later: VecDeque::new(),
    };
    let Some(welcome) = bot.recv()? else {
        return Ok(());
    };
    bot.nick = welcome["nick"].as_str().unwrap_or("reactbot").to_string();
    bot.ask(json!({"type":"join","room":room}))?;
    println!("{} is in #{room}", bot.nick);
    loop {
        let v = match bot.later.pop_front() {
            Some(v) => v,
            None => match bot.recv()? {
                Some(v) => v,
                None => return Ok(()),
            },
        };
        // Its own messages come back with a ref; others' without.
        if v["type"] == "message" && v["from"] != bot.nick.as_str() && v.get("ref").is_none() {
            bot.on_message(&v)?;
        }
    }
}
