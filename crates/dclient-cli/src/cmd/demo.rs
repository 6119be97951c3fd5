//! `dclient demo`: every operation against built-in SCPs on loopback, step by step.
//!
//! Starts two built-in SCPs in a temporary folder (DEMO-PACS, and DEMO-DEST as a C-MOVE
//! destination), generates two patients' studies (CT and MR, with pixel data), then runs
//! `test`, `echo`, `send`, `find` at the four levels, `get` of a series, `move` of a
//! study and storage commitment of everything sent (plus one instance never sent, which
//! must be reported failed), and checks that what arrived equals what was sent. Exit 0
//! only when every step succeeded.
//!
//! The studies come from [`dclient_synth`] (one CT study of four slices, one MR study of
//! two series of three slices: a phantom image with plausible metadata), every step uses
//! the same library calls a user would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use dclient::{ClientOptions, DClient, Timeouts};
use dclient_scp::header::{read_instance, text};
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dclient_synth::{DatasetSpec, ImageSize, Modality, Synth};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::common::{Common, Outcome};

/// Arguments of `dclient demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo folder (generated files, both SCPs' storage) instead of deleting it.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub common: Common,
}

const PACS: &str = "DEMO-PACS";
const DEST: &str = "DEMO-DEST";

/// One step's result.
enum Step {
    Ok(String),
}

struct Runner {
    n: usize,
    ok: usize,
    failed: Vec<String>,
    quiet: bool,
}

impl Runner {
    fn step(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<Step>) {
        self.n += 1;
        let start = Instant::now();
        let r = f();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let label = format!("[{:>2}] {name} ", self.n);
        let (status, detail) = match r {
            Ok(Step::Ok(d)) => {
                self.ok += 1;
                ("ok", format!("{d} ({ms:.0} ms)"))
            }
            Err(e) => {
                self.failed.push(name.to_owned());
                ("FAILED", format!("{e:#}"))
            }
        };
        if !self.quiet || status != "ok" {
            outln!("{label:.<48} {status:<6} {detail}");
        }
    }
}

