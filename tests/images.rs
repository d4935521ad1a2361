//! Images over the JSON protocol against the real binary: the echo, the
//! room's copy, the line client's URL line, `GET /media/ID`, the refusals,
//! the limits, flood control, and survival of a restart and of `kill -9`.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use common::testrng::Rng;
use common::*;

/// Room messages and images as fast as a test can send them.
const FAST: [&str; 4] = ["--rate", "100000", "--burst", "100000"];

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `magic` followed by filler bytes (every byte value) up to `len` bytes.
fn file(magic: &[u8], len: usize) -> Vec<u8> {
    assert!(len >= magic.len());
    let mut v = magic.to_vec();
    v.extend((0..len - magic.len()).map(|i| (i * 7 + 3) as u8));
    v
}

fn png(len: usize) -> Vec<u8> {
    file(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", len)
}

fn jpeg(len: usize) -> Vec<u8> {
    file(b"\xff\xd8\xff\xe0\0\x10JFIF\0", len)
}

fn gif(len: usize) -> Vec<u8> {
    file(b"GIF89a\x01\0\x01\0", len)
}

fn webp(len: usize) -> Vec<u8> {
    let mut v = file(b"RIFF\0\0\0\0WEBPVP8 ", len);
    let riff = ((len - 8) as u32).to_le_bytes();
    v[4..8].copy_from_slice(&riff);
    v
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// `[HH:MM:SS]` (UTC) of a `ts` in milliseconds.
fn clock(ts: u64) -> String {
    let s = (ts / 1000) % 86_400;
    format!("[{:02}:{:02}:{:02}]", s / 3600, (s / 60) % 60, s % 60)
}

/// Connects with `nick` and joins `room` at once (reads the `joined`).
fn ws_in(addr: SocketAddr, nick: &str, room: &str) -> WsClient {
    let mut c = WsClient::connect(addr, &format!("nick={nick}&room={room}"));
    assert_eq!(c.nick(), nick);
    let joined = c.recv_type("joined");
    assert_eq!(joined["room"], room, "{joined}");
    c
}

/// The next message or error, skipping presence and typing.
fn next(c: &mut WsClient) -> Value {
    loop {
        let v = c.recv();
        if v["type"] != "presence" && v["type"] != "typing" {
            return v;
        }
    }
}

/// The next room message line a line client gets, skipping presence.
fn next_line(c: &mut LineClient) -> String {
    c.line_where(|l| {
        strip_clock(l).is_some_and(|r| {
            r.split_once(' ')
                .is_some_and(|(_, body)| body.starts_with('<') && !body.starts_with("<--"))
        })
    })
}

/// The id in an image message's `/media/ID` URL, after checking its shape.
fn media_id(m: &Value) -> String {
    let url = m["image"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no image url in {m}"));
    let id = url
        .strip_prefix("/media/")
        .unwrap_or_else(|| panic!("image url {url:?} is not /media/ID"));
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "odd media id {id:?}"
    );
    id.to_string()
}

/// Sends an image; returns the sender's echo after checking it.
fn send_image(
    c: &mut WsClient,
    room: &str,
    data: &[u8],
    caption: Option<&str>,
    cid: &str,
) -> Value {
    let mut req = json!({"type":"image","room":room,"data":b64(data),"cid":cid,"ref":cid});
    if let Some(t) = caption {
        req["text"] = json!(t);
    }
    c.send(req);
    let echo = next(c);
    assert_eq!(echo["type"], "message", "{echo}");
    assert_eq!(echo["cid"], cid, "{echo}");
    assert_eq!(echo["ref"], cid, "{echo}");
    assert_eq!(echo["room"], room);
    assert_eq!(echo["from"], c.nick().as_str());
    assert_eq!(echo["text"], caption.unwrap_or(""), "{echo}");
    assert_eq!(echo["image"]["size"], data.len() as u64, "{echo}");
    echo
}

/// Sends `req` and expects the error `code`, carrying `req`'s ref.
fn refused(c: &mut WsClient, mut req: Value, code: &str, what: &str) {
    req["ref"] = json!(what);
    c.send(req);
    let e = next(c);
    assert_eq!(e["type"], "error", "{what}: {e}");
    assert_eq!(e["code"], code, "{what}: {e}");
    assert_eq!(e["ref"], what, "{what}: {e}");
}

/// Asserts `GET /media/ID` serves exactly `data` as `mime`, and that `HEAD`
/// gives the same head without the body.
fn assert_served(addr: SocketAddr, id: &str, data: &[u8], mime: &str) {
    let path = format!("/media/{id}");
    let r = http(addr, "GET", &path);
    assert_eq!(r.status, 200, "GET {path}");
    assert!(r.body == data, "GET {path}: the bytes differ");
    assert_eq!(r.header("content-type"), Some(mime), "{:?}", r.headers);
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{:?}",
        r.headers
    );
    let cache = r
        .header("cache-control")
        .unwrap_or_else(|| panic!("no Cache-Control in {:?}", r.headers));
    // A deleted message takes its image with it (PROTOCOL-2 section 3):
    // browsers may keep it a few minutes, shared caches not at all.
    assert!(
        cache.contains("private") && !cache.contains("immutable"),
        "Cache-Control: {cache}"
    );
    let max_age: u64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in Cache-Control: {cache}"));
    assert!(max_age <= 300, "Cache-Control: {cache}");

    let h = http(addr, "HEAD", &path);
    assert_eq!(h.status, 200, "HEAD {path}");
    assert_eq!(h.header("content-type"), Some(mime));
    assert_eq!(
        h.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert_eq!(h.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(h.header("cache-control"), Some(cache));
}

/// The stored messages of a room, from the HTTP API.
fn stored(addr: SocketAddr, room: &str) -> Vec<Value> {
    let r = http(
        addr,
        "GET",
        &format!("/api/rooms/{room}/messages?limit=200"),
    );
    assert_eq!(r.status, 200);
    r.json()["messages"].as_array().expect("messages").clone()
}

/// The echo as the room and the store show it: without `cid` and `ref`.
fn stripped(v: &Value) -> Value {
    let mut v = v.clone();
    let obj = v.as_object_mut().expect("object");
    obj.remove("cid");
    obj.remove("ref");
    v
}

// ---------------------------------------------------------------------------
// Accepted images
// ---------------------------------------------------------------------------

#[test]
fn each_image_type_is_echoed_delivered_shown_to_line_clients_and_served() {
    let s = Server::start(&FAST);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let mut other = ws_in(s.addr, "other", "lobby");
    let mut line = s.line_client();
    let cases: [(&str, Vec<u8>, &str, Option<&str>); 6] = [
        ("image/png", png(1024), "1 KiB", Some("a cat")),
        ("image/jpeg", jpeg(512), "512 B", None),
        ("image/gif", gif(34 * 1024), "34 KiB", Some("dancing ✓")),
        ("image/webp", webp(3000), "3 KiB", Some("")),
        ("image/png", png(100), "100 B", Some("tiny")),
        ("image/jpeg", jpeg(1023), "1023 B", None),
    ];
    let mut seen_ids = Vec::new();
    for (i, (mime, data, size, caption)) in cases.iter().enumerate() {
        let cid = format!("img{i}");
        let echo = send_image(&mut snap, "lobby", data, *caption, &cid);
        assert_eq!(echo["seq"], i as u64 + 1);
        assert_eq!(echo["image"]["mime"], *mime, "{echo}");
        let id = media_id(&echo);
        assert!(!seen_ids.contains(&id), "media id {id} reused");
        seen_ids.push(id.clone());

        let copy = next(&mut other);
        assert_eq!(
            copy,
            stripped(&echo),
            "the room's copy differs from the echo"
        );
        assert!(copy.get("cid").is_none() && copy.get("ref").is_none());

        let caption_part = match caption {
            Some(t) if !t.is_empty() => format!(" {t}"),
            _ => String::new(),
        };
        assert_eq!(
            next_line(&mut line),
            format!(
                "{} #lobby <snap> [image] http://{}/media/{id} ({mime}, {size}){caption_part}",
                clock(echo["ts"].as_u64().expect("ts")),
                s.addr
            )
        );
        assert_served(s.addr, &id, data, mime);
    }

    // The history (WebSocket and HTTP) carries the image messages.
    let kept = stored(s.addr, "lobby");
    assert_eq!(kept.len(), cases.len());
    other.send(json!({"type":"history","room":"lobby"}));
    let h = other.recv_type("history");
    assert_eq!(h["messages"], json!(kept));
    for (m, id) in kept.iter().zip(&seen_ids) {
        assert_eq!(&media_id(m), id);
    }
    // A line client's /history shows them as it showed them live.
    line.send("/history 2");
    assert_eq!(line.line(), "*** history of #lobby (2 messages)");
    let l = line.line();
    assert!(
        l.ends_with(&format!(
            "#lobby <snap> [image] http://{}/media/{} (image/png, 100 B) tiny",
            s.addr, seen_ids[4]
        )),
        "{l}"
    );
    line.line();
    assert_eq!(line.line(), "*** end of history");

    // A repeated cid is answered with the original and not sent again.
    snap.send(json!({"type":"image","room":"lobby","data":b64(&png(1024)),"cid":"img0"}));
    let again = next(&mut snap);
    assert_eq!(again["seq"], 1, "{again}");
    assert_eq!(media_id(&again), seen_ids[0]);
    snap.send(json!({"type":"say","room":"lobby","text":"marker"}));
    assert_eq!(next(&mut snap)["seq"], cases.len() as u64 + 1);
    assert_eq!(next(&mut other)["text"], "marker");
}

#[test]
fn public_url_sets_the_origin_line_clients_see() {
    let s = Server::start(&["--public-url", "https://chat.example.com"]);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let mut line = s.line_client();
    let echo = send_image(&mut snap, "lobby", &gif(2048), Some("hi"), "p1");
    let id = media_id(&echo);
    assert_eq!(
        echo["image"]["url"],
        format!("/media/{id}"),
        "the WebSocket URL stays relative"
    );
    assert_eq!(
        next_line(&mut line),
        format!(
            "{} #lobby <snap> [image] https://chat.example.com/media/{id} (image/gif, 2 KiB) hi",
            clock(echo["ts"].as_u64().expect("ts"))
        )
    );
}

#[test]
fn a_public_url_with_a_trailing_slash_makes_no_double_slash() {
    let s = Server::start(&["--public-url", "https://chat.example.com/"]);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let mut line = s.line_client();
    let echo = send_image(&mut snap, "lobby", &png(16), None, "p2");
    let l = next_line(&mut line);
    assert!(
        l.ends_with(&format!(
            "#lobby <snap> [image] https://chat.example.com/media/{} (image/png, 16 B)",
            media_id(&echo)
        )),
        "{l}"
    );
}

#[test]
fn unknown_and_malformed_media_ids_are_404() {
    let s = Server::start(&[]);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let id = media_id(&send_image(&mut snap, "lobby", &png(64), None, "k"));
    assert_served(s.addr, &id, &png(64), "image/png");
    let zeros = "0".repeat(id.len());
    let long = "a".repeat(4000);
    for path in [
        format!("/media/{zeros}"),
        "/media/".to_string(),
        "/media/nothex".to_string(),
        "/media/../index.html".to_string(),
        "/media/%2e%2e%2fhealthz".to_string(),
        format!("/media/{id}/x"),
        format!("/media/{id}x"),
        format!("/media/{id}.png"),
        format!("/media/{long}"),
        format!("/media{id}"),
    ] {
        for method in ["GET", "HEAD"] {
            let r = http(s.addr, method, &path);
            assert_eq!(r.status, 404, "{method} {path}");
            assert_ne!(r.header("content-type"), Some("image/png"), "{path}");
        }
    }
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[test]
fn refused_images_are_neither_stored_nor_delivered() {
    let mut args = vec!["--max-image", "2000"];
    args.extend_from_slice(&FAST);
    let s = Server::start(&args);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let mut other = ws_in(s.addr, "other", "lobby");
    let mut line = s.line_client();
    let img = |data: &[u8]| json!({"type":"image","room":"lobby","data":b64(data),"text":"look"});
    let random = Rng::new(1).bytes(1500);
    assert!(!random.starts_with(b"\x89PNG") && !random.starts_with(b"\xff\xd8"));

    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    refused(&mut snap, img(svg), "bad_image", "svg");
    refused(
        &mut snap,
        img(br#"<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg"/>"#),
        "bad_image",
        "xml svg",
    );
    refused(&mut snap, img(&random), "bad_image", "random bytes");
    refused(
        &mut snap,
        img(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"),
        "bad_image",
        "pdf",
    );
    // Text that says it is a PNG, in every field a client could lie in.
    let mut liar = img(b"this is a PNG image, honest");
    liar["mime"] = json!("image/png");
    liar["name"] = json!("cat.png");
    liar["content_type"] = json!("image/png");
    refused(&mut snap, liar, "bad_image", "text claiming png");
    refused(
        &mut snap,
        img(b"\x89PNG"),
        "bad_image",
        "truncated png magic",
    );
    refused(
        &mut snap,
        img(b"RIFF\0\0\0\0WAVEfmt "),
        "bad_image",
        "riff but not webp",
    );
    refused(&mut snap, img(b""), "bad_image", "empty data");
    refused(
        &mut snap,
        json!({"type":"image","room":"lobby","data":"!!! not base64 ###"}),
        "bad_image",
        "invalid base64",
    );
    refused(
        &mut snap,
        img(&png(2001)),
        "too_large",
        "one byte over --max-image",
    );
    refused(
        &mut snap,
        img(&png(100_000)),
        "too_large",
        "far over --max-image",
    );
    refused(
        &mut snap,
        json!({"type":"image","room":"lobby","text":"no data"}),
        "bad_request",
        "missing data",
    );
    refused(
        &mut snap,
        json!({"type":"image","room":"lobby","data":42}),
        "bad_request",
        "data not a string",
    );
    refused(
        &mut snap,
        json!({"type":"image","data":b64(&png(64))}),
        "bad_request",
        "missing room",
    );
    refused(
        &mut snap,
        json!({"type":"image","room":"elsewhere","data":b64(&png(64))}),
        "not_in_room",
        "a room the sender is not in",
    );
    let long = json!({"type":"image","room":"lobby","data":b64(&png(64)),"text":"x".repeat(4001)});
    refused(&mut snap, long, "too_long", "a caption over --max-message");
    let mut outsider = WsClient::connect(s.addr, "nick=outsider");
    refused(
        &mut outsider,
        img(&png(64)),
        "not_in_room",
        "a client in no room",
    );

    // Nothing reached the room: the next thing everyone sees is seq 1.
    let ok = send_image(&mut snap, "lobby", &png(2000), None, "exactly");
    assert_eq!(ok["seq"], 1, "a refused image took a seq");
    let copy = next(&mut other);
    assert_eq!(copy["seq"], 1, "{copy}");
    assert_eq!(copy["image"]["size"], 2000);
    let l = next_line(&mut line);
    assert!(
        l.contains("[image]") && l.ends_with("(image/png, 2 KiB)"),
        "the line client saw {l:?} first"
    );
    let kept = stored(s.addr, "lobby");
    assert_eq!(kept, vec![stripped(&ok)]);
    assert_served(s.addr, &media_id(&ok), &png(2000), "image/png");
}

#[test]
fn the_default_limit_is_exactly_one_mib() {
    let s = Server::start(&[]);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let mut other = ws_in(s.addr, "other", "lobby");
    assert_eq!(snap.welcome["limits"]["max_image"], MIB as u64);
    let big = jpeg(MIB);
    let echo = send_image(&mut snap, "lobby", &big, Some("a big one"), "big");
    assert_eq!(echo["image"]["mime"], "image/jpeg");
    assert_eq!(next(&mut other), stripped(&echo));

    refused(
        &mut snap,
        json!({"type":"image","room":"lobby","data":b64(&jpeg(MIB + 1))}),
        "too_large",
        "one byte over 1 MiB",
    );
    // Still connected, and nothing more was stored.
    snap.send(json!({"type":"say","room":"lobby","text":"still here"}));
    assert_eq!(next(&mut snap)["seq"], 2);
    assert_eq!(next(&mut other)["text"], "still here");
    assert_eq!(stored(s.addr, "lobby").len(), 2);
    // And the largest image allowed can be fetched back.
    assert_served(s.addr, &media_id(&echo), &big, "image/jpeg");
}

// ---------------------------------------------------------------------------
// Durability
// ---------------------------------------------------------------------------

#[test]
fn an_image_survives_a_restart_and_a_kill_9_right_after_its_echo() {
    let db = TempDb::new("images");
    let s = Server::start(&["--db", db.arg()]);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let first = webp(5000);
    let e1 = send_image(&mut snap, "lobby", &first, Some("before the restart"), "a");
    let id1 = media_id(&e1);
    drop(snap);
    // A clean restart.
    Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("kill -TERM");
    let mut s = s;
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.is_alive() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        thread::sleep(Duration::from_millis(20));
    }
    drop(s);

    let s = Server::start(&["--db", db.arg()]);
    assert_served(s.addr, &id1, &first, "image/webp");
    let mut snap = ws_in(s.addr, "snap", "lobby");
    snap.send(json!({"type":"history","room":"lobby"}));
    assert_eq!(
        snap.recv_type("history")["messages"],
        json!([stripped(&e1)])
    );
    // kill -9 as soon as the sender has its echo.
    let second = png(70_000);
    let e2 = send_image(&mut snap, "lobby", &second, None, "b");
    kill9(s);
    let id2 = media_id(&e2);

    let s = Server::start(&["--db", db.arg()]);
    assert_served(s.addr, &id2, &second, "image/png");
    assert_served(s.addr, &id1, &first, "image/webp");
    assert_eq!(stored(s.addr, "lobby"), vec![stripped(&e1), stripped(&e2)]);
    let mut line = s.line_client();
    let g = &line.greeting;
    assert_eq!(g[2], "*** history of #lobby (2 messages)");
    assert_eq!(
        g[3],
        format!(
            "{} #lobby <snap> [image] http://{}/media/{id1} (image/webp, 5 KiB) before the restart",
            clock(e1["ts"].as_u64().unwrap()),
            s.addr
        )
    );
    assert_eq!(
        g[4],
        format!(
            "{} #lobby <snap> [image] http://{}/media/{id2} (image/png, 68 KiB)",
            clock(e2["ts"].as_u64().unwrap()),
            s.addr
        )
    );
    let mut w = ws_in(s.addr, "later", "lobby");
    line.send("and on we go");
    assert_eq!(next(&mut w)["seq"], 3);
}

// ---------------------------------------------------------------------------
// Flood control
// ---------------------------------------------------------------------------

#[test]
fn images_count_against_flood_control() {
    let s = Server::start(&["--rate", "1", "--burst", "3"]);
    let mut snap = ws_in(s.addr, "snap", "lobby");
    let mut other = ws_in(s.addr, "other", "lobby");
    // Three messages use up the burst; the images right after are over it.
    for i in 0..3 {
        snap.send(json!({"type":"say","room":"lobby","text":format!("m{i}")}));
    }
    for i in 0..3 {
        snap.send(
            json!({"type":"image","room":"lobby","data":b64(&png(200)),"ref":format!("i{i}")}),
        );
    }
    let mut images = 0;
    let mut says = 0;
    let mut limited = 0;
    while let Some(v) = snap.try_recv(Duration::from_millis(1500)) {
        match v["type"].as_str() {
            Some("message") if v.get("image").is_some() => images += 1,
            Some("message") => says += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited += 1;
            }
            _ => {}
        }
    }
    assert_eq!(says, 3);
    assert!(images < 3, "every image went through the exhausted burst");
    assert!(limited >= 1, "no rate_limited error");
    // What was refused was neither stored nor delivered.
    let kept = stored(s.addr, "lobby");
    assert_eq!(kept.len(), 3 + images);
    let mut got = 0;
    while let Some(v) = other.try_recv(Duration::from_millis(300)) {
        if v["type"] == "message" {
            got += 1;
        }
    }
    assert_eq!(got, 3 + images);

    // Images alone are limited too, on a fresh connection's burst.
    let mut pics = ws_in(s.addr, "pics", "lobby");
    for i in 0..6 {
        pics.send(
            json!({"type":"image","room":"lobby","data":b64(&gif(300)),"ref":format!("p{i}")}),
        );
    }
    let mut ok = 0;
    let mut limited = 0;
    while let Some(v) = pics.try_recv(Duration::from_millis(1500)) {
        match v["type"].as_str() {
            Some("message") => ok += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited += 1;
            }
            _ => {}
        }
    }
    assert!(
        (3..6).contains(&ok),
        "{ok} of 6 images went through a burst of 3"
    );
    assert!(limited >= 1);
}
