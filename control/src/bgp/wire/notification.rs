//! NOTIFICATION (RFC 4271 §4.5), the names of its codes and subcodes (IANA "BGP Error
//! (Notification) Codes" and "... Subcodes"), and the shutdown communication of RFC 9003.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Shutdown communication (RFC 9003 §2), the data of Cease / Administrative Shutdown (2) and
//! Cease / Administrative Reset (4):
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code 6  |    Subcode    |    Length     |     ...       \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+               /
//! \                                                               \
//! /                 ... Shutdown Communication ...                /
//! \                                                               \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Length is 0-255 octets of UTF-8 (RFC 9003 raised RFC 8203's 128). A malformed
//! communication must not be logged verbatim (RFC 9003 §5): [`Notification::shutdown_message`]
//! returns an error instead, and `Display` shows only what decoded cleanly.

use std::fmt;

use super::DecodeError;

/// Error codes.
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    /// RFC 7313 §5.
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
    /// RFC 9687.
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;
}

/// Subcodes of Message Header Error (1).
pub mod header_subcode {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of OPEN Message Error (2).
pub mod open_subcode {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// RFC 5492 §5.
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    /// RFC 9234.
    pub const ROLE_MISMATCH: u8 = 11;
}

/// Subcodes of UPDATE Message Error (3).
pub mod update_subcode {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of Finite State Machine Error (5), RFC 6608.
pub mod fsm_subcode {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Subcodes of Cease (6), RFC 4486, RFC 8538, RFC 9384.
pub mod cease_subcode {
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;
}

/// Subcodes of ROUTE-REFRESH Message Error (7), RFC 7313.
pub mod route_refresh_subcode {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// The longest shutdown communication (RFC 9003 §2).
pub const SHUTDOWN_MAX_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// Why a shutdown communication cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShutdownError {
    #[error("shutdown communication of {0} bytes, more than {SHUTDOWN_MAX_LEN}")]
    TooLong(usize),
    #[error("shutdown communication length {claimed} but {available} bytes of data")]
    Truncated { claimed: usize, available: usize },
    #[error("shutdown communication is not UTF-8")]
    NotUtf8,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// Cease with a shutdown communication (RFC 9003): `subcode` is
    /// [`cease_subcode::ADMINISTRATIVE_SHUTDOWN`] or [`cease_subcode::ADMINISTRATIVE_RESET`].
    pub fn shutdown(subcode: u8, message: &str) -> Result<Self, ShutdownError> {
        let len = message.len();
        let len8 = u8::try_from(len).map_err(|_| ShutdownError::TooLong(len))?;
        let mut data = Vec::with_capacity(1 + len);
        data.push(len8);
        data.extend_from_slice(message.as_bytes());
        Ok(Notification::new(code::CEASE, subcode, data))
    }

    /// The shutdown communication, when this is a Cease / Administrative Shutdown or Reset
    /// that carries one. Bytes after the communication are ignored.
    pub fn shutdown_message(&self) -> Option<Result<String, ShutdownError>> {
        let carries = self.code == code::CEASE
            && matches!(
                self.subcode,
                cease_subcode::ADMINISTRATIVE_SHUTDOWN | cease_subcode::ADMINISTRATIVE_RESET
            );
        let (&len, rest) = self.data.split_first().filter(|_| carries)?;
        let len = usize::from(len);
        let Some(text) = rest.get(..len) else {
            return Some(Err(ShutdownError::Truncated {
                claimed: len,
                available: rest.len(),
            }));
        };
        Some(
            std::str::from_utf8(text)
                .map(str::to_owned)
                .map_err(|_| ShutdownError::NotUtf8),
        )
    }

    /// The body (code, subcode, data). The header already guaranteed two bytes, but a body
    /// handed in directly is checked too.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification::new(*code, *subcode, data.to_vec())),
            _ => Err(DecodeError::Notification {
                reason: format!("{} bytes, fewer than code and subcode", body.len()),
                // RFC 4271 §6.1 would answer 1/2, but a NOTIFICATION is never answered
                // with one (§6.4): the session just closes.
                notification: Notification::new(
                    code::MESSAGE_HEADER,
                    header_subcode::BAD_MESSAGE_LENGTH,
                    Vec::new(),
                ),
            }),
        }
    }

    pub fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }

    pub fn subcode_name(&self) -> &'static str {
        subcode_name(self.code, self.subcode)
    }
}

/// The IANA name of an error code, for logs and `show bgp`.
pub fn code_name(c: u8) -> &'static str {
    match c {
        code::MESSAGE_HEADER => "Message Header Error",
        code::OPEN_MESSAGE => "OPEN Message Error",
        code::UPDATE_MESSAGE => "UPDATE Message Error",
        code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
        code::FSM => "Finite State Machine Error",
        code::CEASE => "Cease",
        code::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH Message Error",
        code::SEND_HOLD_TIMER_EXPIRED => "Send Hold Timer Expired",
        _ => "Unknown",
    }
}

