//! The sub-operation counts of the C-GET and C-MOVE responses ((0000,1020) to (0000,1023),
//! PS3.7 Tables 9.3-6 and 9.3-8).

use super::fields::Fields;
use super::set::CommandSet;
use super::tags;

/// The sub-operation counts of a C-GET or C-MOVE response ((0000,1020) to (0000,1023)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SubOperations {
    /// (0000,1020) NumberOfRemainingSuboperations.
    pub remaining: Option<u16>,
    /// (0000,1021) NumberOfCompletedSuboperations.
    pub completed: Option<u16>,
    /// (0000,1022) NumberOfFailedSuboperations.
    pub failed: Option<u16>,
    /// (0000,1023) NumberOfWarningSuboperations.
    pub warning: Option<u16>,
}

impl SubOperations {
    /// Writes the counts that are present.
    pub(super) fn write(&self, cs: &mut CommandSet) {
        for (elem, v) in [
            (tags::NUMBER_OF_REMAINING_SUBOPERATIONS, self.remaining),
            (tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, self.completed),
            (tags::NUMBER_OF_FAILED_SUBOPERATIONS, self.failed),
            (tags::NUMBER_OF_WARNING_SUBOPERATIONS, self.warning),
        ] {
            if let Some(v) = v {
                cs.set_u16(elem, v);
            }
        }
    }

    /// Reads the counts, all optional (a malformed one is read as absent).
    pub(super) fn read(f: &Fields<'_>) -> Self {
        SubOperations {
            remaining: f.opt_u16(tags::NUMBER_OF_REMAINING_SUBOPERATIONS),
            completed: f.opt_u16(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS),
            failed: f.opt_u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS),
            warning: f.opt_u16(tags::NUMBER_OF_WARNING_SUBOPERATIONS),
        }
    }
}
