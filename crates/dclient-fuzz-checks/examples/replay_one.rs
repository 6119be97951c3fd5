//! Replays one `scp_session` input against the in-memory SCP and prints what it sent.
fn main() {
    let path = std::env::args().nth(1).expect("a file");
    let data = std::fs::read(&path).expect("readable");
    let dir = tempfile::tempdir().expect("tmp");
    let server = dclient_fuzz_checks::scp::Server::start(dir.path().join("scp"));
    println!("{:?}", server.scp.repair_report());
    let out = server.scp.replay(&data, 65536, 16 << 20);
    let mut d = dclient_proto::ul::codec::Deframer::new(0);
    d.push(&out);
    while let Ok(Some(p)) = d.next_pdu() {
        println!("{}", dclient_proto::ul::association::summarize(&p));
        if let dclient_proto::ul::pdu::Pdu::PData(p) = p {
            for v in p.pdvs.iter().filter(|v| v.is_command) {
                if let Ok(cs) = dclient_proto::dimse::command::CommandSet::decode(&v.data) {
                    println!("   {:?}", cs.values());
                }
            }
        }
    }
}
