//! [`DClient::find_worklist`]: Modality Worklist C-FIND (PS3.4 Annex K).

use dicom_object::InMemDicomObject;

use crate::client::DClient;
use crate::error::Result;
use crate::services::find::FindStream;
use crate::services::worklist::WorklistRequest;
use dclient_proto::uids;

impl DClient {
    /// Queries the Modality Worklist (1.2.840.10008.5.1.4.31) and collects the items (also
    /// kept in [`data_results`](Self::data_results), the responses in
    /// [`command_results`](Self::command_results)). On an error, what came before it stays
    /// in both.
    pub fn find_worklist(&mut self, req: &WorklistRequest) -> Result<Vec<InMemDicomObject>> {
        let stream = self.worklist_stream(req);
        self.collect_matches(stream)
    }

    /// Opens an association for `req` and sends its C-FIND-RQ; the items are read one at a
    /// time from the returned [`FindStream`]. Results are not kept in this client.
    pub fn worklist_stream(&self, req: &WorklistRequest) -> Result<FindStream> {
        let conn = self.associate(vec![WorklistRequest::presentation_context()], vec![])?;
        FindStream::start_query(
            conn,
            uids::MODALITY_WORKLIST_FIND,
            "Modality Worklist",
            req.identifier(),
            req.priority,
            req.limit,
        )
    }
}
