//! Which presentation contexts a send's next association proposes: those of the SOP
//! classes and transfer syntaxes seen so far, most recent first, as many as one
//! association holds (128, PS3.8 9.3.2.2). A file whose class and syntax its association
//! did not propose makes the worker open a new one (a class that first appears late in a
//! job costs one association, not a planning pass over every file first).

use dclient_proto::ul::negotiation::{ProposedContext, MAX_PRESENTATION_CONTEXTS};

use crate::services::store::{contexts_for_sop_class_with, PreparedFile, StoreOptions};

/// The SOP classes and their transfer syntaxes seen so far.
#[derive(Debug, Default)]
pub(crate) struct KnownContexts {
    /// (SOP class, syntaxes), the most recently noted last.
    classes: Vec<(String, Vec<String>)>,
}

/// What one association proposed: (SOP class, syntaxes).
#[derive(Debug, Default, Clone)]
pub(crate) struct Proposed {
    classes: Vec<(String, Vec<String>)>,
}

impl Proposed {
    /// Whether `file`'s class and syntax were proposed.
    pub(crate) fn covers(&self, file: &PreparedFile) -> bool {
        self.classes
            .iter()
            .any(|(c, ts)| *c == file.sop_class_uid && ts.contains(&file.transfer_syntax))
    }
}

impl KnownContexts {
    /// Notes `file`'s class and syntax; true when they are new.
    pub(crate) fn note(&mut self, file: &PreparedFile) -> bool {
        let at = self.classes.iter().position(|(c, _)| *c == file.sop_class_uid);
        let (new, entry) = match at {
            Some(i) => {
                let mut e = self.classes.remove(i);
                let new = !e.1.contains(&file.transfer_syntax);
                if new {
                    e.1.push(file.transfer_syntax.clone());
                }
                (new, e)
            }
            None => (true, (file.sop_class_uid.clone(), vec![file.transfer_syntax.clone()])),
        };
        self.classes.push(entry);
        new
    }

    /// The contexts to propose, most recently noted classes first, and what they cover.
    pub(crate) fn proposal(&self, store: &StoreOptions) -> (Vec<ProposedContext>, Proposed) {
        let mut contexts: Vec<ProposedContext> = Vec::new();
        let mut proposed = Proposed::default();
        for (class, syntaxes) in self.classes.iter().rev() {
            let mut ctx = contexts_for_sop_class_with(class, syntaxes, store);
            let mut covered = syntaxes.clone();
            if ctx.len() > MAX_PRESENTATION_CONTEXTS {
                // More syntaxes for one class than an association holds: keep the two
                // fallbacks (uncompressed, compressed) and as many file syntaxes as fit;
                // the other files are converted.
                let compressed = ctx.pop();
                let fallback = ctx.pop();
                let own = MAX_PRESENTATION_CONTEXTS - 2;
                ctx.truncate(own);
                ctx.extend(fallback);
                ctx.extend(compressed);
                // The first context is the target syntax's when one is set.
                covered.truncate(own - usize::from(store.transfer_syntax.is_some()));
            }
            if contexts.len() + ctx.len() > MAX_PRESENTATION_CONTEXTS {
                if contexts.is_empty() {
                    continue;
                }
                break;
            }
            contexts.extend(ctx);
            proposed.classes.push((class.clone(), covered));
        }
        (contexts, proposed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dclient_proto::uids::{EXPLICIT_VR_LE, JPEG_BASELINE};

    fn file(class: &str, ts: &str) -> PreparedFile {
        PreparedFile {
            path: "f".into(),
            sop_class_uid: class.into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax: ts.into(),
            data_offset: 0,
            data_len: 10,
            has_meta: true,
            ..PreparedFile::default()
        }
    }

    #[test]
    fn at_most_128_contexts_the_latest_class_always_in() {
        let mut k = KnownContexts::default();
        // 100 classes with two syntaxes each: 4 contexts a class (the two, the uncompressed
        // and the compressed fallback), 400 in all.
        for i in 0..100 {
            for ts in [EXPLICIT_VR_LE, JPEG_BASELINE] {
                k.note(&file(&format!("1.2.840.99.{i}"), ts));
            }
        }
        let (ctx, p) = k.proposal(&StoreOptions::default());
        assert_eq!(ctx.len(), 128, "32 classes of 4 contexts");
        assert!(p.covers(&file("1.2.840.99.99", JPEG_BASELINE)));
        assert!(!p.covers(&file("1.2.840.99.0", JPEG_BASELINE)));
        // Noting an old class again brings it into the next proposal.
        assert!(!k.note(&file("1.2.840.99.0", JPEG_BASELINE)));
        let (_, p) = k.proposal(&StoreOptions::default());
        assert!(p.covers(&file("1.2.840.99.0", JPEG_BASELINE)));
    }

    #[test]
    fn a_new_syntax_of_a_known_class_is_new() {
        let mut k = KnownContexts::default();
        assert!(k.note(&file("1.2", EXPLICIT_VR_LE)));
        assert!(!k.note(&file("1.2", EXPLICIT_VR_LE)));
        let (_, p) = k.proposal(&StoreOptions::default());
        assert!(!p.covers(&file("1.2", JPEG_BASELINE)));
        assert!(k.note(&file("1.2", JPEG_BASELINE)));
        let (ctx, p) = k.proposal(&StoreOptions::default());
        assert_eq!(ctx.len(), 4, "the two syntaxes, the uncompressed and compressed fallbacks");
        assert!(p.covers(&file("1.2", JPEG_BASELINE)));
    }
}