/// Runs the demo.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new().prefix("dclient-demo-").tempdir()?;
    let root = tmp.path().to_path_buf();
    let q = a.common.quiet;
    if !q {
        outln!(
            "dclient demo: every operation against built-in SCPs on 127.0.0.1, in {}",
            root.display()
        );
    }
    let mut r = Runner { n: 0, ok: 0, failed: Vec::new(), quiet: q };

    // Both SCPs live for the whole demo.
    let mut scps: Option<(ScpHandle, ScpHandle)> = None;
    r.step("start two built-in SCPs", || {
        let dest = start(&root.join("dest"), DEST, &[])?;
        let pacs = start(&root.join("pacs"), PACS, &[(DEST, dest.port())])?;
        let d = format!(
            "{PACS} at {}, {DEST} at {} (move destination of {PACS})",
            pacs.local_addr(),
            dest.local_addr()
        );
        scps = Some((pacs, dest));
        Ok(Step::Ok(d))
    });
    let Some((pacs, dest)) = scps else { bail!("the built-in SCPs did not start") };
    let mut client = DClient::with_options(
        "127.0.0.1",
        pacs.port(),
        ClientOptions {
            ae: a.common.ae().to_owned(),
            host_ae: PACS.into(),
            timeouts: Timeouts::uniform(Duration::from_secs(10)),
            ..ClientOptions::default()
        },
    );

    let mut files: Vec<PathBuf> = Vec::new();
    r.step("generate two patients' CT and MR studies", || {
        files = generate(&root.join("generated"))?;
        Ok(Step::Ok(format!("{} files of 128x128 phantom images", files.len())))
    });
    r.step("test (associate, release)", || {
        let report = client.try_test(vec![dclient::contexts::verification_context()])?;
        let accepted = report.negotiated.accepted_contexts().count();
        Ok(Step::Ok(format!("association accepted, {accepted} context(s)")))
    });
    r.step("echo", || {
        client.echo()?;
        Ok(Step::Ok("C-ECHO success".into()))
    });
    r.step("send the generated files", || {
        let report = client.send(&files)?;
        if !report.all_stored() {
            bail!("{}", report.summary());
        }
        Ok(Step::Ok(format!("{} files stored", report.stored())))
    });
    r.step("check the stored copies", || {
        let n = compare_all(&files, &pacs_files(&pacs)?)?;
        Ok(Step::Ok(format!("{n} data sets identical to what was sent")))
    });

    let mut studies: Vec<InMemDicomObject> = Vec::new();
    let mut series: Vec<InMemDicomObject> = Vec::new();
    r.step("find PATIENT", || {
        let m = client.find_patients([("PatientName", "*"), ("PatientBirthDate", "")])?;
        expect(m.len(), 2, "patients")?;
        Ok(Step::Ok(list(&m, &[tags::PATIENT_ID, tags::PATIENT_NAME])))
    });
    r.step("find STUDY", || {
        studies = client.find_studies([("StudyDescription", ""), ("ModalitiesInStudy", "")])?;
        expect(studies.len(), 2, "studies")?;
        Ok(Step::Ok(list(
            &studies,
            &[tags::PATIENT_NAME, tags::STUDY_DESCRIPTION, tags::MODALITIES_IN_STUDY],
        )))
    });
    r.step("find SERIES (of the MR study)", || {
        let mr = studies
            .iter()
            .find(|s| text(s, tags::MODALITIES_IN_STUDY).contains("MR"))
            .ok_or_else(|| anyhow!("no MR study found"))?;
        let uid = text(mr, tags::STUDY_INSTANCE_UID);
        series =
            client.find_series([("StudyInstanceUID", uid.as_str()), ("SeriesDescription", "")])?;
        expect(series.len(), 2, "series")?;
        Ok(Step::Ok(list(
            &series,
            &[tags::MODALITY, tags::SERIES_NUMBER, tags::SERIES_DESCRIPTION],
        )))
    });
    r.step("find IMAGE (of the first MR series)", || {
        let s = series.first().ok_or_else(|| anyhow!("no series"))?;
        let (study, uid) = (text(s, tags::STUDY_INSTANCE_UID), text(s, tags::SERIES_INSTANCE_UID));
        let study = if study.is_empty() { mr_study(&studies) } else { study };
        let m = client.find_images([
            ("StudyInstanceUID", study.as_str()),
            ("SeriesInstanceUID", uid.as_str()),
        ])?;
        expect(m.len(), 3, "images")?;
        Ok(Step::Ok(format!(
            "{} images, instance numbers {}",
            m.len(),
            list(&m, &[tags::INSTANCE_NUMBER])
        )))
    });
    r.step("get one series into a folder", || {
        let s = series.last().ok_or_else(|| anyhow!("no series"))?;
        let (study, uid) = (mr_study(&studies), text(s, tags::SERIES_INSTANCE_UID));
        let dir = root.join("got");
        let got = client.get_series(
            &dir,
            [("StudyInstanceUID", study.as_str()), ("SeriesInstanceUID", uid.as_str())],
        )?;
        if !got.is_complete() {
            bail!("C-GET ended with status {} ({:?})", got.status, got.sub_operations);
        }
        let arrived: Vec<PathBuf> = got.received.iter().filter_map(|r| r.path.clone()).collect();
        expect(arrived.len(), 3, "instances received")?;
        let n = compare_all(&sent_of_series(&files, &uid)?, &arrived)?;
        Ok(Step::Ok(format!("{n} instances in {}, identical to what was sent", dir.display())))
    });
    r.step("move a study to the second SCP", || {
        let ct = studies
            .iter()
            .find(|s| text(s, tags::MODALITIES_IN_STUDY).contains("CT"))
            .map(|s| text(s, tags::STUDY_INSTANCE_UID))
            .ok_or_else(|| anyhow!("no CT study found"))?;
        let moved = client.move_study(DEST, [("StudyInstanceUID", ct.as_str())])?;
        if !moved.is_complete() {
            bail!("C-MOVE ended with status {} ({:?})", moved.status, moved.sub_operations);
        }
        let n = compare_all(&sent_of_study(&files, &ct)?, &pacs_files(&dest)?)?;
        Ok(Step::Ok(format!("{n} instances now in {DEST}, identical to what was sent")))
    });

    r.step("storage commitment of the sent files", || {
        // Every file sent, and one instance never sent: the report must say which is which.
        let (req, _) = dclient::CommitRequest::from_files(&files)?;
        let missing = dclient::SopRef::new(
            "1.2.840.10008.5.1.4.1.1.7",
            format!("{}.999", dclient::new_uid()),
        );
        let mut refs = req.instances().to_vec();
        refs.push(missing.clone());
        let req = dclient::CommitRequest::new(refs)?;
        let result = client.commit(&req, &dclient::CommitOptions::default())?;
        let failed: Vec<&dclient::InstanceResult> =
            result.instances.iter().filter(|i| !i.is_committed()).collect();
        let expected = dclient::InstanceState::Failed { failure_reason: Some(0x0112) };
        if result.committed() != files.len()
            || failed.len() != 1
            || failed[0].sop != missing
            || failed[0].state != expected
        {
            bail!(
                "{} of {} committed; not committed: {}",
                result.committed(),
                result.instances.len(),
                failed.iter().map(|i| i.describe()).collect::<Vec<_>>().join("; ")
            );
        }
        Ok(Step::Ok(format!(
            "{} committed, the unsent one failed (0x0112 no such object instance)",
            result.committed()
        )))
    });

    pacs.shutdown();
    dest.shutdown();
    if a.keep {
        let kept = tmp.keep();
        outln!("kept {}", kept.display());
    }
    let total = r.n;
    outln!(
        "demo: {} of {total} steps succeeded{}",
        r.ok,
        if r.failed.is_empty() {
            String::new()
        } else {
            format!("; FAILED: {}", r.failed.join(", "))
        },
    );
    Ok(if r.ok == total { Outcome::Success } else { Outcome::Failed })
}

