//! Loopback ports: free ports, closed ports, a listener that never answers.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The only address the kit talks to: 127.0.0.1.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Ports already handed out by this process, so that two peers started in
/// parallel tests of one test binary never get the same port from us.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((LOOPBACK, port))
}

/// A port that was free on 127.0.0.1 a moment ago: bound to `127.0.0.1:0`,
/// then released. Another process may take it before you do (a small race,
/// which the peer start functions handle by retrying with a new port). Never
/// returns the same port twice within one process.
///
/// Panics if 127.0.0.1 cannot be bound at all.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let listener = TcpListener::bind(loopback(0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(listener);
        if port == 0 {
            continue;
        }
        let mut set = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if set.insert(port) {
            return port;
        }
    }
    panic!("no fresh free port on 127.0.0.1 after 200 tries");
}

/// Marks a port bound by the kit itself as handed out, so that [`free_port`] never
/// returns it.
pub(crate) fn reserve(port: u16) {
    HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner()).insert(port);
}

/// A port on 127.0.0.1 with no listener (a connect gets "connection
/// refused"). Like [`free_port`], it is reserved within this process, so no
/// peer of the kit will be started on it.
pub fn closed_port() -> u16 {
    free_port()
}

/// Polls until nothing accepts TCP connections on `127.0.0.1:port` any more,
/// every 50 ms, for at most `timeout`. Returns whether the port got closed.
pub fn wait_port_closed(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&loopback(port), Duration::from_millis(200)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A listener on 127.0.0.1 that accepts connections and never answers nor
/// reads: the sockets are held open until the guard is dropped. For timeout
/// tests (ARTIM, connect, DIMSE).
pub struct SilentListener {
    port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl SilentListener {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // The accept loop polls the flag every 10 ms.
            let _ = thread.join();
        }
    }
}

/// Starts a [`SilentListener`] on a fresh `127.0.0.1` port and returns it with
/// its port. The connections are closed when the guard is dropped.
///
/// Panics if 127.0.0.1 cannot be bound.
pub fn silent_listener() -> (SilentListener, u16) {
    let listener =
        TcpListener::bind(loopback(0)).unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
    HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner()).insert(port);
    listener.set_nonblocking(true).unwrap_or_else(|e| panic!("set_nonblocking: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let thread = {
        let stop = stop.clone();
        let accepted = accepted.clone();
        std::thread::Builder::new()
            .name(format!("silent-listener-{port}"))
            .spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            held.push(stream);
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                drop(held);
            })
            .unwrap_or_else(|e| panic!("spawn silent listener thread: {e}"))
    };
    (SilentListener { port, stop, accepted, thread: Some(thread) }, port)
}

/// A TCP relay on 127.0.0.1 to `127.0.0.1:target` that forwards each direction at most
/// at its rate (bytes per second; 0: as fast as it can), changeable while it runs: a slow
/// link, to catch a transfer in the middle of a file. Dropping it stops it (and its
/// connections, within 100 ms).
pub struct ThrottledProxy {
    port: u16,
    rate: Arc<std::sync::atomic::AtomicU64>,
    forwarded: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ThrottledProxy {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the rate of each direction, in bytes per second (0: unlimited).
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Bytes forwarded so far, both directions.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottledProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    rate: Arc<std::sync::atomic::AtomicU64>,
    forwarded: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    use std::io::{Read, Write};
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let r = rate.load(Ordering::SeqCst);
        // At a limited rate, 20 slices a second.
        let want = if r == 0 { buf.len() } else { (r / 20).clamp(1, buf.len() as u64) as usize };
        match from.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                forwarded.fetch_add(n as u64, Ordering::SeqCst);
                if r > 0 {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / r as f64));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}

/// Starts a [`ThrottledProxy`] to `127.0.0.1:target` at `bytes_per_sec` (0: unlimited).
///
/// Panics if 127.0.0.1 cannot be bound.
pub fn throttled_proxy(target: u16, bytes_per_sec: u64) -> ThrottledProxy {
    let listener =
        TcpListener::bind(loopback(0)).unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
    reserve(port);
    listener.set_nonblocking(true).unwrap_or_else(|e| panic!("set_nonblocking: {e}"));
    let rate = Arc::new(std::sync::atomic::AtomicU64::new(bytes_per_sec));
    let forwarded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (rate, forwarded, stop) = (rate.clone(), forwarded.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("throttled-proxy-{port}"))
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let _ = client.set_nonblocking(false);
                            let Ok(server) = TcpStream::connect_timeout(
                                &loopback(target),
                                Duration::from_secs(5),
                            ) else {
                                continue;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                                continue;
                            };
                            for (a, b) in [(client, s2), (server, c2)] {
                                let (r, f, s) = (rate.clone(), forwarded.clone(), stop.clone());
                                let _ = std::thread::Builder::new()
                                    .name(format!("proxy-pump-{port}"))
                                    .spawn(move || pump(a, b, r, f, s));
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .unwrap_or_else(|e| panic!("spawn proxy thread: {e}"))
    };
    ThrottledProxy { port, rate, forwarded, stop, thread: Some(thread) }
}
