//! ruby-dicom's find, get and move, in Rust: find the studies of a patient, the series of
//! the first study, retrieve that series into a folder with C-GET, and move the study to
//! another AE with C-MOVE.
//!
//! ```text
//! cargo run --example query_retrieve -- HOST PORT CALLED_AE PATIENT_ID [MOVE_DESTINATION]
//! ```

#![forbid(unsafe_code)]

use dclient::{ClientOptions, DClient};
use dicom_dictionary_std::tags;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, host_ae, patient_id, rest @ ..] = args.as_slice() else {
        eprintln!("usage: query_retrieve HOST PORT CALLED_AE PATIENT_ID [MOVE_DESTINATION]");
        std::process::exit(2);
    };
    let mut node = DClient::with_options(
        host.as_str(),
        port.parse()?,
        ClientOptions { host_ae: host_ae.clone(), ..Default::default() },
    );

    // node.find_studies('0010,0020' => patient_id): keys as 'GGGG,EEEE' or keywords
    let studies = node.find_studies([("0010,0020", patient_id.as_str())])?;
    println!("{} studies for patient {patient_id}", studies.len());
    let Some(study) = studies.first() else { return Ok(()) };
    let study_uid = study.element(tags::STUDY_INSTANCE_UID)?.to_str()?.trim().to_owned();

    // node.find_series('0020,000D' => study_uid)
    let series = node.find_series([("StudyInstanceUID", study_uid.as_str())])?;
    for s in &series {
        println!(
            "  series {} {}",
            s.element(tags::MODALITY).ok().and_then(|e| e.to_str().ok()).unwrap_or_default(),
            s.element(tags::SERIES_INSTANCE_UID)?.to_str()?
        );
    }

    // C-GET of the first series into ./retrieved (the storage classes are found by C-FIND)
    if let Some(s) = series.first() {
        let series_uid = s.element(tags::SERIES_INSTANCE_UID)?.to_str()?.trim().to_owned();
        let result = node.get_series(
            "retrieved",
            [("StudyInstanceUID", study_uid.as_str()), ("SeriesInstanceUID", &series_uid)],
        )?;
        println!("retrieved {} instances into ./retrieved", result.stored());
    }

    // node.move_study('SOME_SERVER', '0020,000D' => study_uid)
    if let Some(dest) = rest.first() {
        let result = node.move_study(dest, [("0020,000D", study_uid.as_str())])?;
        println!("moved to {dest}: {:?}", result.sub_operations);
    }
    Ok(())
}