fn start(dir: &Path, ae: &str, peers: &[(&str, u16)]) -> anyhow::Result<ScpHandle> {
    let mut c = ScpConfig::new(dir);
    c.ae = ae.into();
    c.port = 0;
    c.grace = Duration::from_secs(2);
    for (p, port) in peers {
        c.peers.insert((*p).into(), ("127.0.0.1".into(), *port));
    }
    Ok(Scp::start(c)?)
}

fn expect(got: usize, want: usize, what: &str) -> anyhow::Result<()> {
    if got != want {
        bail!("{got} {what} found, {want} expected");
    }
    Ok(())
}

/// "a / b; c / d" from some keys of each match.
fn list(matches: &[InMemDicomObject], keys: &[Tag]) -> String {
    matches
        .iter()
        .map(|m| keys.iter().map(|k| text(m, *k)).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

fn pacs_files(pacs: &ScpHandle) -> anyhow::Result<Vec<PathBuf>> {
    Ok(pacs
        .index()
        .rows(dclient::QueryLevel::Image, &Default::default())?
        .into_iter()
        .filter_map(|r| r.file.map(|f| f.path))
        .collect())
}

/// Every file in `sent` has a file in `got` with the same SOP Instance UID and an equal
/// data set (all elements but the file meta group).
fn compare_all(sent: &[PathBuf], got: &[PathBuf]) -> anyhow::Result<usize> {
    let mut by_uid = std::collections::HashMap::new();
    for g in got {
        let rec = read_instance(g)?;
        by_uid.insert(rec.sop_instance_uid, g.clone());
    }
    for s in sent {
        let uid = read_instance(s)?.sop_instance_uid;
        let g = by_uid.get(&uid).ok_or_else(|| anyhow!("{uid} did not arrive"))?;
        if data_set(s)? != data_set(g)? {
            bail!("{uid}: the data set that arrived differs from the one sent");
        }
    }
    Ok(sent.len())
}

fn data_set(path: &Path) -> anyhow::Result<Vec<String>> {
    let obj = dicom_object::open_file(path).with_context(|| path.display().to_string())?;
    Ok(obj.iter().map(|e| format!("{:?} {:?}", e.header().tag, e.value())).collect())
}

/// The MR study's UID.
fn mr_study(studies: &[InMemDicomObject]) -> String {
    studies
        .iter()
        .find(|x| text(x, tags::MODALITIES_IN_STUDY).contains("MR"))
        .map(|x| text(x, tags::STUDY_INSTANCE_UID))
        .unwrap_or_default()
}

/// The generated files of a series or a study.
fn sent_where(
    files: &[PathBuf],
    keep: impl Fn(&dclient_scp::header::InstanceRecord) -> bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for f in files {
        if keep(&read_instance(f)?) {
            v.push(f.clone());
        }
    }
    Ok(v)
}

fn sent_of_series(files: &[PathBuf], uid: &str) -> anyhow::Result<Vec<PathBuf>> {
    sent_where(files, |r| r.series_uid == uid)
}

fn sent_of_study(files: &[PathBuf], uid: &str) -> anyhow::Result<Vec<PathBuf>> {
    sent_where(files, |r| r.study_uid == uid)
}

/// Two patients: a CT study (one series of four slices) and an MR study (two series of
/// three slices), from [`dclient_synth`].
fn generate(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut synth = Synth::from_entropy();
    let mut files = Vec::new();
    for (modality, series, slices) in [(Modality::Ct, 1, 4), (Modality::Mr, 2, 3)] {
        let spec = DatasetSpec {
            patients: 1,
            studies: 1,
            series_per_study: series,
            instances_per_series: slices,
            modality,
            size: ImageSize::single(128, 128),
            ..DatasetSpec::default()
        };
        let sub = dir.join(modality.code());
        files.extend(synth.generate(&sub, &spec)?.into_iter().map(|g| g.path));
    }
    Ok(files)
}
