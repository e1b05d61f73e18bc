//! What a run reads back from the store before it assesses: the previous complete run's
//! findings (the baseline that change events compare against, streamed line by line) and the
//! accepted risks of `suppressions.json`.

use super::Publisher;
use crate::changes::Baseline;
use crate::results::{self, LatestPointer, files};

impl Publisher {
    /// Reads `suppressions.json` from the store root and validates each entry at `now`: a bad
    /// entry is rejected on its own (the rest apply), a file that is not a suppressions
    /// document at all is a warning (the run goes on without suppressions), a missing one is
    /// no suppressions.
    pub async fn read_suppressions(
        &self,
        now: time::OffsetDateTime,
        max_days: u32,
    ) -> Result<crate::assess::suppressions::ParsedSuppressions, String> {
        match self
            .store
            .get(crate::snapshot::suppressions::SUPPRESSIONS_FILE)
            .await
        {
            Ok(None) => Ok(Default::default()),
            Ok(Some(bytes)) => {
                crate::assess::suppressions::parse(&bytes, now, max_days).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!(
                "suppressions.json could not be read, so no suppression was applied: {e}"
            )),
        }
    }

    /// The newest complete run of the tenant, reduced to what change tracking needs, if there is
    /// one.
    pub(super) async fn read_baseline(&self, tenant_id: &str) -> Result<Option<Baseline>, String> {
        let unreadable = |what: &str, e: &dyn std::fmt::Display| {
            format!(
                "the previous run's {what} could not be read, so every finding is reported as new: {e}"
            )
        };
        let Some(bytes) = self
            .store
            .get(&results::latest_path(tenant_id))
            .await
            .map_err(|e| unreadable("latest pointer", &e))?
        else {
            return Ok(None);
        };
        let pointer: LatestPointer =
            serde_json::from_slice(&bytes).map_err(|e| unreadable("latest pointer", &e))?;
        let path = format!("{}/{}", pointer.prefix, files::FINDINGS);
        let mut body = self
            .store
            .get_stream(&path)
            .await
            .map_err(|e| unreadable("findings", &e))?
            .ok_or_else(|| unreadable("findings", &"the file is missing"))?;
        // Line by line as the file arrives: only a chunk and the compact baseline are held.
        let mut baseline = Baseline::new(pointer.run_id, pointer.finished_at);
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            pending.extend_from_slice(&chunk.map_err(|e| unreadable("findings", &e))?);
            if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
                baseline
                    .read_ndjson(&pending[..end])
                    .map_err(|e| unreadable("findings", &e))?;
                pending.drain(..=end);
            }
        }
        baseline
            .read_ndjson(&pending)
            .map_err(|e| unreadable("findings", &e))?;
        Ok(Some(baseline))
    }
}
