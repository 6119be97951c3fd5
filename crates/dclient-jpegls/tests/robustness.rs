//! Fuzz-style: thousands of mutated and truncated codestreams (bit flips, random bytes,
//! inserted 0xFF, cut and repeated ranges, lying header fields) must each give a value
//! or a typed error, never a panic, within a memory limit. Bounded in count and in time;
//! deterministic (seeded).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use common::*;
use dclient_jpegls::decode_with_limit;

/// Valid streams of every kind the decoder handles, from our encoder (whose coded data
/// equals CharLS's), and one with restart intervals.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let configs = [
        (24u32, 16u32, 8u8, 1u8, Interleave::None, 0u8),
        (24, 16, 12, 1, Interleave::None, 3),
        (24, 16, 16, 1, Interleave::None, 0),
        (24, 16, 2, 1, Interleave::None, 0),
        (24, 16, 8, 3, Interleave::Line, 0),
        (24, 16, 8, 3, Interleave::Sample, 2),
        (7, 5, 10, 4, Interleave::Sample, 0),
    ];
    for (w, h, bits, nc, ilv, near) in configs {
        let img = Image::mono("seed", w, h, if bits > 8 { 16 } else { 8 }, u16::from(bits)).with(
            1,
            u16::from(nc),
            false,
        );
        out.push(encode(&img.frame_bytes(0, bits), &img.info(bits, ilv), near).unwrap());
    }
    let strip = Image::mono("strip", 20, 3, 8, 8);
    let a = encode(&strip.frame_bytes(0, 8), &strip.info(8, Interleave::None), 0).unwrap();
    out.push(splice_restart_intervals(&[a.clone(), a.clone(), a], 9, 3).unwrap());
    out
}

fn mutate(rng: &mut Rng, s: &[u8]) -> Vec<u8> {
    let mut m = s.to_vec();
    for _ in 0..1 + rng.below(4) {
        if m.is_empty() {
            break;
        }
        let at = rng.below(m.len() as u64) as usize;
        match rng.below(9) {
            0 => m[at] ^= 1 << rng.below(8),
            1 => m[at] = rng.next() as u8,
            2 => m.insert(at, 0xFF),
            3 => m.truncate(at),
            4 => {
                let end = (at + 1 + rng.below(16) as usize).min(m.len());
                m.drain(at..end);
            }
            5 => {
                let end = (at + 1 + rng.below(32) as usize).min(m.len());
                let chunk = m[at..end].to_vec();
                m.splice(at..at, chunk);
            }
            // The header: lengths, dimensions, P, NEAR, ILV, component ids.
            6 => {
                let h = rng.below(m.len().min(40) as u64) as usize;
                m[h] = rng.next() as u8;
            }
            7 => {
                let h = rng.below(m.len().min(40) as u64) as usize;
                m[h] = [0x00, 0x01, 0x02, 0x04, 0x10, 0x7F, 0x80, 0xFF][rng.below(8) as usize];
            }
            _ => m[at] = 0xFF,
        }
    }
    m
}

/// Decodes `input` (true: it decoded), turning a panic into an error that shows the input.
fn survive(input: &[u8], limit: usize) -> Result<bool, String> {
    match catch_unwind(AssertUnwindSafe(|| decode_with_limit(input, limit))) {
        Ok(Ok((info, px))) => {
            // A success is a whole frame within the limit.
            assert_eq!(Some(px.len()), info.frame_bytes());
            assert!(px.len() <= limit);
            Ok(true)
        }
        Ok(Err(e)) => {
            assert!(!e.to_string().is_empty());
            Ok(false)
        }
        Err(_) => Err(format!("panic on {} bytes: {:02x?}", input.len(), input)),
    }
}

#[test]
fn mutated_streams_never_panic() {
    let seeds = seeds();
    let mut rng = Rng::new(2024);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut runs, mut ok) = (0, 0);
    for i in 0..10_000 {
        if Instant::now() > deadline {
            break;
        }
        let seed = &seeds[i % seeds.len()];
        let m = mutate(&mut rng, seed);
        // A small limit keeps lying headers cheap; some runs use the default limit.
        let limit = if i % 50 == 0 { dclient_jpegls::DEFAULT_MAX_BYTES } else { 1 << 20 };
        match survive(&m, limit) {
            Ok(decoded) => ok += usize::from(decoded),
            Err(e) => panic!("run {i}: {e}"),
        }
        runs += 1;
    }
    eprintln!("{runs} mutated streams, {ok} still decoded");
    assert!(runs >= 1000, "only {runs} runs in the time bound");
}

#[test]
fn every_truncation_of_every_seed_is_an_error_or_a_frame() {
    for seed in seeds() {
        for len in 0..seed.len() {
            survive(&seed[..len], 1 << 20).unwrap();
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng::new(5);
    for i in 0..3000 {
        let len = rng.below(200) as usize;
        let mut g: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && g.len() >= 2 {
            // Often give it a plausible start.
            g[0] = 0xFF;
            g[1] = 0xD8;
        }
        survive(&g, 1 << 20).unwrap();
    }
}
