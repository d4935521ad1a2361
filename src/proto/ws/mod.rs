//! RFC 6455 WebSocket (being written).
