//! The WebSocket JSON protocol against the real binary, with `tungstenite`
//! (a client library natter did not write) and raw frames for the rules.

mod common;

use serde_json::json;

use common::*;

#[test]
fn a_line_client_and_a_websocket_client_talk_in_one_room() {
    let s = Server::start(&[]);
    let mut line = s.line_client();
    let mut ws = WsClient::connect(s.addr, "nick=webby&room=lobby");
    assert_eq!(ws.nick(), "webby");
    let joined = ws.recv();
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["room"], "lobby");
    assert_eq!(line.event(), "#lobby --> webby joined");
    ws.send(json!({"type":"say","room":"lobby","text":"hello nc","cid":"c1","ref":"r1"}));
    let echo = ws.recv();
    assert_eq!(echo["type"], "message");
    assert_eq!(echo["seq"], 1);
    assert_eq!(echo["cid"], "c1");
    assert_eq!(echo["ref"], "r1");
    assert_eq!(line.event(), "#lobby <webby> hello nc");
    line.send("hello ws");
    let m = ws.recv();
    assert_eq!(m["type"], "message");
    assert_eq!(m["from"], line.nick.as_str());
    assert_eq!(m["text"], "hello ws");
    assert_eq!(m["seq"], 2);
}
