//! The BGP message header (RFC 4271 §4.1) and the framing of a TCP byte stream into messages.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                           Marker                              |
//! +                       (16 x 0xff)                             +
//! |                                                               |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Length counts the whole message, header included: 19 to 4096 (RFC 8654 extended messages
//! are not supported, so the limit is fixed). Errors follow RFC 4271 §6.1: a bad marker is
//! 1/1 Connection Not Synchronized, a bad length 1/2 Bad Message Length with the length field
//! as data, an unknown type 1/3 Bad Message Type with the type as data.

use super::notification::{code, header_subcode};
use super::{DecodeError, EncodeError, Notification};

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
/// The largest message without RFC 8654 extended messages.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The message types this codec reads (RFC 4271 §4.1, RFC 2918 for ROUTE-REFRESH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    pub fn from_u8(t: u8) -> Option<Self> {
        Some(match t {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }

    /// The smallest whole message of this type (RFC 4271 §4.2-4.5, RFC 2918 §3).
    pub fn min_len(self) -> usize {
        match self {
            MessageType::Open => 29,
            MessageType::Update => 23,
            MessageType::Notification => 21,
            MessageType::Keepalive => 19,
            MessageType::RouteRefresh => 23,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageType::Open => "OPEN",
            MessageType::Update => "UPDATE",
            MessageType::Notification => "NOTIFICATION",
            MessageType::Keepalive => "KEEPALIVE",
            MessageType::RouteRefresh => "ROUTE-REFRESH",
        }
    }
}

/// Looks at the start of a receive buffer. `Ok(None)`: not a whole message yet, read more.
/// `Ok(Some(n))`: `buf[..n]` is one whole message, for [`super::Message::decode`]. `Err`: the
/// stream is broken; send the error's NOTIFICATION and close. The marker is checked as soon
/// as its bytes arrive, so a peer that is not speaking BGP is caught early.
pub fn frame(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let marker = buf.get(..16).unwrap_or(buf);
    if marker.iter().any(|&b| b != 0xff) {
        return Err(not_synchronized());
    }
    let Some(&[hi, lo, t]) = buf.get(16..19) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    check_length(len, t)?;
    Ok((buf.len() >= len).then_some(len))
}

/// Checks the header of one whole message and that the buffer is exactly that message.
pub(crate) fn check(msg: &[u8]) -> Result<MessageType, DecodeError> {
    let Some(&[hi, lo, t]) = msg.get(16..19) else {
        return Err(header_error(
            format!("{} bytes, shorter than a header", msg.len()),
            header_subcode::BAD_MESSAGE_LENGTH,
            Vec::new(),
        ));
    };
    if msg.get(..16) != Some(&MARKER[..]) {
        return Err(not_synchronized());
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let kind = check_length(len, t)?;
    if len != msg.len() {
        return Err(header_error(
            format!("length field {len} but {} bytes given", msg.len()),
            header_subcode::BAD_MESSAGE_LENGTH,
            vec![hi, lo],
        ));
    }
    Ok(kind)
}

fn check_length(len: usize, t: u8) -> Result<MessageType, DecodeError> {
    // RFC 4271 §6.1: marker, then length, then type.
    let [hi, lo] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(header_error(
            format!("length {len} outside {HEADER_LEN}..={MAX_MESSAGE_LEN}"),
            header_subcode::BAD_MESSAGE_LENGTH,
            vec![hi, lo],
        ));
    }
    let Some(kind) = MessageType::from_u8(t) else {
        return Err(header_error(
            format!("unknown message type {t}"),
            header_subcode::BAD_MESSAGE_TYPE,
            vec![t],
        ));
    };
    let too_short = len < kind.min_len();
    let keepalive_too_long = kind == MessageType::Keepalive && len != HEADER_LEN;
    if too_short || keepalive_too_long {
        return Err(header_error(
            format!("length {len} impossible for {}", kind.name()),
            header_subcode::BAD_MESSAGE_LENGTH,
            vec![hi, lo],
        ));
    }
    Ok(kind)
}

fn not_synchronized() -> DecodeError {
    header_error(
        "marker is not all ones".into(),
        header_subcode::CONNECTION_NOT_SYNCHRONIZED,
        Vec::new(),
    )
}

fn header_error(reason: String, subcode: u8, data: Vec<u8>) -> DecodeError {
    DecodeError::Header {
        reason,
        notification: Notification::new(code::MESSAGE_HEADER, subcode, data),
    }
}

/// Appends a header with a zero length, to be filled by [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>, kind: MessageType) {
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, kind as u8]);
}

/// Writes the length of the message that starts at `start`, checking the 4096-byte limit.
pub(crate) fn finish(out: &mut [u8], start: usize, kind: MessageType) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(start);
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::TooLong { kind, len });
    }
    let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong { kind, len })?;
    if let Some(field) = out.get_mut(start + 16..start + 18) {
        field.copy_from_slice(&len16.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u16, t: u8) -> Vec<u8> {
        let mut b = MARKER.to_vec();
        b.extend_from_slice(&len.to_be_bytes());
        b.push(t);
        b
    }

    #[test]
    fn frame_waits_for_the_whole_message() {
        let mut b = header(23, 2);
        assert_eq!(frame(&b[..10]).unwrap(), None);
        assert_eq!(frame(&b).unwrap(), None);
        b.extend_from_slice(&[0, 0, 0, 0, 0xaa]);
        assert_eq!(frame(&b).unwrap(), Some(23));
        assert_eq!(frame(&[]).unwrap(), None);
    }

    #[test]
    fn bad_marker_is_caught_before_the_header_is_complete() {
        let e = frame(&[0xff, 0xff, 0x00]).unwrap_err();
        assert_eq!((e.notification().code, e.notification().subcode), (1, 1));
    }

    #[test]
    fn bad_lengths_give_1_2_with_the_length_as_data() {
        for (len, t) in [
            (18u16, 4u8),
            (4097, 2),
            (20, 4),
            (28, 1),
            (22, 2),
            (20, 3),
            (22, 5),
        ] {
            let e = frame(&header(len, t)).unwrap_err();
            let n = e.notification();
            assert_eq!((n.code, n.subcode), (1, 2), "{len} {t}");
            assert_eq!(n.data, len.to_be_bytes().to_vec());
        }
        // The largest message is fine.
        assert_eq!(frame(&header(4096, 2)).unwrap(), None);
    }

    #[test]
    fn unknown_type_gives_1_3_with_the_type_as_data() {
        for t in [0u8, 6, 255] {
            let e = frame(&header(19, t)).unwrap_err();
            assert_eq!(
                *e.notification(),
                Notification::new(1, 3, vec![t]),
                "type {t}"
            );
        }
    }

    #[test]
    fn check_wants_exactly_one_message() {
        let mut b = header(19, 4);
        assert_eq!(check(&b).unwrap(), MessageType::Keepalive);
        b.push(0);
        assert_eq!(check(&b).unwrap_err().notification().subcode, 2);
        assert!(check(&b[..5]).is_err());
    }

    #[test]
    fn finish_refuses_oversized_messages() {
        let mut out = Vec::new();
        begin(&mut out, MessageType::Update);
        out.resize(4097, 0);
        assert!(matches!(
            finish(&mut out, 0, MessageType::Update),
            Err(EncodeError::TooLong { len: 4097, .. })
        ));
    }
}