/// The IANA name of a subcode under its code.
pub fn subcode_name(c: u8, s: u8) -> &'static str {
    match (c, s) {
        (code::MESSAGE_HEADER, 1) => "Connection Not Synchronized",
        (code::MESSAGE_HEADER, 2) => "Bad Message Length",
        (code::MESSAGE_HEADER, 3) => "Bad Message Type",
        (code::OPEN_MESSAGE, 1) => "Unsupported Version Number",
        (code::OPEN_MESSAGE, 2) => "Bad Peer AS",
        (code::OPEN_MESSAGE, 3) => "Bad BGP Identifier",
        (code::OPEN_MESSAGE, 4) => "Unsupported Optional Parameter",
        (code::OPEN_MESSAGE, 5) => "Authentication Failure (deprecated)",
        (code::OPEN_MESSAGE, 6) => "Unacceptable Hold Time",
        (code::OPEN_MESSAGE, 7) => "Unsupported Capability",
        (code::OPEN_MESSAGE, 11) => "Role Mismatch",
        (code::UPDATE_MESSAGE, 1) => "Malformed Attribute List",
        (code::UPDATE_MESSAGE, 2) => "Unrecognized Well-known Attribute",
        (code::UPDATE_MESSAGE, 3) => "Missing Well-known Attribute",
        (code::UPDATE_MESSAGE, 4) => "Attribute Flags Error",
        (code::UPDATE_MESSAGE, 5) => "Attribute Length Error",
        (code::UPDATE_MESSAGE, 6) => "Invalid ORIGIN Attribute",
        (code::UPDATE_MESSAGE, 7) => "AS Routing Loop (deprecated)",
        (code::UPDATE_MESSAGE, 8) => "Invalid NEXT_HOP Attribute",
        (code::UPDATE_MESSAGE, 9) => "Optional Attribute Error",
        (code::UPDATE_MESSAGE, 10) => "Invalid Network Field",
        (code::UPDATE_MESSAGE, 11) => "Malformed AS_PATH",
        (code::FSM, 1) => "Unexpected Message in OpenSent State",
        (code::FSM, 2) => "Unexpected Message in OpenConfirm State",
        (code::FSM, 3) => "Unexpected Message in Established State",
        (code::CEASE, 1) => "Maximum Number of Prefixes Reached",
        (code::CEASE, 2) => "Administrative Shutdown",
        (code::CEASE, 3) => "Peer De-configured",
        (code::CEASE, 4) => "Administrative Reset",
        (code::CEASE, 5) => "Connection Rejected",
        (code::CEASE, 6) => "Other Configuration Change",
        (code::CEASE, 7) => "Connection Collision Resolution",
        (code::CEASE, 8) => "Out of Resources",
        (code::CEASE, 9) => "Hard Reset",
        (code::CEASE, 10) => "BFD Down",
        (code::ROUTE_REFRESH_MESSAGE, 1) => "Invalid Message Length",
        (_, 0) => "Unspecific",
        _ => "Unknown",
    }
}

impl fmt::Display for Notification {
    /// `Cease/Administrative Shutdown (6/2) "maintenance"`: names, numbers, and a shutdown
    /// communication only when it decoded cleanly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ({}/{})",
            self.code_name(),
            self.subcode_name(),
            self.code,
            self.subcode
        )?;
        match self.shutdown_message() {
            Some(Ok(m)) => write!(f, " {m:?}"),
            Some(Err(e)) => write!(f, " [{e}]"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let n = Notification::new(3, 5, vec![0x80, 4, 3, 0, 0, 0]);
        let mut b = Vec::new();
        n.encode_body(&mut b);
        assert_eq!(b, [3, 5, 0x80, 4, 3, 0, 0, 0]);
        assert_eq!(Notification::decode(&b).unwrap(), n);
        assert!(Notification::decode(&[6]).is_err());
    }

    #[test]
    fn names() {
        let n = Notification::new(3, 9, vec![]);
        assert_eq!(n.code_name(), "UPDATE Message Error");
        assert_eq!(n.subcode_name(), "Optional Attribute Error");
        assert_eq!(
            n.to_string(),
            "UPDATE Message Error/Optional Attribute Error (3/9)"
        );
        assert_eq!(subcode_name(4, 0), "Unspecific");
        assert_eq!(subcode_name(2, 99), "Unknown");
        assert_eq!(code_name(42), "Unknown");
    }

    #[test]
    fn shutdown_communication_round_trip() {
        let n = Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "maintenance ü")
            .unwrap();
        assert_eq!(n.data[0] as usize, "maintenance ü".len());
        assert_eq!(n.shutdown_message(), Some(Ok("maintenance ü".to_owned())));
        assert_eq!(
            n.to_string(),
            "Cease/Administrative Shutdown (6/2) \"maintenance ü\""
        );
        let long = "x".repeat(255);
        assert!(Notification::shutdown(4, &long).is_ok());
        assert_eq!(
            Notification::shutdown(4, &"x".repeat(256)),
            Err(ShutdownError::TooLong(256))
        );
    }

    #[test]
    fn malformed_shutdown_communication_is_not_shown() {
        let truncated = Notification::new(6, 2, vec![10, b'a']);
        assert_eq!(
            truncated.shutdown_message(),
            Some(Err(ShutdownError::Truncated {
                claimed: 10,
                available: 1
            }))
        );
        let bad = Notification::new(6, 4, vec![2, 0xff, 0xfe]);
        assert_eq!(bad.shutdown_message(), Some(Err(ShutdownError::NotUtf8)));
        assert!(!bad.to_string().contains('\u{fffd}'));
        // Other subcodes, or no data: nothing to decode.
        assert_eq!(
            Notification::new(6, 3, vec![1, b'a']).shutdown_message(),
            None
        );
        assert_eq!(Notification::new(6, 2, vec![]).shutdown_message(), None);
    }
}
