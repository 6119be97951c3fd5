//! `dclient demo`: every operation against built-in SCPs on loopback, step by step.
//!
//! Starts two built-in SCPs in a temporary folder (DEMO-PACS, and DEMO-DEST as a C-MOVE
//! destination), generates two patients' studies (CT and MR, with pixel data), then runs
//! `test`, `echo`, `send`, `find` at the four levels, `get` of a series and `move` of a
//! study, and checks that what arrived equals what was sent. Exit 0 only when every step
//! succeeded.
//!
//! Stand-ins until the other services land on main, each marked `STAND-IN`: the files come
//! from a small generator here (to become `dclient::synth`), and `send` stores them with
//! the SCP's own sub-operation sender (to become `DClient::send`). The `get` and `move`
//! steps wait for the C-GET/C-MOVE SCU (issue 5): until then they fail loudly as TODO and
//! the demo exits 1.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use dclient::proto::uids;
use dclient::scp::header::{read_instance, text};
use dclient::scp::index::StoredFile;
use dclient::scp::{Scp, ScpConfig, ScpHandle};
use dclient::{ClientOptions, DClient, Timeouts};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
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
    Todo(&'static str),
}

struct Runner {
    n: usize,
    ok: usize,
    failed: Vec<String>,
    todo: Vec<String>,
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
            Ok(Step::Todo(why)) => {
                self.todo.push(name.to_owned());
                ("TODO", why.to_owned())
            }
            Err(e) => {
                self.failed.push(name.to_owned());
                ("FAILED", format!("{e:#}"))
            }
        };
        if !self.quiet || status != "ok" {
            println!("{label:.<48} {status:<6} {detail}");
        }
    }
}

