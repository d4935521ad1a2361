//! Codec micro-benchmarks (line framing and rendering, WebSocket frame
//! decoding and encoding, JSON rendering), each reported as a ratio
//! against a naive baseline measured in the same run (the machine is shared and noisy, so
//! absolute figures mean little; ratios travel better).
//!
//! Run with `cargo bench --bench codecs`.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use natter::hub::event::{Event, Message};
use natter::hub::names::RoomName;
use natter::proto::line::{self, Frame, LineDecoder};
use natter::proto::{json, ws};

/// Runs `f` repeatedly for about `budget` and returns iterations per second.
fn rate(budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut items = 0usize;
    while start.elapsed() < budget {
        items += f();
    }
    items as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not,
    // and then a short smoke run is enough to show the benchmark works.
    let measuring = std::env::args().any(|a| a == "--bench");
    let budget = Duration::from_millis(if measuring { 700 } else { 20 });

    // 64 KiB reads of chat-sized lines, as the loop would see them.
    let mut stream = Vec::new();
    let mut n = 0;
    while stream.len() < 4 * 1024 * 1024 {
        stream.extend_from_slice(format!("message number {n} from a netcat user\r\n").as_bytes());
        n += 1;
    }
    let ours = rate(budget, || {
        let mut dec = LineDecoder::new(4096);
        let mut lines = 0;
        for chunk in stream.chunks(64 * 1024) {
            dec.decode(chunk, |f| {
                if let Frame::Line(l) = f {
                    black_box(l);
                    lines += 1;
                }
            });
        }
        lines
    });
    // Baseline: the whole stream in memory, split with no framing state.
    let naive = rate(budget, || {
        let mut lines = 0;
        for l in stream.split(|&b| b == b'\n') {
            black_box(l.strip_suffix(b"\r").unwrap_or(l));
            lines += 1;
        }
        lines
    });
    println!(
        "line decode: {:.1} M lines/s; naive split of a whole buffer {:.1} M lines/s; ratio {:.2}",
        ours / 1e6,
        naive / 1e6,
        ours / naive
    );

    let msg = Rc::new(Message {
        author: String::new(),
        reply_to: None,
        mentions: Vec::new(),
        edited_ts: None,
        deleted: false,
        reactions: Vec::new(),
        account: None,
        room: RoomName::parse("lobby").expect("room"),
        seq: 17,
        ts: 1_763_800_000_000,
        from: "quiet-heron-42".into(),
        text: "hello, this is a typical chat message".into(),
        action: false,
        image: None,
    });
    let event = Event::Message(msg.clone());
    let ours = rate(budget, || {
        black_box(line::render(black_box(&event), "http://127.0.0.1:7878"));
        1
    });
    let naive = rate(budget, || {
        let s = (msg.ts / 1000) % 86_400;
        black_box(format!(
            "[{:02}:{:02}:{:02}] #{} <{}> {}\n",
            s / 3600,
            s / 60 % 60,
            s % 60,
            msg.room,
            msg.from,
            msg.text
        ));
        1
    });
    println!(
        "line render: {:.2} M events/s; one format! {:.2} M/s; ratio {:.2}",
        ours / 1e6,
        naive / 1e6,
        ours / naive
    );

    // JSON: natter's borrowed Serialize structs against building a
    // serde_json::Value tree with json! and serializing that.
    let ours = rate(budget, || {
        black_box(json::render(black_box(&event)));
        1
    });
    let naive = rate(budget, || {
        let v = serde_json::json!({
            "type": "message", "room": msg.room.as_str(), "seq": msg.seq, "ts": msg.ts,
            "from": msg.from, "text": msg.text,
        });
        black_box(serde_json::to_vec(&v).unwrap_or_default());
        1
    });
    println!(
        "json render: {:.2} M events/s; a json! Value tree {:.2} M/s; ratio {:.2}",
        ours / 1e6,
        naive / 1e6,
        ours / naive
    );

    // WebSocket: decode 64 KiB reads of masked client frames, against
    // unmasking the same payload bytes with a plain byte loop (no framing,
    // no UTF-8 check): the floor any decoder must pay.
    let payload =
        br#"{"type":"say","room":"lobby","text":"hello, this is a typical chat message"}"#;
    let mut frames = Vec::new();
    while frames.len() < 4 * 1024 * 1024 {
        frames.extend(ws::encode_client_frame(true, 0, 1, payload, [1, 2, 3, 4]));
    }
    let ours = rate(budget, || {
        let mut dec = ws::Decoder::new(1 << 20);
        let mut n = 0;
        for chunk in frames.chunks(64 * 1024) {
            let _ = dec.decode(chunk, |m| {
                black_box(&m);
                n += 1;
            });
        }
        n
    });
    let per_frame = frames.len() / (frames.len() / (payload.len() + 6));
    let naive = rate(budget, || {
        let mut buf = frames.clone();
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= [1u8, 2, 3, 4][i % 4];
        }
        black_box(&buf);
        buf.len() / per_frame
    });
    println!(
        "ws decode: {:.2} M messages/s; a bare unmasking loop {:.2} M/s; ratio {:.2}",
        ours / 1e6,
        naive / 1e6,
        ours / naive
    );
    let ours = rate(budget, || {
        black_box(ws::encode_text(black_box(payload)));
        1
    });
    let naive = rate(budget, || {
        let mut v = Vec::with_capacity(payload.len() + 2);
        v.push(0x81);
        v.push(payload.len() as u8);
        v.extend_from_slice(payload);
        black_box(v);
        1
    });
    println!(
        "ws encode: {:.2} M frames/s; a hand-built Vec {:.2} M/s; ratio {:.2}",
        ours / 1e6,
        naive / 1e6,
        ours / naive
    );
}
