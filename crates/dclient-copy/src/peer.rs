//! One DICOM peer of a job, and the C-FINDs the engine asks it: studies, a study's series
//! and instances, counts. Every C-FIND is streamed (one match in memory at a time, or the
//! few hundred of one part) and tells whether the peer cut it short.

use dclient::dataset::Query;
use dclient::{
    Association, ClientOptions, Contexts, DClient, FindRequest, InformationModel, QueryLevel,
};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::endpoint::PeerAddr;

/// A peer with the options to talk to it.
#[derive(Debug, Clone)]
pub struct PeerClient {
    /// Its address and AE title.
    pub addr: PeerAddr,
    options: ClientOptions,
}

impl PeerClient {
    /// The peer at `addr`, with `base` options (our AE title, timeouts, TLS, identity) and
    /// its AE title as the called AE.
    pub fn new(addr: &PeerAddr, base: &ClientOptions) -> PeerClient {
        let mut options = base.clone();
        options.host_ae = addr.ae.clone();
        PeerClient { addr: addr.clone(), options }
    }

    /// A facade for it.
    pub fn dclient(&self) -> DClient {
        DClient::with_options(self.addr.host.clone(), self.addr.port, self.options.clone())
    }

    /// Opens an association with these contexts.
    pub fn open(&self, contexts: Contexts) -> dclient::Result<Association> {
        self.dclient().open(contexts)
    }

    /// Opens an association for Study Root C-FINDs.
    pub fn open_find(&self) -> dclient::Result<Association> {
        self.open(Contexts::new().find(InformationModel::StudyRoot))
    }

    /// Our options.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }
}

/// The trimmed text of an element, "" when absent.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0').to_owned())
        .unwrap_or_default()
}

/// A count attribute, when present and a number.
pub fn count(obj: &InMemDicomObject, tag: Tag) -> Option<u64> {
    text(obj, tag).parse().ok()
}

/// How a C-FIND ended, for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindEnd {
    /// Matches read.
    pub matches: u64,
    /// The peer ended it with "cancel" (FE00) though we did not cancel: it cut its answer
    /// at a limit of its own (Orthanc's `LimitFindResults`).
    pub cut_by_peer: bool,
    /// We stopped reading at `stop_after` matches (and cancelled).
    pub stopped: bool,
}

/// Runs `req` on `assoc`, handing each match to `each`; stops (C-CANCEL) after
/// `stop_after` matches when given.
pub fn find_each(
    assoc: &mut Association,
    req: &FindRequest,
    stop_after: Option<u64>,
    each: &mut dyn FnMut(InMemDicomObject),
) -> dclient::Result<FindEnd> {
    let mut it = assoc.find_iter(req)?;
    let mut matches = 0u64;
    let mut stopped = false;
    while let Some(m) = it.next_match()? {
        matches += 1;
        each(m);
        if stop_after.is_some_and(|n| matches >= n) {
            stopped = true;
            it.cancel()?;
        }
    }
    let cut_by_peer =
        it.summary().is_some_and(|s| s.status.is_cancel() && !s.cancelled) && !stopped;
    Ok(FindEnd { matches, cut_by_peer, stopped })
}

/// One instance as a C-FIND lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// SOP Instance UID.
    pub sop_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Class UID ("" when the peer does not return it, as dcmqrscp).
    pub sop_class: String,
}

/// A study's instances as a peer lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The instances, sorted by SOP Instance UID.
    pub items: Vec<Listed>,
    /// False when the peer cut an answer short (or gave fewer instances than its own
    /// series counts): the list may miss some.
    pub complete: bool,
}

/// Lists a study's instances: a SERIES-level C-FIND, then an IMAGE-level one per series
/// (the hierarchical keys each level needs, PS3.4 C.4.1.3.1.1).
pub fn list_study(assoc: &mut Association, study_uid: &str) -> dclient::Result<Listing> {
    let mut series: Vec<(String, Option<u64>)> = Vec::new();
    let mut q = Query::new();
    q.set_tag(tags::STUDY_INSTANCE_UID, study_uid);
    q.set_tag(tags::NUMBER_OF_SERIES_RELATED_INSTANCES, "");
    let req = FindRequest::new(QueryLevel::Series, q)?;
    let end = find_each(assoc, &req, None, &mut |m| {
        let uid = text(&m, tags::SERIES_INSTANCE_UID);
        if !uid.is_empty() {
            series.push((uid, count(&m, tags::NUMBER_OF_SERIES_RELATED_INSTANCES)));
        }
    })?;
    let mut listing = Listing { items: Vec::new(), complete: !end.cut_by_peer };
    for (s, announced) in &series {
        let mut q = Query::new();
        q.set_tag(tags::STUDY_INSTANCE_UID, study_uid);
        q.set_tag(tags::SERIES_INSTANCE_UID, s.as_str());
        q.set_tag(tags::SOP_CLASS_UID, "");
        let req = FindRequest::new(QueryLevel::Image, q)?;
        let before = listing.items.len();
        let end = find_each(assoc, &req, None, &mut |m| {
            let uid = text(&m, tags::SOP_INSTANCE_UID);
            if !uid.is_empty() {
                listing.items.push(Listed {
                    sop_uid: uid,
                    series_uid: s.clone(),
                    sop_class: text(&m, tags::SOP_CLASS_UID),
                });
            }
        })?;
        let got = (listing.items.len() - before) as u64;
        if end.cut_by_peer || announced.is_some_and(|a| got < a) {
            listing.complete = false;
        }
    }
    listing.items.sort();
    listing.items.dedup_by(|a, b| a.sop_uid == b.sop_uid);
    Ok(listing)
}

/// How many instances a peer holds of a study: its Number of Study Related Instances,
/// else the sum of its series' counts, else a listing. `None` when the peer's answers
/// do not add up to a count it vouches for (a listing it cut short).
pub fn count_study(assoc: &mut Association, study_uid: &str) -> dclient::Result<Option<u64>> {
    let mut q = Query::new();
    q.set_tag(tags::STUDY_INSTANCE_UID, study_uid);
    q.set_tag(tags::NUMBER_OF_STUDY_RELATED_INSTANCES, "");
    let req = FindRequest::new(QueryLevel::Study, q)?;
    let mut study_count = None;
    let mut found = 0u64;
    find_each(assoc, &req, None, &mut |m| {
        found += 1;
        if text(&m, tags::STUDY_INSTANCE_UID) == study_uid || study_count.is_none() {
            study_count = count(&m, tags::NUMBER_OF_STUDY_RELATED_INSTANCES);
        }
    })?;
    if found == 0 {
        return Ok(Some(0));
    }
    if study_count.is_some() {
        return Ok(study_count);
    }
    let mut q = Query::new();
    q.set_tag(tags::STUDY_INSTANCE_UID, study_uid);
    q.set_tag(tags::NUMBER_OF_SERIES_RELATED_INSTANCES, "");
    let req = FindRequest::new(QueryLevel::Series, q)?;
    let mut sum = Some(0u64);
    let end = find_each(assoc, &req, None, &mut |m| {
        sum = match (sum, count(&m, tags::NUMBER_OF_SERIES_RELATED_INSTANCES)) {
            (Some(s), Some(n)) => Some(s + n),
            _ => None,
        };
    })?;
    if let (Some(s), false) = (sum, end.cut_by_peer) {
        return Ok(Some(s));
    }
    let l = list_study(assoc, study_uid)?;
    Ok(l.complete.then_some(l.items.len() as u64))
}
