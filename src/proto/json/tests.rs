use super::*;

use std::rc::Rc;

use crate::hub::event::{Presence, Typing};

fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

fn ok(text: &str) -> Request {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn refused(text: &str) -> (ErrorCode, Option<String>) {
    let r = parse(text).expect_err(text);
    (r.error.code, r.r#ref)
}

#[test]
fn every_request_type() {
    let cases: Vec<(&str, Command)> = vec![
        (
            r#"{"type":"nick","nick":"alice"}"#,
            Command::Nick("alice".into()),
        ),
        (
            r##"{"type":"join","room":"#Lobby"}"##,
            Command::Join {
                room: room("lobby"),
                since: None,
            },
        ),
        (
            r#"{"type":"join","room":"lobby","since":117}"#,
            Command::Join {
                room: room("lobby"),
                since: Some(117),
            },
        ),
        (r#"{"type":"create"}"#, Command::Create),
        (
            r#"{"type":"leave","room":"dev"}"#,
            Command::Leave(Some(room("dev"))),
        ),
        (
            r#"{"type":"say","room":"lobby","text":"hi","cid":"k3j9"}"#,
            Command::Say {
                room: Some(room("lobby")),
                text: "hi".into(),
                action: false,
                cid: Some("k3j9".into()),
            },
        ),
        (
            r#"{"type":"say","room":"lobby","text":"waves","action":true}"#,
            Command::Say {
                room: Some(room("lobby")),
                text: "waves".into(),
                action: true,
                cid: None,
            },
        ),
        (
            r#"{"type":"dm","to":"bob","text":"psst"}"#,
            Command::Dm {
                to: "bob".into(),
                text: "psst".into(),
                cid: None,
            },
        ),
        (
            r#"{"type":"history","room":"lobby","before":120,"limit":50}"#,
            Command::History {
                room: Some(room("lobby")),
                page: Page {
                    before: Some(120),
                    after: None,
                    limit: 50,
                },
            },
        ),
        (
            r#"{"type":"history","room":"lobby","after":117}"#,
            Command::History {
                room: Some(room("lobby")),
                page: Page {
                    before: None,
                    after: Some(117),
                    limit: DEFAULT_PAGE,
                },
            },
        ),
        (
            r#"{"type":"history","limit":100000}"#,
            Command::History {
                room: None,
                page: Page {
                    before: None,
                    after: None,
                    limit: MAX_HISTORY_PAGE,
                },
            },
        ),
        (
            r#"{"type":"typing","room":"lobby"}"#,
            Command::Typing(room("lobby")),
        ),
        (r#"{"type":"rooms"}"#, Command::Rooms),
        (
            r#"{"type":"who","room":"lobby"}"#,
            Command::Who(Some(room("lobby"))),
        ),
        (r#"{"type":"who"}"#, Command::Who(None)),
    ];
    for (text, want) in cases {
        let got = ok(text);
        assert_eq!(got.command, want, "{text}");
        assert_eq!(got.r#ref, None);
    }
}

#[test]
fn ref_is_kept_and_unknown_fields_are_ignored() {
    let r = ok(r#"{"type":"rooms","ref":"r1","extra":[1,2,{"x":null}]}"#);
    assert_eq!(r.r#ref.as_deref(), Some("r1"));
    assert_eq!(r.command, Command::Rooms);
}

#[test]
fn errors_carry_their_code_and_the_ref() {
    assert_eq!(refused("not json"), (ErrorCode::BadJson, None));
    assert_eq!(refused(r#"{"type":"say""#), (ErrorCode::BadJson, None));
    assert_eq!(refused("[1,2]"), (ErrorCode::BadRequest, None));
    assert_eq!(refused(r#""say""#), (ErrorCode::BadRequest, None));
    assert_eq!(
        refused(r#"{"ref":"a"}"#),
        (ErrorCode::BadRequest, Some("a".into()))
    );
    assert_eq!(
        refused(r#"{"type":7,"ref":"a"}"#),
        (ErrorCode::BadRequest, Some("a".into()))
    );
    assert_eq!(
        refused(r#"{"type":"say","ref":5}"#),
        (ErrorCode::BadRequest, None)
    );
    assert_eq!(
        refused(r#"{"type":"dance","ref":"b"}"#),
        (ErrorCode::UnknownType, Some("b".into()))
    );
    let r = Some("c".to_string());
    for (text, code) in [
        (
            r#"{"type":"say","room":"lobby","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"lobby","text":5,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","text":"hi","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"no way","text":"hi","ref":"c"}"#,
            ErrorCode::RoomInvalid,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","action":"yes","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","cid":1,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"join","room":"a","since":-1,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"join","room":"a","since":1.5,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"history","room":"a","limit":"9","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"nick","ref":"c"}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"dm","to":"bob","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"typing","ref":"c"}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"image","room":"a","data":"!!not base64","ref":"c"}"#,
            ErrorCode::BadImage,
        ),
    ] {
        assert_eq!(refused(text), (code, r.clone()), "{text}");
    }
}

fn json(event: &Event) -> serde_json::Value {
    let bytes = render(event).expect("rendered");
    serde_json::from_slice(&bytes).expect("valid JSON")
}

fn msg(seq: u64, action: bool) -> Rc<Message> {
    Rc::new(Message {
        room: room("lobby"),
        seq,
        ts: 1_763_800_000_000,
        from: "alice".into(),
        text: "hi \"there\" \u{1F600}".into(),
        action,
        image: None,
        account: None,
    })
}

#[test]
fn renders_every_event_as_protocol_md_spells_it() {
    use serde_json::json;
    assert_eq!(
        json(&Event::Message(msg(17, false))),
        json!({"type":"message","room":"lobby","seq":17,"ts":1_763_800_000_000u64,
               "from":"alice","text":"hi \"there\" \u{1F600}"})
    );
    assert_eq!(json(&Event::Message(msg(3, true)))["action"], json!(true));
    assert_eq!(
        json(&Event::Reply(
            Reply::Sent(msg(4, false), Some("k3j9".into())),
            Some("r".into())
        )),
        json!({"type":"message","room":"lobby","seq":4,"ts":1_763_800_000_000u64,
               "from":"alice","text":"hi \"there\" \u{1F600}","cid":"k3j9","ref":"r"})
    );
    let presence = |kind| {
        Event::Presence(Rc::new(Presence {
            account: None,
            room: room("lobby"),
            kind,
            nick: "bob".into(),
            ts: 5,
        }))
    };
    assert_eq!(
        json(&presence(PresenceKind::Join)),
        json!({"type":"presence","room":"lobby","event":"join","nick":"bob","ts":5})
    );
    assert_eq!(
        json(&presence(PresenceKind::Leave(LeaveReason::Quit(Some(
            "bye".into()
        ))))),
        json!({"type":"presence","room":"lobby","event":"leave","nick":"bob","ts":5,
               "reason":"quit","message":"bye"})
    );
    for (reason, s) in [
        (LeaveReason::Leave, "leave"),
        (LeaveReason::Quit(None), "quit"),
        (LeaveReason::Disconnect, "disconnect"),
        (LeaveReason::Timeout, "timeout"),
        (LeaveReason::SlowConsumer, "slow_consumer"),
        (LeaveReason::Shutdown, "shutdown"),
    ] {
        let v = json(&presence(PresenceKind::Leave(reason)));
        assert_eq!(v["reason"], json!(s));
        assert!(v.get("message").is_none());
    }
    assert_eq!(
        json(&presence(PresenceKind::Nick {
            old: "alice".into()
        })),
        json!({"type":"presence","room":"lobby","event":"nick","nick":"bob","old":"alice","ts":5})
    );
    let typing = Event::Typing(Rc::new(Typing {
        room: room("dev"),
        nick: "bob".into(),
        ts: 9,
    }));
    assert_eq!(
        json(&typing),
        json!({"type":"typing","room":"dev","nick":"bob","ts":9})
    );
    let dm = Rc::new(Dm {
        account: None,
        from: "alice".into(),
        to: "bob".into(),
        ts: 7,
        text: "psst".into(),
    });
    assert_eq!(
        json(&Event::Dm(dm.clone())),
        json!({"type":"dm","from":"alice","to":"bob","ts":7,"text":"psst"})
    );
    assert_eq!(
        json(&Event::Reply(
            Reply::DmSent(dm, Some("c1".into())),
            Some("r2".into())
        )),
        json!({"type":"dm","from":"alice","to":"bob","ts":7,"text":"psst","cid":"c1","ref":"r2"})
    );
}

#[test]
fn renders_every_reply() {
    use serde_json::json;
    let limits = Limits {
        max_line: 4096,
        max_message: 4000,
        history: 50,
        rate: 10,
        burst: 20,
        max_ws_message: 2_097_152,
        max_image: 1_048_576,
    };
    let reply = |r, rf: Option<&str>| json(&Event::Reply(r, rf.map(str::to_string)));
    assert_eq!(
        reply(
            Reply::Welcome {
                account: None,
                nick: "quiet-heron-42".into(),
                session: Some("tok".into()),
                store_id: "sid".into(),
                limits,
            },
            None
        ),
        json!({"type":"welcome","nick":"quiet-heron-42","server":SERVER,"session":"tok",
               "store_id":"sid","limits":{"max_message":4000,"max_ws_message":2_097_152,
               "max_image":1_048_576,"rate":10,"burst":20,"history":50}})
    );
    assert!(SERVER.starts_with("natter/"));
    assert_eq!(
        reply(
            Reply::Nick {
                nick: "alice".into()
            },
            Some("n")
        ),
        json!({"type":"nick","nick":"alice","ref":"n"})
    );
    let joined = Reply::Joined {
        info: Default::default(),
        role: crate::hub::event::Role::Member,
        room: room("lobby"),
        members: crate::hub::names::nick_list(&["alice", "bob"]),
        messages: vec![msg(119, false), msg(120, false)],
        created: false,
        last_seq: 120,
        gap: false,
        store_id: "sid".into(),
    };
    let v = reply(joined, Some("j"));
    assert_eq!(v["type"], "joined");
    assert_eq!(v["members"], json!(["alice", "bob"]));
    assert_eq!(v["messages"][1]["seq"], 120);
    assert_eq!(v["messages"][1]["type"], "message");
    assert_eq!(v["last_seq"], 120);
    assert_eq!(v["store_id"], "sid");
    assert_eq!(v["ref"], "j");
    assert!(v.get("gap").is_none(), "gap only when true");
    let gap = Reply::Joined {
        info: Default::default(),
        role: crate::hub::event::Role::Member,
        room: room("lobby"),
        members: Vec::new(),
        messages: vec![],
        created: false,
        last_seq: 900,
        gap: true,
        store_id: "sid".into(),
    };
    assert_eq!(reply(gap, None)["gap"], json!(true));
    assert_eq!(
        reply(Reply::Left { room: room("dev") }, None),
        json!({"type":"left","room":"dev"})
    );
    assert_eq!(
        reply(
            Reply::Who {
                room: room("dev"),
                members: crate::hub::names::nick_list(&["a"])
            },
            None
        ),
        json!({"type":"who","room":"dev","members":["a"]})
    );
    assert_eq!(
        reply(
            Reply::Rooms {
                rooms: vec![(room("lobby"), 3)]
            },
            None
        ),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":3}]})
    );
    assert_eq!(
        reply(
            Reply::History {
                room: room("lobby"),
                messages: vec![]
            },
            Some("h")
        ),
        json!({"type":"history","room":"lobby","messages":[],"ref":"h"})
    );
    assert_eq!(
        reply(
            Reply::Error {
                code: ErrorCode::NickTaken,
                message: "bob is taken".into()
            },
            Some("x")
        ),
        json!({"type":"error","code":"nick_taken","message":"bob is taken","ref":"x"})
    );
    for line_only in [
        Reply::Current { room: room("a") },
        Reply::Help(Limits::default()),
        Reply::Bye,
        Reply::Report("*** stats: ...\n".into()),
    ] {
        assert_eq!(render(&Event::Reply(line_only, None)), None);
    }
}

#[test]
fn api_pages() {
    let v: serde_json::Value =
        serde_json::from_slice(&render_page(&room("lobby"), &[msg(1, false)])).unwrap();
    assert_eq!(v["room"], "lobby");
    assert_eq!(v["messages"][0]["seq"], 1);
    let v: serde_json::Value =
        serde_json::from_slice(&render_rooms(&[(room("a"), 2), (room("b"), 1)])).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"rooms":[{"name":"a","members":2},{"name":"b","members":1}]})
    );
}

#[test]
fn image_requests_carry_the_decoded_bytes() {
    let r = ok(r#"{"type":"image","room":"lobby","data":"R0lGODlhAQ==","text":"cap","cid":"i1"}"#);
    assert_eq!(
        r.command,
        Command::Image {
            room: room("lobby"),
            data: b"GIF89a\x01".to_vec(),
            text: Some("cap".into()),
            cid: Some("i1".into()),
            id: String::new(),
        }
    );
    assert_eq!(
        refused(r#"{"type":"image","room":"lobby"}"#).0,
        ErrorCode::BadRequest
    );
}

#[test]
fn an_image_message_names_its_media_url() {
    let mut m = (*msg(9, false)).clone();
    m.image = Some(crate::hub::event::ImageRef {
        id: "ab12".into(),
        mime: "image/png",
        size: 34123,
    });
    let v = json(&Event::Message(Rc::new(m)));
    assert_eq!(
        v["image"],
        serde_json::json!({"url":"/media/ab12","mime":"image/png","size":34123})
    );
}
