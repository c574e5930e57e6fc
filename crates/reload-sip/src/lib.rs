//! # reload-sip
//!
//! The SIP usage of RELOAD (RFC 7904) and the SIP front end that lets an
//! unmodified phone use a p2psip node as its registrar and outbound proxy.
pub mod digest;
pub mod dns;
pub mod framing;
pub mod frontend;
pub mod gruu;
pub mod keepalive;
pub mod locate;
pub mod message;
pub mod phone;
pub mod proxy;
pub mod registrar;
pub mod usage;
