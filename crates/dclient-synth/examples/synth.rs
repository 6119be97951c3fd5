//! Writes synthetic DICOM files with [`dclient_synth`] (for benchmarks and manual tests).
//!
//! ```text
//! cargo run --release --example synth -- OUT_DIR [--studies N] [--series N] [--instances N]
//!     [--rows N] [--cols N] [--frames N] [--syntax implicit|explicit|big|deflated]
//!     [--modality ct|mr] [--patients N] [--seed N]
//! ```

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use dclient_synth::{DatasetSpec, ImageSize, Modality, Syntax, Synth};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synth: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut out: Option<PathBuf> = None;
    let mut spec = DatasetSpec::default();
    let mut seed: Option<u64> = None;
    let num = |v: Option<String>, name: &str| -> Result<u64, String> {
        v.as_deref().and_then(|s| s.parse().ok()).ok_or_else(|| format!("{name} needs a number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--studies" => spec.studies = num(args.next(), &a)? as usize,
            "--series" => spec.series_per_study = num(args.next(), &a)? as usize,
            "--instances" => spec.instances_per_series = num(args.next(), &a)? as usize,
            "--patients" => spec.patients = num(args.next(), &a)? as usize,
            "--rows" => spec.size.rows = num(args.next(), &a)? as u16,
            "--cols" => spec.size.columns = num(args.next(), &a)? as u16,
            "--frames" => spec.size.frames = num(args.next(), &a)? as u32,
            "--seed" => seed = Some(num(args.next(), &a)?),
            "--syntax" => {
                spec.syntax = match args.next().as_deref() {
                    Some("implicit") => Syntax::ImplicitLe,
                    Some("explicit") => Syntax::ExplicitLe,
                    Some("big") => Syntax::ExplicitBe,
                    Some("deflated") => Syntax::Deflated,
                    other => return Err(format!("unknown syntax {other:?}")),
                }
            }
            "--modality" => {
                spec.modality = match args.next().as_deref() {
                    Some("ct") => Modality::Ct,
                    Some("mr") => Modality::Mr,
                    other => return Err(format!("unknown modality {other:?}")),
                }
            }
            s if !s.starts_with('-') && out.is_none() => out = Some(PathBuf::from(s)),
            s => return Err(format!("unknown argument {s:?}")),
        }
    }
    let out = out.ok_or("usage: synth OUT_DIR [options]")?;
    let _: ImageSize = spec.size;
    let mut synth = seed.map(Synth::new).unwrap_or_else(Synth::from_entropy);
    let files = synth.generate(&out, &spec).map_err(|e| e.to_string())?;
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    println!("{} files, {} bytes in {}", files.len(), bytes, out.display());
    Ok(())
}
