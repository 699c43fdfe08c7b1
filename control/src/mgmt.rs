//! The management socket: a Unix stream socket that takes one JSON `Request` per line and
//! answers one JSON `Response` per line. The server never blocks the caller for long: accept
//! is non-blocking, and a client gets a short read timeout, so the control thread can poll it
//! between its other duties.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum MgmtError {
    #[error("management socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another sdwand is already serving {0}")]
    InUse(PathBuf),
    #[error(
        "cannot reach sdwand at {path}: {source} (is sdwand running? is the socket path right?)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to sdwand at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sdwand sent a response that is not valid: {0}")]
    BadResponse(String),
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

const CLIENT_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_REQUEST: usize = 64 * 1024;

impl Server {
    /// Binds `path`, creating its directory. A stale socket left by a crashed daemon is
    /// replaced; a live one (something answers) is an error.
    pub fn bind(path: &Path) -> Result<Self, MgmtError> {
        let bind_err = |source| MgmtError::Bind {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(bind_err)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(MgmtError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves every client waiting now; returns how many requests were answered.
    pub fn poll(&self, mut handle: impl FnMut(Request) -> Response) -> usize {
        let mut served = 0;
        while let Ok((stream, _)) = self.listener.accept() {
            if serve_one(stream, &mut handle) {
                served += 1;
            }
        }
        served
    }
}

/// Answers one client; false when it closed without asking anything (a liveness probe).
fn serve_one(stream: UnixStream, handle: &mut impl FnMut(Request) -> Response) -> bool {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let mut reader = BufReader::new(stream.take_limit());
    let mut line = String::new();
    let response = match reader.read_line(&mut line) {
        Ok(0) => return false,
        Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => handle(req),
            Err(e) => Response::error(format!("bad request: {e}")),
        },
        Err(e) => Response::error(format!("bad request: {e}")),
    };
    let mut stream = reader.into_inner().into_inner();
    if let Ok(mut text) = serde_json::to_string(&response) {
        text.push('\n');
        let _ = stream.write_all(text.as_bytes());
    }
    true
}

/// Reads at most `MAX_REQUEST` bytes from a client, so a client cannot make the daemon buffer
/// without bound.
trait TakeLimit {
    fn take_limit(self) -> std::io::Take<UnixStream>;
}

impl TakeLimit for UnixStream {
    fn take_limit(self) -> std::io::Take<UnixStream> {
        std::io::Read::take(self, MAX_REQUEST as u64)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: sends one request and reads the response.
pub fn call(path: &Path, request: &Request, timeout: Duration) -> Result<Response, MgmtError> {
    let mut stream = UnixStream::connect(path).map_err(|source| MgmtError::Connect {
        path: path.to_owned(),
        source,
    })?;
    let io = |source| MgmtError::Io {
        path: path.to_owned(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut text =
        serde_json::to_string(request).map_err(|e| MgmtError::BadResponse(e.to_string()))?;
    text.push('\n');
    stream.write_all(text.as_bytes()).map_err(io)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(io)?;
    serde_json::from_str(line.trim()).map_err(|e| MgmtError::BadResponse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_response_over_a_socket() {
        let dir = std::env::temp_dir().join(format!("mgmt-{}", std::process::id()));
        let path = dir.join("sub/test.sock");
        let server = Server::bind(&path).unwrap();
        assert!(
            matches!(Server::bind(&path), Err(MgmtError::InUse(_))),
            "a live socket is not stolen"
        );
        let client = std::thread::spawn({
            let path = path.clone();
            move || call(&path, &Request::ShowVersion, Duration::from_secs(5)).unwrap()
        });
        let start = std::time::Instant::now();
        while server.poll(|req| Response::ok(serde_json::json!({ "echo": format!("{req:?}") })))
            == 0
        {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let resp = client.join().unwrap();
        assert!(resp.ok);
        assert_eq!(resp.data["echo"], "ShowVersion");
        drop(server);
        assert!(!path.exists(), "socket removed on drop");
        let err = call(&path, &Request::ShowVersion, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("is sdwand running"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_socket_is_replaced_and_garbage_gets_an_error() {
        let dir = std::env::temp_dir().join(format!("mgmt-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves the file behind
        assert!(path.exists());
        let server = Server::bind(&path).unwrap();
        let client = std::thread::spawn({
            let path = path.clone();
            move || {
                let mut s = UnixStream::connect(&path).unwrap();
                s.write_all(b"{not json}\n").unwrap();
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line).unwrap();
                line
            }
        });
        let start = std::time::Instant::now();
        while server.poll(|_| Response::ok(serde_json::Value::Null)) == 0 {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let line = client.join().unwrap();
        let resp: Response = serde_json::from_str(&line).unwrap();
        assert!(!resp.ok);
        assert!(resp.error.unwrap().starts_with("bad request"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
