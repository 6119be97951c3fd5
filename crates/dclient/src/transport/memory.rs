//! Streams without sockets, for running whole associations in memory: a connected
//! [`pipe`] of two [`MemoryStream`]s (each end a [`Stream`] the driver runs an association
//! over, on two threads), and a [`ScriptedStream`] that reads a fixed input and keeps what
//! is written (one thread, no waiting: what a fuzzer feeds a server).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Stream;

/// One direction of a pipe.
#[derive(Debug, Default)]
struct Half {
    buf: VecDeque<u8>,
    /// The writer closed (or either end shut the pipe down).
    closed: bool,
}

#[derive(Debug, Default)]
struct Channel {
    half: Mutex<Half>,
    ready: Condvar,
}

impl Channel {
    fn lock(&self) -> std::sync::MutexGuard<'_, Half> {
        self.half.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// One end of an in-memory [`pipe`]: reads what the other end writes, with the read
/// timeout of a socket; writes never block. Shutting either end down ends both directions.
#[derive(Debug)]
pub struct MemoryStream {
    incoming: Arc<Channel>,
    outgoing: Arc<Channel>,
    read_timeout: Mutex<Option<Duration>>,
}

/// Two connected in-memory streams: what one writes, the other reads.
pub fn pipe() -> (MemoryStream, MemoryStream) {
    let a = Arc::new(Channel::default());
    let b = Arc::new(Channel::default());
    (
        MemoryStream { incoming: a.clone(), outgoing: b.clone(), read_timeout: Mutex::new(None) },
        MemoryStream { incoming: b, outgoing: a, read_timeout: Mutex::new(None) },
    )
}

impl Read for MemoryStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let timeout = *self.read_timeout.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut half = self.incoming.lock();
        loop {
            if !half.buf.is_empty() {
                let n = buf.len().min(half.buf.len());
                for (dst, src) in buf.iter_mut().zip(half.buf.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            if half.closed {
                return Ok(0);
            }
            half = match deadline {
                None => self.incoming.ready.wait(half).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    self.incoming
                        .ready
                        .wait_timeout(half, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl Write for MemoryStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut half = self.outgoing.lock();
        if half.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        half.buf.extend(buf);
        drop(half);
        self.outgoing.ready.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for MemoryStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        *self.read_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }

    fn set_write_timeout(&self, _t: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn shutdown(&self) {
        self.incoming.close();
        self.outgoing.close();
    }

    fn readable_now(&self) -> bool {
        let half = self.incoming.lock();
        !half.buf.is_empty() || half.closed
    }
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        self.outgoing.close();
    }
}

/// A stream that reads its input (in reads of at most `chunk` bytes, then the end of the
/// stream) and keeps what is written (up to a cap, past which writes fail as a broken
/// connection would). Reads never wait, so no timeout ever runs out.
///
/// The input comes in segments, and no read crosses from one to the next: a peer that
/// sends its A-ASSOCIATE-RQ, then (once answered) the rest, is one segment for the
/// request and one for the rest, and the acceptor answers the request before it reads on.
#[derive(Debug)]
pub struct ScriptedStream {
    segments: VecDeque<Vec<u8>>,
    at: usize,
    chunk: usize,
    output: Arc<Mutex<Vec<u8>>>,
    max_output: usize,
}

impl ScriptedStream {
    /// A stream reading `input` as one segment, keeping at most `max_output` written bytes
    /// in the shared buffer returned with it.
    pub fn new(
        input: Vec<u8>,
        chunk: usize,
        max_output: usize,
    ) -> (ScriptedStream, Arc<Mutex<Vec<u8>>>) {
        ScriptedStream::with_segments(vec![input], chunk, max_output)
    }

    /// A stream reading `segments` in order, no read crossing from one to the next.
    pub fn with_segments(
        segments: Vec<Vec<u8>>,
        chunk: usize,
        max_output: usize,
    ) -> (ScriptedStream, Arc<Mutex<Vec<u8>>>) {
        let output = Arc::new(Mutex::new(Vec::new()));
        let s = ScriptedStream {
            segments: segments.into(),
            at: 0,
            chunk: chunk.max(1),
            output: output.clone(),
            max_output,
        };
        (s, output)
    }

    /// A client's bytes as it would send them on a connection: its first PDU (by the
    /// length in its header), then the rest once the first was answered.
    pub fn client_input(
        input: &[u8],
        chunk: usize,
        max_output: usize,
    ) -> (ScriptedStream, Arc<Mutex<Vec<u8>>>) {
        let first = match input {
            [_, _, a, b, c, d, ..] => {
                let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
                input.len().min(len.saturating_add(6))
            }
            _ => input.len(),
        };
        let (head, rest) = input.split_at(first);
        ScriptedStream::with_segments(vec![head.to_vec(), rest.to_vec()], chunk, max_output)
    }
}

impl Read for ScriptedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.segments.front().is_some_and(|s| self.at >= s.len()) {
            self.segments.pop_front();
            self.at = 0;
        }
        let Some(seg) = self.segments.front() else { return Ok(0) };
        let n = buf.len().min(self.chunk).min(seg.len() - self.at);
        buf[..n].copy_from_slice(&seg[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for ScriptedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        if out.len() + buf.len() > self.max_output {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for ScriptedStream {
    fn set_read_timeout(&self, _t: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&self, _t: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn shutdown(&self) {}

    fn readable_now(&self) -> bool {
        true // data, or the end of the stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_carries_bytes_both_ways_and_ends_on_shutdown() {
        let (mut a, mut b) = pipe();
        a.write_all(b"ping").expect("write");
        let mut buf = [0u8; 8];
        assert_eq!(b.read(&mut buf).expect("read"), 4);
        assert_eq!(&buf[..4], b"ping");
        b.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
        let e = b.read(&mut buf).expect_err("nothing to read");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(!b.readable_now());
        b.write_all(b"pong").expect("write back");
        assert!(a.readable_now());
        a.shutdown();
        assert_eq!(a.read(&mut buf).expect("buffered first"), 4);
        assert_eq!(b.read(&mut buf).expect("end"), 0);
        assert_eq!(b.write(b"x").expect_err("closed").kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_scripted_stream_reads_its_input_then_ends_and_caps_its_output() {
        let (mut s, out) = ScriptedStream::new(b"abcdef".to_vec(), 4, 3);
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).expect("read"), 4);
        assert_eq!(s.read(&mut buf).expect("read"), 2);
        assert_eq!(s.read(&mut buf).expect("end"), 0);
        s.write_all(b"xyz").expect("fits");
        assert!(s.write(b"!").is_err());
        assert_eq!(out.lock().expect("lock").as_slice(), b"xyz");

        // A client's first PDU is a read of its own.
        let input = [&[1u8, 0, 0, 0, 0, 2, 9, 9][..], b"rest"].concat();
        let (mut s, _) = ScriptedStream::client_input(&input, 1024, 0);
        assert_eq!(s.read(&mut buf).expect("read"), 8);
        assert_eq!(s.read(&mut buf).expect("read"), 4);
        assert_eq!(s.read(&mut buf).expect("end"), 0);
    }
}
