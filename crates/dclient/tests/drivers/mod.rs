//! One client interface over both drivers, so that every interop case runs against the
//! blocking [`DClient`] and the async [`AsyncDClient`] from the same code: each test
//! loops over [`kinds`] and builds its client with [`client`].
#![allow(dead_code)]

use std::ops::ControlFlow;
use std::path::PathBuf;

use dclient::proto::dimse::command::{CommandSet, CommandValue};
use dclient::{
    ClientOptions, DClient, FindRequest, FindSummary, GetOptions, RetrieveRequest, RetrieveResult,
    SendOptions, SendReport,
};
use dicom_object::InMemDicomObject;

/// Which driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `DClient` over std::net.
    Blocking,
    /// `dclient::tokio::AsyncDClient` on a multi-threaded tokio runtime.
    Async,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Blocking => "blocking",
            Kind::Async => "async",
        })
    }
}

thread_local! {
    /// The driver the current test iteration runs on (see [`for_each_driver`]).
    static CURRENT: std::cell::Cell<Option<Kind>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` once per driver, [`current`] telling which.
/// After each async iteration, no task of the driver may be left running (the tasks a
/// dropped connection spawns to write its A-ABORT end within a second).
pub fn for_each_driver(f: impl Fn()) {
    for k in kinds() {
        CURRENT.with(|c| c.set(Some(k)));
        eprintln!("--- on the {k} driver");
        f();
        #[cfg(feature = "tokio")]
        if k == Kind::Async {
            asynchronous::assert_no_task_left();
        }
    }
    CURRENT.with(|c| c.set(None));
}

/// The driver of the current iteration of [`for_each_driver`] (blocking outside it).
pub fn current() -> Kind {
    CURRENT.with(|c| c.get()).unwrap_or(Kind::Blocking)
}

/// Every driver this build has (the async one with the `tokio` feature, as CI builds).
pub fn kinds() -> Vec<Kind> {
    let mut v = vec![Kind::Blocking];
    if cfg!(feature = "tokio") {
        v.push(Kind::Async);
    }
    v
}

/// What the interop tests ask of a client, whichever the driver.
pub trait Client {
    fn kind(&self) -> Kind;
    fn options(&self) -> &ClientOptions;
    fn echo(&mut self) -> dclient::Result<()>;
    fn test(&mut self) -> bool;
    fn find(&mut self, req: &FindRequest) -> dclient::Result<Vec<InMemDicomObject>>;
    fn find_each(
        &mut self,
        req: &FindRequest,
        on_match: &mut (dyn FnMut(InMemDicomObject) -> ControlFlow<()> + Send),
    ) -> dclient::Result<FindSummary>;
    /// Reads a C-FIND through the driver's streaming form, handing each match to
    /// `on_match`.
    fn stream(
        &mut self,
        req: &FindRequest,
        on_match: &mut dyn FnMut(InMemDicomObject),
    ) -> dclient::Result<FindSummary>;
    fn command_results(&self) -> &[CommandSet];
    fn command_results_map(&self) -> Vec<std::collections::BTreeMap<String, CommandValue>>;
    fn data_results(&self) -> &[InMemDicomObject];
    fn find_summary(&self) -> Option<&FindSummary>;
    fn send(&mut self, paths: &[PathBuf], options: &SendOptions) -> dclient::Result<SendReport>;
    /// `send` counting the events: (report, `File` events, files of the last `Found`).
    fn send_events(
        &mut self,
        paths: &[PathBuf],
        options: &SendOptions,
    ) -> dclient::Result<(SendReport, usize, Option<usize>)>;
    fn get(
        &mut self,
        req: &RetrieveRequest,
        dir: &std::path::Path,
        opts: &GetOptions,
    ) -> dclient::Result<RetrieveResult>;
    fn move_to(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
    ) -> dclient::Result<RetrieveResult>;
    fn move_and_receive(
        &mut self,
        req: &RetrieveRequest,
        port: u16,
        dir: &std::path::Path,
    ) -> dclient::Result<(RetrieveResult, u64)>;

    /// C-STORE of one prepared file on an association of its own (opened for the file's
    /// contexts, released after).
    fn store_one(
        &mut self,
        file: &dclient::store::PreparedFile,
    ) -> Result<dclient::store::StoreOutcome, dclient::store::StoreError>;
    /// Tasks of the driver's runtime still alive (always 0 for the blocking driver).
    fn tasks_alive(&self) -> usize;

    fn commit(
        &mut self,
        req: &dclient::CommitRequest,
        opts: &dclient::CommitOptions,
    ) -> dclient::Result<dclient::CommitResult>;
    fn find_worklist(
        &mut self,
        req: &dclient::WorklistRequest,
    ) -> dclient::Result<Vec<InMemDicomObject>>;
    fn mpps_start(
        &mut self,
        uid: Option<&str>,
        attrs: &[(&str, &str)],
    ) -> dclient::Result<dclient::MppsResult>;
    fn mpps_complete(
        &mut self,
        uid: &str,
        attrs: &[(&str, &str)],
    ) -> dclient::Result<dclient::MppsResult>;
    fn mpps_discontinue(
        &mut self,
        uid: &str,
        attrs: &[(&str, &str)],
    ) -> dclient::Result<dclient::MppsResult>;

    fn send_paths(&mut self, paths: &[&std::path::Path]) -> dclient::Result<SendReport> {
        let v: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
        self.send(&v, &SendOptions::default())
    }

    fn find_at(
        &mut self,
        level: dclient::QueryLevel,
        keys: &[(&str, &str)],
    ) -> dclient::Result<Vec<InMemDicomObject>> {
        let req = FindRequest::new(level, keys)?;
        self.find(&req)
    }
    fn find_patients(&mut self, keys: &[(&str, &str)]) -> dclient::Result<Vec<InMemDicomObject>> {
        self.find_at(dclient::QueryLevel::Patient, keys)
    }
    fn find_studies(&mut self, keys: &[(&str, &str)]) -> dclient::Result<Vec<InMemDicomObject>> {
        self.find_at(dclient::QueryLevel::Study, keys)
    }
    fn find_series(&mut self, keys: &[(&str, &str)]) -> dclient::Result<Vec<InMemDicomObject>> {
        self.find_at(dclient::QueryLevel::Series, keys)
    }
    fn find_images(&mut self, keys: &[(&str, &str)]) -> dclient::Result<Vec<InMemDicomObject>> {
        self.find_at(dclient::QueryLevel::Image, keys)
    }
}

/// What a send reported through its events.
#[derive(Default)]
pub struct EventCounts {
    files: std::sync::atomic::AtomicUsize,
    found: std::sync::Mutex<Option<usize>>,
}

impl EventCounts {
    pub fn see(&self, e: &dclient::SendEvent<'_>) {
        match e {
            dclient::SendEvent::File(_) => {
                self.files.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            dclient::SendEvent::Found { files, complete: true, .. } => {
                *self.found.lock().unwrap() = Some(*files);
            }
            _ => {}
        }
    }

    pub fn with(&self, r: SendReport) -> (SendReport, usize, Option<usize>) {
        (r, self.files.load(std::sync::atomic::Ordering::SeqCst), *self.found.lock().unwrap())
    }
}

/// A client of `kind` for `127.0.0.1:port`.
pub fn client(kind: Kind, port: u16, options: ClientOptions) -> Box<dyn Client> {
    CURRENT.with(|c| c.set(Some(kind)));
    match kind {
        Kind::Blocking => Box::new(DClient::with_options("127.0.0.1", port, options)),
        #[cfg(feature = "tokio")]
        Kind::Async => Box::new(asynchronous::Async::new(port, options)),
        #[cfg(not(feature = "tokio"))]
        Kind::Async => unreachable!("the async driver needs the tokio feature"),
    }
}

impl Client for DClient {
    fn kind(&self) -> Kind {
        Kind::Blocking
    }
    fn options(&self) -> &ClientOptions {
        DClient::options(self)
    }
    fn echo(&mut self) -> dclient::Result<()> {
        DClient::echo(self)
    }
    fn test(&mut self) -> bool {
        DClient::test(self)
    }
    fn find(&mut self, req: &FindRequest) -> dclient::Result<Vec<InMemDicomObject>> {
        DClient::find(self, req)
    }
    fn find_each(
        &mut self,
        req: &FindRequest,
        on_match: &mut (dyn FnMut(InMemDicomObject) -> ControlFlow<()> + Send),
    ) -> dclient::Result<FindSummary> {
        DClient::find_each(self, req, on_match)
    }
    fn stream(
        &mut self,
        req: &FindRequest,
        on_match: &mut dyn FnMut(InMemDicomObject),
    ) -> dclient::Result<FindSummary> {
        let mut s = self.find_stream(req)?;
        for m in &mut s {
            on_match(m?);
        }
        s.summary().cloned().ok_or(dclient::Error::Internal("no summary"))
    }
    fn command_results(&self) -> &[CommandSet] {
        DClient::command_results(self)
    }
    fn command_results_map(&self) -> Vec<std::collections::BTreeMap<String, CommandValue>> {
        DClient::command_results_map(self)
    }
    fn data_results(&self) -> &[InMemDicomObject] {
        DClient::data_results(self)
    }
    fn find_summary(&self) -> Option<&FindSummary> {
        DClient::find_summary(self)
    }
    fn send(&mut self, paths: &[PathBuf], options: &SendOptions) -> dclient::Result<SendReport> {
        self.send_with(paths, options, &|_| {})
    }
    fn send_events(
        &mut self,
        paths: &[PathBuf],
        options: &SendOptions,
    ) -> dclient::Result<(SendReport, usize, Option<usize>)> {
        let counts = EventCounts::default();
        let r = self.send_with(paths, options, &|e| counts.see(&e))?;
        Ok(counts.with(r))
    }
    fn get(
        &mut self,
        req: &RetrieveRequest,
        dir: &std::path::Path,
        opts: &GetOptions,
    ) -> dclient::Result<RetrieveResult> {
        let storage = dclient::receive::StorageDir::new(dir)?;
        DClient::get(self, req, &storage, opts, &mut |_| {})
    }
    fn move_to(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
    ) -> dclient::Result<RetrieveResult> {
        DClient::move_to(self, destination, req, &mut |_| {})
    }
    fn move_and_receive(
        &mut self,
        req: &RetrieveRequest,
        port: u16,
        dir: &std::path::Path,
    ) -> dclient::Result<(RetrieveResult, u64)> {
        let loopback = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        DClient::move_and_receive(self, req, loopback, port, dir, &mut |_| {})
    }
    fn store_one(
        &mut self,
        file: &dclient::store::PreparedFile,
    ) -> Result<dclient::store::StoreOutcome, dclient::store::StoreError> {
        let mut a = self.open(dclient::Contexts::new().storage_for([file]))?;
        let out = a.store(file)?;
        a.release()?;
        Ok(out)
    }
    fn tasks_alive(&self) -> usize {
        0
    }
    fn commit(
        &mut self,
        req: &dclient::CommitRequest,
        opts: &dclient::CommitOptions,
    ) -> dclient::Result<dclient::CommitResult> {
        DClient::commit(self, req, opts)
    }
    fn find_worklist(
        &mut self,
        req: &dclient::WorklistRequest,
    ) -> dclient::Result<Vec<InMemDicomObject>> {
        DClient::find_worklist(self, req)
    }
    fn mpps_start(
        &mut self,
        uid: Option<&str>,
        attrs: &[(&str, &str)],
    ) -> dclient::Result<dclient::MppsResult> {
        DClient::mpps_start(self, uid, attrs)
    }
    fn mpps_complete(
        &mut self,
        uid: &str,
        attrs: &[(&str, &str)],
    ) -> dclient::Result<dclient::MppsResult> {
        DClient::mpps_complete(self, uid, attrs)
    }
    fn mpps_discontinue(
        &mut self,
        uid: &str,
        attrs: &[(&str, &str)],
    ) -> dclient::Result<dclient::MppsResult> {
        DClient::mpps_discontinue(self, uid, attrs)
    }
}

#[cfg(feature = "tokio")]
mod asynchronous {
    use std::sync::Arc;

    use dclient::tokio::AsyncDClient;

    use super::*;

    thread_local! {
        /// One runtime per test thread, shared by its async clients.
        static RUNTIME: std::rc::Rc<tokio::runtime::Runtime> = std::rc::Rc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime"),
        );
    }

    /// No task of the thread's runtime is alive within a second.
    pub fn assert_no_task_left() {
        RUNTIME.with(|rt| {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while rt.metrics().num_alive_tasks() > 0 && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(rt.metrics().num_alive_tasks(), 0, "tasks left running");
        });
    }

    /// The async client on the thread's runtime; each call is `block_on` of the async
    /// method (the test's thread waits, the runtime's threads run the I/O).
    pub struct Async {
        rt: std::rc::Rc<tokio::runtime::Runtime>,
        inner: AsyncDClient,
    }

    impl Async {
        pub fn new(port: u16, options: ClientOptions) -> Async {
            let rt = RUNTIME.with(|rt| rt.clone());
            Async { rt, inner: AsyncDClient::with_options("127.0.0.1", port, options) }
        }
    }

    impl Client for Async {
        fn kind(&self) -> Kind {
            Kind::Async
        }
        fn options(&self) -> &ClientOptions {
            self.inner.options()
        }
        fn echo(&mut self) -> dclient::Result<()> {
            self.rt.block_on(self.inner.echo())
        }
        fn test(&mut self) -> bool {
            self.rt.block_on(self.inner.test())
        }
        fn find(&mut self, req: &FindRequest) -> dclient::Result<Vec<InMemDicomObject>> {
            self.rt.block_on(self.inner.find(req))
        }
        fn find_each(
            &mut self,
            req: &FindRequest,
            on_match: &mut (dyn FnMut(InMemDicomObject) -> ControlFlow<()> + Send),
        ) -> dclient::Result<FindSummary> {
            self.rt.block_on(self.inner.find_each(req, on_match))
        }
        fn stream(
            &mut self,
            req: &FindRequest,
            on_match: &mut dyn FnMut(InMemDicomObject),
        ) -> dclient::Result<FindSummary> {
            let inner = &self.inner;
            self.rt.block_on(async {
                use futures_util::StreamExt;
                let mut s = inner.find_stream(req).await?;
                while let Some(m) = s.next().await {
                    on_match(m?);
                }
                s.summary().cloned().ok_or(dclient::Error::Internal("no summary"))
            })
        }
        fn command_results(&self) -> &[CommandSet] {
            self.inner.command_results()
        }
        fn command_results_map(&self) -> Vec<std::collections::BTreeMap<String, CommandValue>> {
            self.inner.command_results_map()
        }
        fn data_results(&self) -> &[InMemDicomObject] {
            self.inner.data_results()
        }
        fn find_summary(&self) -> Option<&FindSummary> {
            self.inner.find_summary()
        }
        fn send(
            &mut self,
            paths: &[PathBuf],
            options: &SendOptions,
        ) -> dclient::Result<SendReport> {
            self.rt.block_on(self.inner.send_with(paths, options, Arc::new(|_| {})))
        }
        fn send_events(
            &mut self,
            paths: &[PathBuf],
            options: &SendOptions,
        ) -> dclient::Result<(SendReport, usize, Option<usize>)> {
            let counts = Arc::new(EventCounts::default());
            let c = counts.clone();
            let on_event = Arc::new(move |e: dclient::SendEvent<'_>| c.see(&e));
            let r = self.rt.block_on(self.inner.send_with(paths, options, on_event))?;
            Ok(counts.with(r))
        }
        fn get(
            &mut self,
            req: &RetrieveRequest,
            dir: &std::path::Path,
            opts: &GetOptions,
        ) -> dclient::Result<RetrieveResult> {
            let storage = dclient::receive::StorageDir::new(dir)?;
            self.rt.block_on(self.inner.get(req, &storage, opts, &mut |_| {}))
        }
        fn move_to(
            &mut self,
            destination: &str,
            req: &RetrieveRequest,
        ) -> dclient::Result<RetrieveResult> {
            self.rt.block_on(self.inner.move_to(destination, req, &mut |_| {}))
        }
        fn move_and_receive(
            &mut self,
            req: &RetrieveRequest,
            port: u16,
            dir: &std::path::Path,
        ) -> dclient::Result<(RetrieveResult, u64)> {
            let loopback = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
            self.rt.block_on(self.inner.move_and_receive(req, loopback, port, dir, &mut |_| {}))
        }
        fn store_one(
            &mut self,
            file: &dclient::store::PreparedFile,
        ) -> Result<dclient::store::StoreOutcome, dclient::store::StoreError> {
            let inner = &self.inner;
            self.rt.block_on(async {
                let mut a = inner.open(dclient::Contexts::new().storage_for([file])).await?;
                let out = a.store(file).await?;
                a.release().await?;
                Ok(out)
            })
        }
        fn tasks_alive(&self) -> usize {
            self.rt.metrics().num_alive_tasks()
        }
        fn commit(
            &mut self,
            req: &dclient::CommitRequest,
            opts: &dclient::CommitOptions,
        ) -> dclient::Result<dclient::CommitResult> {
            self.rt.block_on(self.inner.commit(req, opts))
        }
        fn find_worklist(
            &mut self,
            req: &dclient::WorklistRequest,
        ) -> dclient::Result<Vec<InMemDicomObject>> {
            self.rt.block_on(self.inner.find_worklist(req))
        }
        fn mpps_start(
            &mut self,
            uid: Option<&str>,
            attrs: &[(&str, &str)],
        ) -> dclient::Result<dclient::MppsResult> {
            self.rt.block_on(self.inner.mpps_start(uid, attrs))
        }
        fn mpps_complete(
            &mut self,
            uid: &str,
            attrs: &[(&str, &str)],
        ) -> dclient::Result<dclient::MppsResult> {
            self.rt.block_on(self.inner.mpps_complete(uid, attrs))
        }
        fn mpps_discontinue(
            &mut self,
            uid: &str,
            attrs: &[(&str, &str)],
        ) -> dclient::Result<dclient::MppsResult> {
            self.rt.block_on(self.inner.mpps_discontinue(uid, attrs))
        }
    }
}