/// Runs the demo.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new().prefix("dclient-demo-").tempdir()?;
    let root = tmp.path().to_path_buf();
    let q = a.common.quiet;
    if !q {
        println!(
            "dclient demo: every operation against built-in SCPs on 127.0.0.1, in {}",
            root.display()
        );
    }
    let mut r = Runner { n: 0, ok: 0, failed: Vec::new(), todo: Vec::new(), quiet: q };

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
            ae: a.common.ae.clone(),
            host_ae: PACS.into(),
            timeouts: Timeouts::uniform(Duration::from_secs(10)),
            ..ClientOptions::default()
        },
    );

    let mut files: Vec<PathBuf> = Vec::new();
    r.step("generate two patients' CT and MR studies", || {
        files = generate(&root.join("generated"))?;
        Ok(Step::Ok(format!("{} files", files.len())))
    });
    r.step("test (associate, release)", || {
        let report = client.try_test(vec![dclient::client::verification_context()])?;
        let accepted = report.negotiated.accepted_contexts().count();
        Ok(Step::Ok(format!("association accepted, {accepted} context(s)")))
    });
    r.step("echo", || {
        client.echo()?;
        Ok(Step::Ok("C-ECHO success".into()))
    });
    r.step("send the generated files", || {
        let n = send(&client, &files)?;
        Ok(Step::Ok(format!("{n} files stored")))
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
        let study = if study.is_empty() {
            studies
                .iter()
                .find(|x| text(x, tags::MODALITIES_IN_STUDY).contains("MR"))
                .map(|x| text(x, tags::STUDY_INSTANCE_UID))
                .unwrap_or_default()
        } else {
            study
        };
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
        // TODO(issue 5): DClient's C-GET SCU is not on main yet.
        Ok(Step::Todo("C-GET SCU (issue 5) not on main yet: not run"))
    });
    r.step("move a study to the second SCP", || {
        // TODO(issue 5): DClient's C-MOVE SCU is not on main yet.
        let _ = &dest;
        Ok(Step::Todo("C-MOVE SCU (issue 5) not on main yet: not run"))
    });

    pacs.shutdown();
    dest.shutdown();
    if a.keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    let total = r.n;
    println!(
        "demo: {} of {total} steps succeeded{}{}",
        r.ok,
        if r.failed.is_empty() {
            String::new()
        } else {
            format!("; FAILED: {}", r.failed.join(", "))
        },
        if r.todo.is_empty() {
            String::new()
        } else {
            format!("; TODO (not implemented yet): {}", r.todo.join(", "))
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
        .rows(dclient::scp::Level::Image, &Default::default())?
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

/// STAND-IN for `DClient::send` (send branch): one association, every file stored with
/// the SCP's sub-operation sender.
fn send(client: &DClient, files: &[PathBuf]) -> anyhow::Result<usize> {
    let stored: Vec<StoredFile> = files
        .iter()
        .map(|p| {
            let r = read_instance(p)?;
            Ok(StoredFile {
                path: p.clone(),
                sop_class_uid: r.sop_class_uid,
                sop_instance_uid: r.sop_instance_uid,
                transfer_syntax: r.transfer_syntax,
                data_offset: r.data_offset,
                data_len: r.file_size - r.data_offset,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut conn = client.associate(dclient::scp::send::contexts_for(&stored), vec![])?;
    for f in &stored {
        let sent = dclient::scp::send::store_file(&mut conn, f, false, None, None)?;
        if !sent.status.is_success() {
            bail!("{} refused: status {}", f.sop_instance_uid, sent.status);
        }
    }
    conn.release()?;
    Ok(stored.len())
}

/// STAND-IN for `dclient::synth` (send branch): two patients, a CT study (one series of
/// four slices) and an MR study (T1 and T2 series of three slices), 64x64 16-bit phantom
/// images with plausible metadata.
fn generate(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let root = "2.25.";
    let mut n: u128 = u128::from(std::process::id()) << 64
        | u128::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        );
    let mut uid = || {
        n += 1;
        format!("{root}{n}")
    };
    let patients = [
        (
            "DEMO001",
            "Doe^Jane",
            "19700312",
            "F",
            "CT",
            "CT CHEST W/O CONTRAST",
            &[("AXIAL 5mm", 4u32)][..],
        ),
        (
            "DEMO002",
            "Roe^Richard",
            "19581105",
            "M",
            "MR",
            "MR BRAIN",
            &[("T1 AXIAL", 3), ("T2 AXIAL", 3)][..],
        ),
    ];
    let mut out = Vec::new();
    for (pid, name, birth, sex, modality, desc, series) in patients {
        let study = uid();
        let accession = format!("A{}", &pid[4..]);
        for (sn, (sdesc, count)) in series.iter().enumerate() {
            let series_uid = uid();
            for i in 0..*count {
                let sop = uid();
                let sop_class = if modality == "CT" {
                    "1.2.840.10008.5.1.4.1.1.2"
                } else {
                    "1.2.840.10008.5.1.4.1.1.4"
                };
                let mut o = InMemDicomObject::new_empty();
                let mut put = |t: Tag, vr: VR, v: &str| {
                    o.put(DataElement::new(t, vr, PrimitiveValue::from(v)))
                };
                put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
                put(tags::SOP_CLASS_UID, VR::UI, sop_class);
                put(tags::SOP_INSTANCE_UID, VR::UI, &sop);
                put(tags::STUDY_DATE, VR::DA, "20240115");
                put(tags::STUDY_TIME, VR::TM, "093000");
                put(tags::ACCESSION_NUMBER, VR::SH, &accession);
                put(tags::MODALITY, VR::CS, modality);
                put(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "House^Gregory");
                put(tags::STUDY_DESCRIPTION, VR::LO, desc);
                put(tags::SERIES_DESCRIPTION, VR::LO, sdesc);
                put(tags::PATIENT_NAME, VR::PN, name);
                put(tags::PATIENT_ID, VR::LO, pid);
                put(tags::PATIENT_BIRTH_DATE, VR::DA, birth);
                put(tags::PATIENT_SEX, VR::CS, sex);
                put(tags::STUDY_INSTANCE_UID, VR::UI, &study);
                put(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
                put(tags::STUDY_ID, VR::SH, "1");
                put(tags::SERIES_NUMBER, VR::IS, &(sn + 1).to_string());
                put(tags::INSTANCE_NUMBER, VR::IS, &(i + 1).to_string());
                put(tags::SLICE_THICKNESS, VR::DS, "5");
                put(tags::PIXEL_SPACING, VR::DS, "0.7\\0.7");
                put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
                for (t, v) in [
                    (tags::SAMPLES_PER_PIXEL, 1u16),
                    (tags::ROWS, 64),
                    (tags::COLUMNS, 64),
                    (tags::BITS_ALLOCATED, 16),
                    (tags::BITS_STORED, 12),
                    (tags::HIGH_BIT, 11),
                    (tags::PIXEL_REPRESENTATION, 0),
                ] {
                    o.put(DataElement::new(t, VR::US, PrimitiveValue::from(v)));
                }
                // A phantom: a bright disc whose size changes with the slice, in air.
                let mut px = Vec::with_capacity(64 * 64 * 2);
                let r2 = (14 + 3 * i as i32).pow(2);
                for y in 0..64i32 {
                    for x in 0..64i32 {
                        let d = (x - 32).pow(2) + (y - 32).pow(2);
                        let v: u16 = if d < r2 { 1000 + (x * 3 + y) as u16 } else { 24 };
                        px.extend_from_slice(&v.to_le_bytes());
                    }
                }
                o.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(px)));
                let file = o
                    .with_meta(
                        FileMetaTableBuilder::new()
                            .transfer_syntax(uids::EXPLICIT_VR_LE)
                            .media_storage_sop_class_uid(sop_class)
                            .media_storage_sop_instance_uid(sop.as_str()),
                    )
                    .map_err(|e| anyhow!("{e}"))?;
                let path = dir.join(format!("{modality}-{pid}-{}-{}.dcm", sn + 1, i + 1));
                file.write_to_file(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
                out.push(path);
            }
        }
    }
    Ok(out)
}
