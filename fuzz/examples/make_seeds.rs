//! Writes the seed corpus: `cargo run --example make_seeds` in `fuzz/`.
//! Each file is in its target's input layout (see `src/lib.rs`).

use std::fs;
use std::path::Path;

use natter::proto::ws::encode_client_frame;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    encode_client_frame(fin, 0, op, payload, MASK)
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn with(head: &[u8], body: &[u8]) -> Vec<u8> {
    [head, body].concat()
}

fn main() {
    // line: [max, seed, stream]
    let session = b"/nick alice\r\n/join dev\nhi there\n//slash says /slash\n/me waves\n\
/msg brave-otter-17 psst\n/history 5\n/who\n/rooms\n/leave dev\n/create\n/help\n/stats\n/quit see you";
    write("line", "netcat_session", &with(&[0x80, 0], session));
    write(
        "line",
        "render_fields",
        &with(
            &[0x80, 9],
            b"alice\n#Lobby\nhello \x1b[31mred\x1b[0m\ttab\xc2\x85nel\n",
        ),
    );
    let accounts = b"/register correct horse  \n/login alice  two  spaces\r\n/logout\n\
/password old new\n/password my old one new\n/register\n/login alice\n";
    write("line", "accounts_session", &with(&[0x80, 7], accounts));
    let moderation = b"/kick bob being rude \n/ban Bob spam\n/unban bob\n/mute bob 300\n\
/mute bob\n/mute bob 0\n/mute bob 007\n/unmute bob\n/op carol\n/deop carol\n/topic Rust and chat\n\
/topic\n/invite-only ON\n/invite-only maybe\n/invite dave\n/bans\n/kick\n/op bob please\n";
    write("line", "moderation_session", &with(&[0x80, 11], moderation));
    let live = "/reply bob me too\n/reply  bob\t/me is text \n/edit fixed it\n/delete\n/delete bob\n\
/react bob \u{1F44D}\n/react bob\n/react bob a b\n/search rust \"exact phrase\" from:bob\n/search\n/edit\n\
/reply bob\n/delete bob carol\n";
    write("line", "live_session", &with(&[0x80, 13], live.as_bytes()));
    let quote = format!("alice\n#Lobby\n{}\u{e9}\u{1F600}\x1b[31m\n", "x".repeat(39));
    write("line", "render_quote", &with(&[0x80, 9], quote.as_bytes()));
    write(
        "line",
        "framing_small_max",
        &with(
            &[8, 5],
            b"hello\ncrlf\r\n\n12345678\r\n123456789\nafter\na\rb\nx\r\r\n\xff\xfe\nunfinished",
        ),
    );
    write(
        "line",
        "bad_utf8_and_unknown",
        &with(
            &[0x40, 3],
            b"\xc3(\n/bogus\x1b]0;x\x07 arg\n/join bad room\n/history 99999999999999999999999\n",
        ),
    );

    // http: [seed, buffer]
    write("http", "get_healthz", b"\x00GET /healthz HTTP/1.1\r\nHost: localhost:7878\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n");
    write("http", "ws_upgrade", b"\x07GET /ws?nick=alice&room=lobby HTTP/1.1\r\nHost: localhost:7878\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://localhost:7878\r\n\r\n");
    write("http", "pipelined", b"\x21GET /api/rooms HTTP/1.1\r\nHost: x\r\n\r\n\r\nHEAD /api/rooms/lobby/messages?limit=2&before=120 HTTP/1.1\nHost: x\nConnection: close\n\nGET /metrics HTTP/1.0\r\n\r\n");
    write(
        "http",
        "post_body",
        b"\x03POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Latin1: caf\xe9\r\n\r\nabc",
    );
    write(
        "http",
        "bad_heads",
        b"\x05GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    );
    write(
        "http",
        "options_star",
        b"\x11OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    );

    // ws: [config, seed, stream]
    let say =
        br#"{"type":"say","room":"lobby","text":"hi from the console","cid":"m1","ref":"r1"}"#;
    let mut stream = frame(true, 1, say);
    stream.extend(frame(
        false,
        1,
        "caf\u{e9} \u{20ac}".as_bytes()[..5].as_ref(),
    ));
    stream.extend(frame(true, 9, b"ping!"));
    stream.extend(frame(true, 0, &"caf\u{e9} \u{20ac}".as_bytes()[5..]));
    stream.extend(frame(true, 10, b""));
    stream.extend(frame(true, 8, b"\x03\xe8bye"));
    write("ws", "chat_session", &with(&[0x06, 0x13], &stream));
    let mut big = frame(true, 1, &[b'a'; 300]);
    big.extend(frame(true, 2, b"\x00\x01binary"));
    big.extend(frame(true, 8, b""));
    write("ws", "long_and_binary", &with(&[0x0d, 0x2a], &big));
    let mut bad = frame(true, 1, b"ok");
    bad.extend(frame(true, 1, b"\xed\xa0\x80surrogate"));
    write("ws", "bad_utf8", &with(&[0x05, 0], &bad));
    write(
        "ws",
        "close_bad_code",
        &with(&[0x03, 0x40], &frame(true, 8, b"\x03\xed")),
    );
    write(
        "ws",
        "too_big",
        &with(&[0x02, 0x09], &frame(true, 1, b"12345678")),
    );

    // json: the text
    let json: &[(&str, &str)] = &[
        (
            "say",
            r#"{"type":"say","room":"lobby","text":"hi from the console","cid":"m1","ref":"r1"}"#,
        ),
        ("nick", r#"{"type":"nick","nick":"alice"}"#),
        ("join", r#"{"type":"join","room":"dev","since":117}"#),
        ("create", r#"{"type":"create"}"#),
        ("leave", r#"{"type":"leave","room":"dev"}"#),
        (
            "say_action",
            r#"{"type":"say","room":"dev","text":"hi","cid":"k3j9","action":true}"#,
        ),
        ("dm", r#"{"type":"dm","to":"bob","text":"psst"}"#),
        (
            "history",
            r#"{"type":"history","room":"dev","before":120,"limit":50}"#,
        ),
        ("typing", r#"{"type":"typing","room":"dev"}"#),
        ("rooms", r#"{"type":"rooms","ref":"x"}"#),
        ("who", r##"{"type":"who","room":"#Dev"}"##),
        (
            "image",
            r#"{"type":"image","room":"lobby","data":"iVBORw0KGgo=","text":"caption"}"#,
        ),
        (
            "bad",
            r#"{"type":"say","room":"bad room","text":1,"ref":7}"#,
        ),
        (
            "register",
            r#"{"type":"register","password":"correct horse","ref":"a1"}"#,
        ),
        (
            "login",
            r#"{"type":"login","nick":"alice","password":" two  spaces "}"#,
        ),
        ("login_token", r#"{"type":"login","token":"5f0c8a1e9b2d"}"#),
        ("logout", r#"{"type":"logout"}"#),
        ("password", r#"{"type":"password","old":"a b","new":"c d"}"#),
        (
            "mod_kick",
            r#"{"type":"mod","room":"dev","action":"kick","nick":"bob","reason":"spam","ref":"m1"}"#,
        ),
        (
            "mod_mute",
            r##"{"type":"mod","room":"#Dev","action":"mute","nick":"bob","secs":300}"##,
        ),
        (
            "mod_topic",
            r#"{"type":"mod","room":"dev","action":"topic","text":""}"#,
        ),
        (
            "mod_invite_only",
            r#"{"type":"mod","room":"dev","action":"invite_only","on":true}"#,
        ),
        ("mod_bans", r#"{"type":"mod","room":"dev","action":"bans"}"#),
        (
            "mod_bad",
            r#"{"type":"mod","room":"dev","action":"smite","nick":"bob","ref":"x"}"#,
        ),
        (
            "edit",
            r#"{"type":"edit","room":"dev","seq":17,"text":"new text","ref":"e1"}"#,
        ),
        ("delete", r##"{"type":"delete","room":"#Dev","seq":17}"##),
        (
            "react",
            r#"{"type":"react","room":"dev","seq":17,"emoji":"\ud83d\udc4d"}"#,
        ),
        (
            "search",
            r#"{"type":"search","q":"rust \"exact phrase\" from:bob","room":"dev","limit":20,"before":900}"#,
        ),
        (
            "search_all",
            r#"{"type":"search","q":"cr\u00e8me","limit":500}"#,
        ),
        (
            "say_reply",
            r#"{"type":"say","room":"dev","text":"me too","reply_to":17,"cid":"r1"}"#,
        ),
        (
            "live_bad",
            r#"{"type":"edit","room":"dev","seq":"17","text":1,"ref":"b"}"#,
        ),
    ];
    for (name, text) in json {
        write("json", name, text.as_bytes());
    }

    // sniff: the bytes
    write(
        "sniff",
        "http",
        b"GET /ws?nick=bob HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    write("sniff", "netcat", b"hello\n/nick bob\r\n");
    write(
        "sniff",
        "tls",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    );
    write("sniff", "typing_slowly", b"HELLO there");
    write("sniff", "http10", b"HEAD /healthz HTTP/1.0\n\n");
}
