//! [`DClient::mpps_start`], [`DClient::mpps_complete`] and [`DClient::mpps_discontinue`]:
//! Modality Performed Procedure Step (PS3.4 F.7), each on its own association.

use crate::client::DClient;
use crate::error::{Error, Result};
use crate::services::find::IntoQuery;
use crate::services::mpps::{self, MppsFinal, MppsPlan, MppsResult};

impl DClient {
    /// Creates a performed procedure step IN PROGRESS (N-CREATE) with `attrs` (keys as in
    /// [`find_studies`](Self::find_studies), `Sequence/Keyword` inside a sequence) over the
    /// Type 1 and 2 attributes PS3.4 Table F.7.2-1 asks for, under a new SOP Instance UID
    /// (or `uid`), which the result holds. The response is kept in
    /// [`command_results`](Self::command_results).
    pub fn mpps_start(&mut self, uid: Option<&str>, attrs: impl IntoQuery) -> Result<MppsResult> {
        self.mpps_op(&MppsPlan::start(&self.options.ae, uid, attrs.into_query()?)?)
    }

    /// Ends the step `uid` as COMPLETED (N-SET) with `attrs` (the Performed Series
    /// Sequence, say); end date and time are now unless given.
    pub fn mpps_complete(&mut self, uid: &str, attrs: impl IntoQuery) -> Result<MppsResult> {
        self.mpps_final(uid, MppsFinal::Completed, attrs)
    }

    /// Ends the step `uid` as DISCONTINUED (N-SET) with `attrs`.
    pub fn mpps_discontinue(&mut self, uid: &str, attrs: impl IntoQuery) -> Result<MppsResult> {
        self.mpps_final(uid, MppsFinal::Discontinued, attrs)
    }

    fn mpps_final(
        &mut self,
        uid: &str,
        state: MppsFinal,
        attrs: impl IntoQuery,
    ) -> Result<MppsResult> {
        self.mpps_op(&MppsPlan::end(uid, state, attrs.into_query()?)?)
    }

    fn mpps_op(&mut self, plan: &MppsPlan) -> Result<MppsResult> {
        self.command_results.clear();
        let mut conn = self.associate(vec![mpps::mpps_context()], vec![])?;
        match plan.run(&mut conn) {
            Ok(r) => {
                self.command_results = vec![r.response.clone()];
                conn.release()?;
                Ok(r)
            }
            Err(e @ Error::Status { .. }) => {
                // The exchange ended properly: the association is still good.
                let _ = conn.release();
                Err(e)
            }
            Err(e) => {
                conn.abort();
                Err(e)
            }
        }
    }
}
