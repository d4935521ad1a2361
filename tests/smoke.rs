mod common;
use common::*;

#[test]
fn two_clients_chat() {
    let s = Server::start(&[]);
    let mut a = s.line_client();
    let mut b = s.line_client();
    a.line(); // b joined
    a.send("hi");
    assert_eq!(b.event(), format!("#lobby <{}> hi", a.nick));
}
