//! UDP keep-alives of phones (RFC 5626 §3.5.2, §4.4.2): a STUN Binding
//! request (RFC 5389 §7) on the SIP port gets a Binding success response
//! with the phone's address as this node sees it, so a phone behind a NAT
//! keeps its binding open and learns when it changes.
//!
//! Only the Binding method without authentication is answered; anything else
//! that is not SIP is dropped, as RFC 5626 §5.4 lets a registrar do.

use std::net::{IpAddr, SocketAddr};

/// The STUN magic cookie (RFC 5389 §6).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Binding request and success response (RFC 5389 §18.1).
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
/// XOR-MAPPED-ADDRESS (RFC 5389 §15.2).
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const HEADER: usize = 20;

/// Whether a datagram is a STUN message rather than SIP: the two top bits
/// zero and the magic cookie in place (RFC 5389 §6, RFC 5626 §4.4.2).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER
        && datagram[0] & 0xC0 == 0
        && u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]) == MAGIC_COOKIE
}

/// The response to a STUN Binding request from `from`, or `None` if the
/// datagram is not one (or its length field disagrees with its size).
pub fn binding_response(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    if !is_stun(request) {
        return None;
    }
    let method = u16::from_be_bytes([request[0], request[1]]);
    let length = usize::from(u16::from_be_bytes([request[2], request[3]]));
    if method != BINDING_REQUEST || length % 4 != 0 || HEADER + length != request.len() {
        return None;
    }
    let transaction = &request[4..HEADER];
    let port = from.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let (family, address): (u8, Vec<u8>) = match from.ip() {
        IpAddr::V4(ip) => (1, (u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes().to_vec()),
        IpAddr::V6(ip) => {
            // XORed with the cookie and the transaction ID (RFC 5389 §15.2).
            let mask: Vec<u8> = transaction.to_vec();
            (
                2,
                ip.octets()
                    .iter()
                    .zip(mask.iter().cycle())
                    .map(|(a, m)| a ^ m)
                    .collect(),
            )
        }
    };
    let mut value = vec![0, family];
    value.extend_from_slice(&port.to_be_bytes());
    value.extend_from_slice(&address);
    let mut out = Vec::with_capacity(HEADER + 4 + value.len());
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(4 + value.len()).ok()?.to_be_bytes());
    out.extend_from_slice(transaction);
    out.extend_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(value.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&value);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Vec<u8> {
        let mut r = vec![0x00, 0x01, 0x00, 0x00];
        r.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        r.extend_from_slice(&[7; 12]);
        r
    }

    #[test]
    fn a_binding_request_gets_the_xored_address() {
        let from: SocketAddr = "192.0.2.1:32853".parse().expect("addr");
        let resp = binding_response(&request(), from).expect("a response");
        assert_eq!(&resp[..2], &[0x01, 0x01]);
        assert_eq!(&resp[4..20], &request()[4..20]);
        // RFC 5769 §2.2's mapping: port 32853 → 0xa147, 192.0.2.1 → e1 12 a6 43.
        assert_eq!(
            &resp[20..32],
            &[0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]
        );
    }

    #[test]
    fn sip_and_other_stun_get_nothing() {
        let from: SocketAddr = "[2001:db8::1]:5060".parse().expect("addr");
        assert!(binding_response(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", from).is_none());
        let mut indication = request();
        indication[1] = 0x11;
        assert!(binding_response(&indication, from).is_none());
        let mut long = request();
        long.push(0);
        assert!(binding_response(&long, from).is_none());
        assert_eq!(binding_response(&request(), from).map(|r| r.len()), Some(44));
    }
}
