//! SIP over a byte stream (TCP, TLS): messages delimited by Content-Length
//! (RFC 3261 §18.3), and the CRLF keep-alives of RFC 5626 §3.5.1.

use crate::message::MAX_MESSAGE_SIZE;

/// One thing read off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole SIP message.
    Message(Vec<u8>),
    /// A keep-alive ping (CRLF CRLF); answer with [`PONG`].
    Ping,
    /// A keep-alive pong (one CRLF).
    Pong,
}

/// The keep-alive ping (RFC 5626 §3.5.1).
pub const PING: &[u8] = b"\r\n\r\n";
/// The keep-alive pong.
pub const PONG: &[u8] = b"\r\n";

/// Why a stream cannot go on: the connection must be closed (RFC 3261 §18.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A message on a stream must say how long its body is.
    #[error("a message on a stream transport has no valid Content-Length")]
    NoContentLength,
    /// The message would be larger than [`MAX_MESSAGE_SIZE`].
    #[error("message larger than {MAX_MESSAGE_SIZE} bytes")]
    TooLarge,
}

/// Cuts a stream into frames.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    /// Adds bytes read off the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.buf.starts_with(PING) {
            self.buf.drain(..PING.len());
            return Ok(Some(Frame::Ping));
        }
        if self.buf.starts_with(PONG) {
            // A lone CRLF is a pong; CRLF CRLF may still be arriving.
            if self.buf.len() < PING.len() && PING.starts_with(&self.buf) {
                return Ok(None);
            }
            self.buf.drain(..PONG.len());
            return Ok(Some(Frame::Pong));
        }
        let Some(head_end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_MESSAGE_SIZE {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let body = content_length(&self.buf[..head_end]).ok_or(FramingError::NoContentLength)?;
        let total = head_end + 4 + body;
        if total > MAX_MESSAGE_SIZE {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(msg)))
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\nVia: x\r\n\r\nhello";

    #[test]
    fn frames_come_whole_whatever_the_reads() {
        let mut stream = PING.to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(PONG);
        stream.extend_from_slice(MSG);
        for chunk in [1, 3, 7, stream.len()] {
            let mut f = StreamFramer::default();
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                f.push(piece);
                while let Some(frame) = f.next_frame().expect("frame") {
                    frames.push(frame);
                }
            }
            assert_eq!(
                frames,
                vec![
                    Frame::Ping,
                    Frame::Message(MSG.to_vec()),
                    Frame::Pong,
                    Frame::Message(MSG.to_vec())
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_stream_message_needs_its_length_and_a_bound() {
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::NoContentLength));
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge));
        let mut f = StreamFramer::default();
        f.push(&vec![b'a'; MAX_MESSAGE_SIZE + 1]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge));
    }
}
