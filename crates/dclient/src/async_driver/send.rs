//! [`AsyncDClient::send`] and [`AsyncDClient::send_with`]: the send pipeline of the
//! blocking driver ([`SendJob`]: walk, preparation on blocking threads into a bounded
//! queue, contexts from what has been seen), with associations as tasks instead of
//! threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::client::AsyncDClient;
use super::connection::AsyncConnection;
use super::ops;
use crate::client::send::job::{Before, SendJob, WorkerState};
use crate::client::send::proposal::Proposed;
use crate::client::send::Walker;
use crate::client::{SendEvent, SendOptions, SendReport, MAX_PARALLEL};
use crate::error::{Error, Result};
use crate::services::store::PreparedFile;

impl AsyncDClient {
    /// Stores files and folders on the peer, as [`DClient::send`](crate::DClient::send).
    pub async fn send<P: AsRef<Path>>(&mut self, paths: &[P]) -> Result<SendReport> {
        self.send_with(paths, &SendOptions::default(), Arc::new(|_: SendEvent<'_>| {})).await
    }

    /// Stores files and folders with `options.parallel` associations at once (tasks, not
    /// threads), calling `on_event` as files are found and reported; as
    /// [`DClient::send_with`](crate::DClient::send_with), memory flat in the number of
    /// files. Files are found and prepared on blocking threads of the runtime.
    pub async fn send_with<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        options: &SendOptions,
        on_event: Arc<dyn Fn(SendEvent<'_>) + Send + Sync>,
    ) -> Result<SendReport> {
        let start = Instant::now();
        self.command_results.clear();
        let parallel = options.parallel.clamp(1, MAX_PARALLEL);
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let walker = Arc::new(Mutex::new(Walker::new(&paths)?));
        let job: Arc<SendJob<'static>> =
            Arc::new(SendJob::new(options, Box::new(move |e| on_event(e))));
        let mut helpers = tokio::task::JoinSet::new();
        for _ in 0..job.preparers() {
            let (job, walker) = (job.clone(), walker.clone());
            helpers.spawn_blocking(move || job.prepare(&walker));
        }
        {
            let job = job.clone();
            helpers.spawn_blocking(move || job.census(&paths));
        }
        let started = self.start_workers(&job, parallel).await;
        while helpers.join_next().await.is_some() {}
        started?;
        let job =
            Arc::try_unwrap(job).map_err(|_| Error::Internal("a send task outlived the send"))?;
        let (report, results) = job.finish(start.elapsed());
        self.command_results = results;
        Ok(report)
    }

    /// Opens the first association (its failure is the send's error), then runs the
    /// workers to the end.
    async fn start_workers(&self, job: &Arc<SendJob<'static>>, parallel: usize) -> Result<()> {
        let Some((index, file)) = job.next_file_async().await else {
            job.over();
            return Ok(());
        };
        {
            let job = job.clone();
            let _ = tokio::task::spawn_blocking(move || job.look_ahead()).await;
        }
        let (contexts, proposed) = job.proposal_for(&file);
        let conn = match self.associate(contexts, vec![]).await {
            Ok(c) => c,
            Err(e) => {
                job.abandon();
                return Err(e);
            }
        };
        job.associated();
        let mut first = Some((conn, proposed, index, file));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..parallel {
            job.worker_started();
            let (client, job, first) = (self.clone(), job.clone(), first.take());
            tasks.spawn(async move { client.send_worker(&job, first).await });
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// One association's task (see the blocking driver's worker).
    async fn send_worker(
        &self,
        job: &SendJob<'static>,
        first: Option<(AsyncConnection, Proposed, usize, PreparedFile)>,
    ) {
        let mut state = WorkerState::default();
        let (mut conn, mut pending) = match first {
            Some((c, p, index, file)) => {
                state.proposed = Some(p);
                (Some(c), Some((index, file)))
            }
            None => (None, None),
        };
        'files: loop {
            let next = match pending.take() {
                Some(p) => Some(p),
                None => job.next_file_async().await,
            };
            let Some((index, file)) = next else { break };
            loop {
                match state.before(conn.is_some(), &file) {
                    Before::Store => break,
                    Before::Reopen => {
                        if let Some(c) = conn.take() {
                            if let Err(e) = c.release().await {
                                tracing::debug!("releasing the association: {e}");
                            }
                        }
                    }
                    Before::GiveUp => {
                        job.put_back(index, file);
                        break 'files;
                    }
                    Before::Open(pause) => {
                        tokio::time::sleep(pause).await;
                        let (contexts, proposed) = job.proposal_for(&file);
                        let attempt = self.associate(contexts, vec![]).await;
                        conn = job.opened(&mut state, proposed, attempt);
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let result = ops::store(c, &file, None, &job.store).await;
            if let Ok(out) = &result {
                state.failures = 0;
                job.bytes(out.bytes);
            }
            if job.stored(index, &file, result) {
                conn = None;
            }
        }
        if let Some(c) = conn {
            if let Err(e) = c.release().await {
                tracing::warn!("releasing the association: {e}");
            }
        }
        if let Some(why) = job.worker_ended() {
            while let Some((index, file)) = job.next_file_async().await {
                job.unsent(index, &file, &why);
            }
            job.over();
        }
    }
}
