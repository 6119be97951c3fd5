//! Modality Worklist and MPPS from the library, on both drivers: the worklist against
//! DCMTK's wlmscpfs (the items findscu -W gets), MPPS against a pynetdicom SCP (the step it
//! holds, and its refusals as typed status errors).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drivers;

use std::collections::BTreeSet;
use std::time::Duration;

use dclient::proto::dimse::status::Status;
use dclient::{ClientOptions, Error, WorklistRequest};
use dclient_testkit::{dcmtk_wlmscpfs, example_worklist, findscu_worklist, pynetdicom_mpps_scp};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use drivers::{for_each_driver, Client};

fn client(port: u16, host_ae: &str) -> Box<dyn Client> {
    drivers::client(
        drivers::current(),
        port,
        ClientOptions { host_ae: host_ae.into(), ..ClientOptions::default() }
            .timeout(Duration::from_secs(10)),
    )
}

fn patient_ids(items: &[InMemDicomObject]) -> BTreeSet<String> {
    items
        .iter()
        .map(|o| o.get(tags::PATIENT_ID).unwrap().to_str().unwrap().trim().to_owned())
        .collect()
}

#[test]
fn worklist_items_are_those_findscu_gets_from_wlmscpfs() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("db");
    example_worklist(&db, "OFFIS").unwrap();
    let wlm = dcmtk_wlmscpfs(&db, "OFFIS").unwrap();
    let keys = ["PatientID=", "ScheduledProcedureStepSequence[0].Modality=MR"];
    let files = findscu_worklist(wlm.port, "OFFIS", &keys, &work.path().join("f")).unwrap();
    let mut want = BTreeSet::new();
    for f in &files {
        let o = dicom_object::open_file(f).unwrap();
        want.insert(o.element(tags::PATIENT_ID).unwrap().to_str().unwrap().trim().to_owned());
    }
    assert_eq!(files.len(), 2, "{}", wlm.log_tail());
    for_each_driver(|| {
        let mut c = client(wlm.port, "OFFIS");
        let items = c.find_worklist(&WorklistRequest::new([("PatientID", "")]).unwrap()).unwrap();
        assert_eq!(items.len(), 10, "{}", wlm.log_tail());
        let req = WorklistRequest::new([("PatientID", "")]).unwrap().modality("MR").unwrap();
        let items = c.find_worklist(&req).unwrap();
        assert_eq!(patient_ids(&items), want);
        assert_eq!(c.data_results().len(), 2);
        // The final response is kept, as for any C-FIND.
        assert!(!c.command_results().is_empty());
    });
}

#[test]
fn mpps_start_complete_and_refusals_of_a_pynetdicom_scp() {
    let scp = pynetdicom_mpps_scp().unwrap();
    for_each_driver(|| {
        let mut c = client(scp.port, "MPPSSCP");
        let r = c
            .mpps_start(None, &[("PatientID", "PID001"), ("Modality", "MR")])
            .unwrap_or_else(|e| panic!("{e}\n{}", scp.log_tail()));
        let uid = r.sop_instance_uid.clone();
        assert!(uid.starts_with("2.25."), "{uid}");
        let step: serde_json::Value =
            serde_json::from_slice(&std::fs::read(scp.dir.join(format!("{uid}.json"))).unwrap())
                .unwrap();
        assert_eq!(step["00400252"]["Value"][0], "IN PROGRESS", "{step}");
        assert_eq!(step["00100020"]["Value"][0], "PID001", "{step}");

        c.mpps_complete(&uid, &[]).unwrap();
        let step: serde_json::Value =
            serde_json::from_slice(&std::fs::read(scp.dir.join(format!("{uid}.json"))).unwrap())
                .unwrap();
        assert_eq!(step["00400252"]["Value"][0], "COMPLETED", "{step}");

        // Completed steps may not change (0110); an unknown step is 0112.
        let e = c.mpps_discontinue(&uid, &[]).unwrap_err();
        assert!(matches!(e, Error::Status { status: Status(0x0110), .. }), "{e}");
        let e = c.mpps_complete("1.2.3.4", &[]).unwrap_err();
        assert!(matches!(e, Error::Status { status: Status(0x0112), .. }), "{e}");
        // Bad input, before any traffic.
        let e = c.mpps_complete("not-a-uid", &[]).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    });
}
