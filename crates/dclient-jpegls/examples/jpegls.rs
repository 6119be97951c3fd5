//! Decodes and encodes JPEG-LS codestreams from files: the tool `scripts/bench-jpegls.py`
//! times against CharLS (DCMTK's `dcmdjpls` / `dcmcjpls`).
//!
//! ```text
//! jpegls decode IN.jls OUT.raw [REPEAT]
//! jpegls encode IN.raw OUT.jls WIDTH HEIGHT BITS COMPONENTS none|line|sample NEAR [REPEAT]
//! jpegls synth ct|rgb|mono8 WIDTH HEIGHT OUT.raw
//! ```
//!
//! With REPEAT > 1 the codec runs that many times in the process and the median time of
//! one run is printed on stderr (the file I/O once).

use std::process::ExitCode;
use std::time::Instant;

use dclient_jpegls::{decode, encode, FrameInfo, Interleave};

fn median_ms(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or(format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}: {}", args[i]))
}

fn run(args: &[String]) -> Result<(), String> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    match cmd {
        "decode" => {
            let input =
                std::fs::read(args.get(1).ok_or("missing IN")?).map_err(|e| e.to_string())?;
            let repeat: usize = if args.len() > 3 { arg(args, 3, "REPEAT")? } else { 1 };
            let mut times = Vec::new();
            let mut out = None;
            for _ in 0..repeat.max(1) {
                let t = Instant::now();
                out = Some(decode(&input).map_err(|e| e.to_string())?);
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let (info, px) = out.ok_or("no run")?;
            std::fs::write(args.get(2).ok_or("missing OUT")?, &px).map_err(|e| e.to_string())?;
            let ms = median_ms(times);
            eprintln!("decode {info:?}: median {ms:.2} ms, {:.1} MB/s", px.len() as f64 / ms / 1e3);
        }
        "encode" => {
            let input =
                std::fs::read(args.get(1).ok_or("missing IN")?).map_err(|e| e.to_string())?;
            let interleave = match args.get(7).map(String::as_str) {
                Some("none") => Interleave::None,
                Some("line") => Interleave::Line,
                Some("sample") => Interleave::Sample,
                other => return Err(format!("interleave none|line|sample, not {other:?}")),
            };
            let info = FrameInfo {
                width: arg(args, 3, "WIDTH")?,
                height: arg(args, 4, "HEIGHT")?,
                bits_per_sample: arg(args, 5, "BITS")?,
                components: arg(args, 6, "COMPONENTS")?,
                interleave,
            };
            let near: u8 = arg(args, 8, "NEAR")?;
            let repeat: usize = if args.len() > 9 { arg(args, 9, "REPEAT")? } else { 1 };
            let mut times = Vec::new();
            let mut out = Vec::new();
            for _ in 0..repeat.max(1) {
                let t = Instant::now();
                out = encode(&input, &info, near).map_err(|e| e.to_string())?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            std::fs::write(args.get(2).ok_or("missing OUT")?, &out).map_err(|e| e.to_string())?;
            let ms = median_ms(times);
            eprintln!(
                "encode {info:?}: median {ms:.2} ms, {:.1} MB/s, ratio {:.2}",
                input.len() as f64 / ms / 1e3,
                input.len() as f64 / out.len() as f64
            );
        }
        "synth" => {
            let kind = args.get(1).ok_or("missing KIND")?.as_str();
            let (w, h): (usize, usize) = (arg(args, 2, "WIDTH")?, arg(args, 3, "HEIGHT")?);
            std::fs::write(args.get(4).ok_or("missing OUT")?, synth(kind, w, h)?)
                .map_err(|e| e.to_string())?;
        }
        _ => return Err("usage: jpegls decode|encode|synth ... (see the source)".into()),
    }
    Ok(())
}

/// Deterministic test images: `ct` a 12-bit CT-like slice (air, a body disc with soft
/// tissue texture and bright structures, noise), `mono8` its 8-bit version, `rgb` a
/// photo-like 8-bit colour image (smooth gradients, edges, noise).
fn synth(kind: &str, w: usize, h: usize) -> Result<Vec<u8>, String> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = move |amp: f64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0 * amp
    };
    let ct = |x: usize, y: usize, n: f64| -> f64 {
        let (cx, cy) = (x as f64 / w as f64 - 0.5, y as f64 / h as f64 - 0.5);
        let r = (cx * cx + cy * cy).sqrt();
        if r > 0.45 {
            0.0
        } else {
            let tissue = 1040.0 + 40.0 * (cx * 40.0).sin() * (cy * 30.0).cos();
            let bone = if (r - 0.38).abs() < 0.02 || ((cx - 0.1).powi(2) + cy * cy).sqrt() < 0.04 {
                900.0
            } else {
                0.0
            };
            tissue + bone + n
        }
    };
    let mut out = Vec::new();
    match kind {
        "ct" => {
            for y in 0..h {
                for x in 0..w {
                    let v = ct(x, y, noise(12.0)).clamp(0.0, 4095.0) as u16;
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        "mono8" => {
            for y in 0..h {
                for x in 0..w {
                    out.push((ct(x, y, noise(12.0)) / 8.0).clamp(0.0, 255.0) as u8);
                }
            }
        }
        "rgb" => {
            for y in 0..h {
                for x in 0..w {
                    let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
                    let edge = if ((fx * 6.0) as usize + (fy * 4.0) as usize) % 2 == 0 {
                        30.0
                    } else {
                        0.0
                    };
                    for c in 0..3 {
                        let base = 128.0
                            + 90.0 * (fx * 5.0 + c as f64).sin() * (fy * 3.0 - c as f64).cos();
                        out.push((base + edge + noise(4.0)).clamp(0.0, 255.0) as u8);
                    }
                }
            }
        }
        _ => return Err(format!("unknown kind {kind}")),
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jpegls: {e}");
            ExitCode::from(2)
        }
    }
}
