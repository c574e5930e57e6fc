//! A minimal pcap writer: Ethernet/IPv4 frames carrying TCP segments or UDP
//! datagrams, so a capture of sample traffic opens in Wireshark and tshark.

use std::net::SocketAddrV4;

/// pcap's LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;

/// A capture being built in memory.
#[derive(Default)]
pub struct Pcap {
    bytes: Vec<u8>,
    /// Virtual capture clock in microseconds; each packet advances it by 1 ms.
    clock_us: u64,
}

impl Pcap {
    /// An empty capture with the pcap global header.
    pub fn new() -> Self {
        let mut p = Pcap::default();
        p.bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microsecond timestamps
        p.bytes.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        p.bytes.extend_from_slice(&4u16.to_le_bytes());
        p.bytes.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        p.bytes.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        p.bytes.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        p.bytes.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        p.clock_us = 1_795_000_000_000_000;
        p
    }

    /// The capture file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn record(&mut self, frame: &[u8]) {
        self.clock_us += 1000;
        let secs = (self.clock_us / 1_000_000) as u32;
        let usecs = (self.clock_us % 1_000_000) as u32;
        let len = frame.len() as u32;
        for v in [secs, usecs, len, len] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(frame);
    }

    /// Appends a UDP datagram.
    pub fn udp(&mut self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
        let mut udp = Vec::with_capacity(8 + payload.len());
        udp.extend_from_slice(&src.port().to_be_bytes());
        udp.extend_from_slice(&dst.port().to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let sum = transport_checksum(src, dst, 17, &udp);
        udp[6..8].copy_from_slice(&(if sum == 0 { 0xffff } else { sum }).to_be_bytes());
        self.ip_frame(src, dst, 17, &udp);
    }

    /// Appends a TCP segment.
    pub fn tcp(&mut self, src: SocketAddrV4, dst: SocketAddrV4, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&src.port().to_be_bytes());
        tcp.extend_from_slice(&dst.port().to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push(5 << 4); // data offset: 5 words, no options
        tcp.push(flags);
        tcp.extend_from_slice(&65_535u16.to_be_bytes()); // window
        tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        tcp.extend_from_slice(payload);
        let sum = transport_checksum(src, dst, 6, &tcp);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        self.ip_frame(src, dst, 6, &tcp);
    }

    fn ip_frame(&mut self, src: SocketAddrV4, dst: SocketAddrV4, protocol: u8, transport: &[u8]) {
        let mut f = Vec::with_capacity(14 + 20 + transport.len());
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]); // destination MAC (locally administered)
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]); // source MAC
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let ip_start = f.len();
        f.push(0x45);
        f.push(0);
        f.extend_from_slice(&((20 + transport.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0]); // id, don't fragment
        f.push(64);
        f.push(protocol);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&src.ip().octets());
        f.extend_from_slice(&dst.ip().octets());
        let sum = checksum(&f[ip_start..], 0);
        f[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(transport);
        self.record(&f);
    }
}

/// The Internet checksum (RFC 1071) over `data`, starting from `initial`.
fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// TCP/UDP checksum including the IPv4 pseudo-header.
fn transport_checksum(src: SocketAddrV4, dst: SocketAddrV4, protocol: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, protocol]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    let partial = !checksum(&pseudo, 0);
    checksum(segment, u32::from(partial))
}

#[cfg(test)]
mod tests {
    use super::checksum;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0), 0x220d);
    }
}
