//! [`DClient::mpps_start`], [`DClient::mpps_complete`] and [`DClient::mpps_discontinue`]:
//! Modality Performed Procedure Step (PS3.4 F.7), each on its own association.

use crate::client::DClient;
use crate::error::{Error, Result};
use crate::services::find::IntoQuery;
use crate::services::mpps::{self, MppsFinal, MppsResult};
use dclient_proto::uids;

impl DClient {
    /// Creates a performed procedure step IN PROGRESS (N-CREATE) with `attrs` (keys as in
    /// [`find_studies`](Self::find_studies), `Sequence/Keyword` inside a sequence) over the
    /// Type 1 and 2 attributes PS3.4 Table F.7.2-1 asks for, under a new SOP Instance UID
    /// (or `uid`), which the result holds. The response is kept in
    /// [`command_results`](Self::command_results).
    pub fn mpps_start(&mut self, uid: Option<&str>, attrs: impl IntoQuery) -> Result<MppsResult> {
        let uid = match uid {
            Some(u) => check_uid(u)?,
            None => crate::services::new_uid(),
        };
        let q = mpps::create_attributes(&self.options.ae, attrs.into_query()?)?;
        mpps::check_encodes(&q)?;
        self.mpps_op(|conn| mpps::n_create(conn, &uid, &q))
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
        let uid = check_uid(uid)?;
        let q = mpps::final_attributes(state, attrs.into_query()?)?;
        mpps::check_encodes(&q)?;
        self.mpps_op(|conn| mpps::n_set(conn, &uid, &q))
    }

    fn mpps_op(
        &mut self,
        op: impl FnOnce(&mut crate::transport::Connection) -> Result<MppsResult>,
    ) -> Result<MppsResult> {
        self.command_results.clear();
        let mut conn = self.associate(vec![mpps::mpps_context()], vec![])?;
        match op(&mut conn) {
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

fn check_uid(uid: &str) -> Result<String> {
    if uids::is_valid_uid(uid) {
        Ok(uid.to_owned())
    } else {
        Err(Error::InvalidInput(format!(
            "{:?} is not a UID (digits and dots, at most 64 characters)",
            crate::names::printable(uid)
        )))
    }
}
