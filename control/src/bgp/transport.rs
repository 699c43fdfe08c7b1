//! The sockets of BGP sessions: TCP, optionally signed with the TCP MD5 Signature Option
//! (RFC 2385, Linux `TCP_MD5SIG`). Thin on purpose: the session logic is sans-IO elsewhere.
//!
//! RFC 2385 signs every segment with MD5 over a pseudo-header, the TCP header, the payload and
//! the key. The kernel does it; the key belongs to the peer's address and must be set before
//! the first segment: on the connecting socket before `connect`, and on the listening socket
//! for each peer that may connect (a SYN from a peer with a key but without a signature, or
//! with a wrong one, is dropped by the kernel and never reaches `accept`).

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The longest key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `TCP_MD5SIG` (linux/tcp.h).
const TCP_MD5SIG: libc::c_int = 14;

/// `struct tcp_md5sig` (linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: u32,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// Sets (or, with an empty key, removes) the MD5 key for segments to and from `peer` on `fd`.
pub fn set_md5(fd: RawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TCP MD5 key longer than {MD5_MAX_KEY_LEN} bytes"),
        ));
    }
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { mem::zeroed() };
    let (storage, _) = sockaddr(SocketAddr::new(peer, 0));
    sig.addr = storage;
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: `sig` is a valid `tcp_md5sig` of the size given; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast(),
            mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    // The key is on the stack: clear it.
    zeroize::Zeroize::zeroize(&mut sig.key);
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Connects to `peer` from `local` (if given) with the MD5 key `md5` (if given), giving up
/// after `timeout`.
pub fn connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    md5: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let stream = start_connect(peer, local, md5)?;
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if !connect_done(&stream)? {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Starts a connection to `peer` without waiting: the stream is non-blocking; it is
/// connected once [`connect_done`] says so.
pub fn start_connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    md5: Option<&[u8]>,
) -> io::Result<TcpStream> {
    let fd = new_socket(peer.ip())?;
    if let Some(key) = md5 {
        set_md5(fd.as_raw_fd(), peer.ip(), key)?;
    }
    if let Some(local) = local {
        let (addr, len) = sockaddr(SocketAddr::new(local, 0));
        // SAFETY: `addr` is a valid socket address of length `len`.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    set_nonblocking(fd.as_raw_fd(), true)?;
    let (addr, len) = sockaddr(peer);
    // SAFETY: as above.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    let stream = TcpStream::from(fd);
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Whether a connection [`start_connect`] began is up (`Ok(true)`), still in progress
/// (`Ok(false)`) or failed (`Err`).
pub fn connect_done(stream: &TcpStream) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Ok(false);
    }
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    stream.peer_addr().map(|_| true)
}

/// A listening socket on `addr` (address reuse on, so a restart can bind at once).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let fd = new_socket(addr.ip())?;
    let one: libc::c_int = 1;
    // SAFETY: an int option.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: a valid address of length `len`.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain call on an owned socket.
    if unsafe { libc::listen(fd.as_raw_fd(), 64) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

fn new_socket(family_of: IpAddr) -> io::Result<OwnedFd> {
    let domain = if family_of.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is valid for sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn connect_and_accept_with_and_without_md5() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        set_md5(l.as_raw_fd(), "127.0.0.1".parse().unwrap(), b"s3cret").unwrap();
        let mut c = connect(addr, None, Some(b"s3cret"), Duration::from_secs(2)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[test]
    fn a_wrong_or_missing_md5_key_never_connects() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        set_md5(l.as_raw_fd(), "127.0.0.1".parse().unwrap(), b"right").unwrap();
        // The kernel drops the unsigned or badly signed SYNs: the connect times out.
        for key in [Some(&b"wrong"[..]), None] {
            let r = connect(addr, None, key, Duration::from_millis(300));
            assert!(r.is_err(), "connected with key {key:?}");
        }
    }

    #[test]
    fn keys_longer_than_80_bytes_are_refused() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let e = set_md5(l.as_raw_fd(), "127.0.0.1".parse().unwrap(), &[b'k'; 81]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(!e.to_string().contains("kkkk"), "no key in the error");
    }
}
