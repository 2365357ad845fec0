//! What the manager's tests share: a devnet with fake proofs, a manager on SQLite or
//! PostgreSQL against it, a raw JSON-RPC client, and the fake worker outputs.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(
    unreachable_pub,
    reason = "shared by test binaries, which export nothing"
)]

pub mod postgres;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use chain_client::types::TipSetKey;
use chain_client::{Endpoint, LotusClient};
use devnet::{DevnetConfig, ProofMode, RunningDevnet};
use fvm_shared::address::Address;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use manager::config::{BatchConfig, ManagerConfig, MinerConfig, PersistStoreEntry};
use manager::{ProofCheck, RunningManager, StartOptions};
use serde_json::{Value, json};

/// Which database the manager uses.
pub enum Database {
    /// A file in the manager's home.
    Sqlite,
    /// This URL.
    Postgres(String),
}

/// Base64 as Go writes `[]byte`.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64.
pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// The CommD of a committed-capacity 2KiB sector.
pub fn cc_comm_d_2kib() -> [u8; 32] {
    manager::sealer::cc_comm_d(fvm_shared::sector::RegisteredSealProof::StackedDRG2KiBV1P1)
        .expect("the CC CommD")
}

/// The fake backend's proof for a 2KiB sector.
pub fn fake_proof(
    miner: u64,
    number: u64,
    comm_r: [u8; 32],
    comm_d: [u8; 32],
    ticket: &[u8],
    seed: &[u8],
) -> Vec<u8> {
    let seal = proofs::SealToVerify {
        registered_proof: proofs::api::RegisteredSealProof::try_from(
            fvm_shared::sector::RegisteredSealProof::StackedDRG2KiBV1P1,
        )
        .expect("a proofs-api seal proof"),
        comm_r,
        comm_d,
        prover_id: proofs::tasks::prover_id_of(miner),
        sector_id: proofs::api::SectorId::from(number),
        ticket: ticket.try_into().expect("a 32-byte ticket"),
        seed: seed.try_into().expect("a 32-byte seed"),
        proof: Vec::new(),
    };
    proofs::FakeProofs::seal_proof(&seal)
}

/// Writes stand-in files where a persisted 2KiB sector's files go.
pub fn place_persisted_files(store: &std::path::Path, miner: u64, number: u64) {
    let files = storage_alloc::persisted_files(
        sector_fsm::types::SectorId { miner, number },
        storage_alloc::SectorSize::from_bytes(2048).expect("2KiB"),
        storage_alloc::ReplicaKind::Sealed,
    );
    for relative in files {
        let path = store.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
        std::fs::write(&path, b"stand-in").expect("write a stand-in file");
    }
}

/// A devnet on a loopback port that accepts only the fake backend's proofs, making a
/// block every `block_time` (zero: only when asked).
pub async fn fake_devnet(block_time: Duration) -> RunningDevnet {
    devnet::start(
        DevnetConfig {
            block_time,
            proofs: ProofMode::Fake,
            ..DevnetConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("start a devnet")
}

/// A manager home in a temporary directory, with a persistent store `persist-1` in it.
pub fn home_with_store() -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().expect("a home");
    let persist = home.path().join("persist-1");
    std::fs::create_dir_all(&persist).expect("a persistent store");
    (home, persist)
}

/// A raw JSON-RPC client, as a damocles worker talks.
pub struct Api {
    address: SocketAddr,
    token: String,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

impl Api {
    async fn post(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = hyper::Request::post(format!("http://{}/rpc/v0", self.address))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a request");
        let response = self
            .client
            .request(request)
            .await
            .expect("the manager answers");
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// The whole response of a call with `token`, or the HTTP status when it is not 200.
    pub async fn call_with(&self, token: &str, method: &str, params: Value) -> Value {
        let (status, value) = self
            .post(
                Some(token),
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
            )
            .await;
        if status == 200 { value } else { json!(status) }
    }

    /// The whole response of a call without a token.
    pub async fn call_without_token(&self, method: &str, params: Value) -> Value {
        let (status, value) = self
            .post(
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
            )
            .await;
        if status == 200 { value } else { json!(status) }
    }

    /// A call's result; panics on an error.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let response = self
            .call_with(&self.token.clone(), method, params.clone())
            .await;
        assert_eq!(response["jsonrpc"], json!("2.0"), "{method}: {response}");
        assert_eq!(response["id"], json!(1), "{method}: {response}");
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method}({params}) failed: {response}"),
        }
    }

    /// An admin call's result.
    pub async fn admin(&self, method: &str, params: Value) -> Value {
        self.call(method, params).await
    }

    /// Calls twice; both answers must equal `expected`.
    pub async fn twice(&self, method: &str, params: Value, expected: Value) {
        for attempt in ["first", "repeated"] {
            let answer = self.call(method, params.clone()).await;
            assert_eq!(answer, expected, "the {attempt} {method}({params})");
        }
    }

    /// Calls twice; both must fail with `code`.
    pub async fn twice_error(&self, method: &str, params: Value, code: i64) {
        for attempt in ["first", "repeated"] {
            let response = self
                .call_with(&self.token.clone(), method, params.clone())
                .await;
            assert_eq!(
                response["error"]["code"],
                json!(code),
                "the {attempt} {method}({params}): {response}"
            );
            assert!(response["error"]["message"].is_string(), "{response}");
            assert!(response.get("result").is_none(), "{response}");
        }
    }
}

/// A devnet and a manager against it.
pub struct Harness {
    /// The chain.
    pub devnet: RunningDevnet,
    /// The manager.
    pub manager: Option<RunningManager>,
    /// Its API.
    pub api: Api,
    /// The persistent store's directory.
    pub persist: PathBuf,
    /// The manager's home.
    pub home: tempfile::TempDir,
}

/// The manager configuration the tests use: miner 1000, sending as soon as one sector
/// waits, two epochs of confidence.
pub fn test_config(
    devnet: &RunningDevnet,
    database_url: String,
    persist: &std::path::Path,
) -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.common.listen = "127.0.0.1:0".parse().expect("an address");
    config.common.api.chain = devnet.connection_string(Some(&devnet.admin_token));
    config.common.db.url = database_url;
    config.common.persist_stores = vec![PersistStoreEntry {
        name: Some("persist-1".to_owned()),
        path: persist.to_owned(),
        read_only: false,
        weight: 1,
        allow_miners: Vec::new(),
        deny_miners: Vec::new(),
    }];
    config.common.worker_sealing.max_retries = Some(3);
    config.common.worker_sealing.seal_interval = Some("5s".to_owned());
    let mut miner: MinerConfig = toml::from_str("Actor = 1000").expect("a miner block");
    miner.commitment.confidence = 2;
    let quick = BatchConfig {
        threshold: 1,
        max_wait: Duration::ZERO,
        check_interval: Duration::from_millis(100),
    };
    miner.commitment.pre.batch = quick;
    miner.commitment.prove.batch = quick;
    miner.sealing.seed_confidence = 1;
    config.miners = vec![miner];
    config
}

impl Harness {
    /// A devnet with fake proofs and a manager on `database`.
    pub async fn start(database: Database) -> Harness {
        Harness::start_with(database, |_| {}).await
    }

    /// The same, with the configuration changed by `adjust`.
    pub async fn start_with(
        database: Database,
        adjust: impl FnOnce(&mut ManagerConfig),
    ) -> Harness {
        let devnet = fake_devnet(Duration::ZERO).await;
        for _ in 0..3 {
            devnet.produce();
        }
        let (home, persist) = home_with_store();
        let url = match database {
            Database::Sqlite => "sqlite://manager.db".to_owned(),
            Database::Postgres(url) => url,
        };
        let mut config = test_config(&devnet, url, &persist);
        adjust(&mut config);
        let manager = manager::start(StartOptions {
            home: home.path().to_owned(),
            config,
            proof_check: ProofCheck::Fake,
            commit_tick: Duration::from_millis(100),
        })
        .await
        .expect("start the manager");
        let api = Api {
            address: manager.address,
            token: manager.issue_token(&chain_client::auth::Permission::ALL),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build({
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.set_nodelay(true);
                connector
            }),
        };
        Harness {
            devnet,
            manager: Some(manager),
            api,
            persist,
            home,
        }
    }

    /// A token with the named permissions.
    pub fn token(&self, names: &[&str]) -> String {
        use chain_client::auth::Permission;
        let permissions: Vec<Permission> = names
            .iter()
            .map(|name| match *name {
                "read" => Permission::Read,
                "write" => Permission::Write,
                "sign" => Permission::Sign,
                _ => Permission::Admin,
            })
            .collect();
        self.manager
            .as_ref()
            .expect("a running manager")
            .issue_token(&permissions)
    }

    /// Polls `method` for `sector`, making blocks, until it answers Landed; panics on a
    /// failure state.
    pub async fn poll_until_landed(&self, method: &str, sector: &Value) -> Value {
        for _ in 0..200 {
            let answer = self.api.call(method, json!([sector])).await;
            match answer["State"].as_u64() {
                Some(3) => return answer,
                Some(1 | 2) => {}
                _ => panic!("{method} answered {answer}"),
            }
            self.devnet.produce();
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        panic!("{method} never answered Landed");
    }

    /// Whether sector `number` of miner 1000 is active on the devnet.
    pub async fn sector_active(&self, number: u64) -> bool {
        let endpoint = Endpoint::parse(
            &self
                .devnet
                .connection_string(Some(&self.devnet.admin_token)),
        )
        .expect("an endpoint");
        let client = LotusClient::new(
            chain_client::transport::HttpTransport::new(endpoint, Duration::from_secs(10))
                .expect("a transport"),
        );
        client
            .state_sector_get_info(&Address::new_id(1000), number, &TipSetKey::head())
            .await
            .expect("read the sector")
            .is_some()
    }

    /// Stops the manager.
    pub async fn stop(mut self) {
        if let Some(manager) = self.manager.take() {
            manager.stop().await;
        }
    }
}

/// Answered calls' methods and latencies, shared by simulated workers.
pub type Latencies = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, Duration)>>>;

/// A damocles-like worker's calls, retried as a worker retries them: a transport
/// failure (the manager is down) or a temporary error (code 1) is tried again after a
/// pause; any other error is returned. Latencies of answered calls are recorded.
#[derive(Clone)]
pub struct RetryingClient {
    /// Where the manager listens.
    pub address: SocketAddr,
    /// The token to send.
    pub token: String,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    /// Answered calls' latencies, when measured.
    pub latencies: Option<Latencies>,
    /// Pause between tries.
    pub pause: Duration,
}

impl RetryingClient {
    /// A client of the manager at `address`.
    pub fn new(address: SocketAddr, token: String) -> RetryingClient {
        RetryingClient {
            address,
            token,
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build({
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.set_nodelay(true);
                connector
            }),
            latencies: None,
            pause: Duration::from_millis(100),
        }
    }

    async fn once(&self, method: &'static str, params: &Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let request = hyper::Request::post(format!("http://{}/rpc/v0", self.address))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|error| error.to_string())?;
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(20), self.client.request(request))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|error| format!("transport: {error}"))?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("transport: {error}"))?
            .to_bytes();
        if let Some(latencies) = &self.latencies {
            latencies
                .lock()
                .expect("the latency list")
                .push((method, started.elapsed()));
        }
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|error| format!("transport: {error}"))?;
        match value.get("error") {
            None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
            Some(error) if error["code"] == json!(1) => Err(format!("temporary: {error}")),
            Some(error) => Err(format!("final: {error}")),
        }
    }

    /// One try of a call: its result, or the error (`transport: …`, `temporary: …` for
    /// code 1, `final: …` otherwise).
    pub async fn call_once(&self, method: &'static str, params: Value) -> Result<Value, String> {
        self.once(method, &params).await
    }

    /// The call's result, retrying transport failures and temporary errors; panics on
    /// any other error.
    pub async fn call(&self, method: &'static str, params: Value) -> Value {
        for _ in 0..3000 {
            match self.once(method, &params).await {
                Ok(value) => return value,
                Err(error) if error.starts_with("final") => panic!("{method}({params}): {error}"),
                Err(_) => tokio::time::sleep(self.pause).await,
            }
        }
        panic!("{method}({params}) never succeeded");
    }
}

/// Drives one committed-capacity 2KiB sector of miner 1000 through its whole life the
/// way a worker does: allocate, ticket, precommit, poll, seed, proof, poll, reserve,
/// persist, finalize. Resubmits with a hard reset when a poll says `Failed`. Returns the
/// sector number.
pub async fn seal_one_sector(
    client: &RetryingClient,
    persist: &std::path::Path,
    poll: Duration,
) -> u64 {
    let allocated = loop {
        let answer = client
            .call(
                "Venus.AllocateSector",
                json!([{"AllowedMiners": [1000], "AllowedProofTypes": [5]}]),
            )
            .await;
        if !answer.is_null() {
            break answer;
        }
        tokio::time::sleep(poll).await;
    };
    let number = allocated["ID"]["Number"].as_u64().expect("a sector number");
    let sector = allocated["ID"].clone();
    let report = |prev: &str, next: &str| {
        json!([sector, {"Worker": {"Instance": "simulated", "Location": format!("/store/{number}")},
            "StateChange": {"Prev": prev, "Next": next, "Event": "Event::Simulated"}, "Failure": null}])
    };
    client
        .call("Venus.ReportState", report("Empty", "Allocated"))
        .await;
    let ticket = client.call("Venus.AssignTicket", json!([sector])).await;
    let ticket_bytes = unb64(ticket["Ticket"].as_str().expect("a ticket"));
    let mut comm_r = [0u8; 32];
    comm_r[..8].copy_from_slice(&number.to_le_bytes());
    comm_r[31] = 0x0c;
    let comm_d = cc_comm_d_2kib();
    client
        .call("Venus.ReportState", report("Allocated", "PC2Done"))
        .await;
    let pre = json!({"CommR": comm_r, "CommD": comm_d, "Ticket": ticket});
    let mut reset = false;
    loop {
        let answer = client
            .call("Venus.SubmitPreCommit", json!([allocated, pre, reset]))
            .await;
        assert_eq!(answer["Res"], json!(1), "precommit of {number}: {answer}");
        match poll_until_final(client, "Venus.PollPreCommitState", &sector, poll).await {
            3 => break,
            5 => reset = true,
            other => panic!("precommit of {number} ended in state {other}"),
        }
    }
    let seed = loop {
        let answer = client.call("Venus.WaitSeed", json!([sector, 5])).await;
        if answer["ShouldWait"] == json!(false) {
            break answer["Seed"].clone();
        }
        tokio::time::sleep(poll).await;
    };
    let seed_bytes = unb64(seed["Seed"].as_str().expect("a seed"));
    client
        .call("Venus.ReportState", report("PCLanded", "SeedAssigned"))
        .await;
    let proof = fake_proof(1000, number, comm_r, comm_d, &ticket_bytes, &seed_bytes);
    let mut reset = false;
    loop {
        let answer = client
            .call(
                "Venus.SubmitProof",
                json!([sector, {"Proof": b64(&proof)}, reset]),
            )
            .await;
        assert_eq!(answer["Res"], json!(1), "proof of {number}: {answer}");
        match poll_until_final(client, "Venus.PollProofState", &sector, poll).await {
            3 => break,
            5 => reset = true,
            other => panic!("proof of {number} ended in state {other}"),
        }
    }
    let store = client
        .call("Venus.StoreReserveSpace", json!([sector, 4096, []]))
        .await;
    assert_eq!(store["Name"], json!("persist-1"), "{store}");
    // Off the runtime's threads: a file write can wait for the file system's journal,
    // which the manager's synced commits keep busy, and would hold up every simulated
    // worker on the thread meanwhile.
    let store = persist.to_path_buf();
    tokio::task::spawn_blocking(move || place_persisted_files(&store, 1000, number))
        .await
        .expect("place the persisted files");
    assert_eq!(
        client
            .call(
                "Venus.SubmitPersistedEx",
                json!([sector, "persist-1", false])
            )
            .await,
        json!(true)
    );
    client
        .call("Venus.ReportState", report("Persisted", "Finished"))
        .await;
    client.call("Venus.ReportFinalized", json!([sector])).await;
    number
}

async fn poll_until_final(
    client: &RetryingClient,
    method: &'static str,
    sector: &Value,
    poll: Duration,
) -> u64 {
    loop {
        let answer = client.call(method, json!([sector])).await;
        match answer["State"].as_u64() {
            Some(1 | 2) => tokio::time::sleep(poll).await,
            Some(state) => return state,
            None => panic!("{method}: {answer}"),
        }
    }
}

/// Counts, over the devnet's canonical chain, how many precommit and prove-commit
/// messages to miner 1000 carried each sector number.
pub fn sector_message_counts(
    devnet: &RunningDevnet,
) -> std::collections::BTreeMap<u64, (usize, usize)> {
    use fil_actor_miner_state::v18 as miner;
    let chain = devnet.state().chain();
    let mut counts = std::collections::BTreeMap::<u64, (usize, usize)>::new();
    for tipset in chain.canonical() {
        for message in chain.included_in(&tipset.key()) {
            let message = message.message;
            if message.to != Address::new_id(1000) {
                continue;
            }
            if message.method_num == miner::Method::PreCommitSectorBatch2 as u64 {
                let params: miner::PreCommitSectorBatchParams2 =
                    fvm_ipld_encoding::from_slice(&message.params).expect("precommit params");
                for sector in params.sectors {
                    counts.entry(sector.sector_number).or_default().0 += 1;
                }
            } else if message.method_num == miner::Method::ProveCommitSectors3 as u64 {
                let params: miner::ProveCommitSectors3Params =
                    fvm_ipld_encoding::from_slice(&message.params).expect("prove params");
                for activation in params.sector_activations {
                    counts.entry(activation.sector_number).or_default().1 += 1;
                }
            }
        }
    }
    counts
}

/// A `sector-manager daemon run --fake-proofs` process, killed when its owner is
/// dropped (a test that passes or panics, a benchmark that ends), so no run leaves a
/// daemon behind.
pub struct ManagerProcess(pub std::process::Child);

impl Drop for ManagerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for ManagerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for ManagerProcess {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

/// Writes `<home>/sector-manager.toml` for a manager process: miner 1000 on the devnet,
/// the database at `url`, `persist` as its store, batches of `threshold` sectors sent
/// within a second. Returns the address the API will listen on.
pub fn write_process_config(
    home: &std::path::Path,
    devnet: &RunningDevnet,
    url: &str,
    persist: &std::path::Path,
    threshold: usize,
) -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let config = format!(
        r#"
[Common]
Listen = "127.0.0.1:{port}"
[Common.API]
Chain = "{chain}"
[Common.DB]
URL = "{url}"
[[Common.PersistStores]]
Name = "persist-1"
Path = "{persist}"

[[Miners]]
Actor = 1000
[Miners.Commitment]
Confidence = 2
[Miners.Commitment.Pre]
Batch = {{ Threshold = {threshold}, MaxWait = "1s", CheckInterval = "200ms" }}
[Miners.Commitment.Prove]
Batch = {{ Threshold = {threshold}, MaxWait = "1s", CheckInterval = "200ms" }}
[Miners.Sealing]
SeedConfidence = 1
"#,
        chain = devnet.connection_string(Some(&devnet.admin_token)),
        persist = persist.display(),
    );
    std::fs::write(home.join("sector-manager.toml"), config).expect("write the config");
    format!("127.0.0.1:{port}").parse().expect("an address")
}

/// Starts `sector-manager --home HOME daemon run --fake-proofs`, its log appended to
/// `<home>/manager.log`, with `environment` added.
pub fn spawn_manager_process(
    home: &std::path::Path,
    rust_log: &str,
    environment: &[(&str, &str)],
) -> ManagerProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("manager.log"))
        .expect("open the manager's log");
    std::process::Command::new(env!("CARGO_BIN_EXE_sector-manager"))
        .arg("--home")
        .arg(home)
        .args(["daemon", "run", "--fake-proofs"])
        .env("RUST_LOG", rust_log)
        .envs(environment.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(ManagerProcess)
        .expect("start sector-manager")
}

/// The admin token a manager process writes into its home once it serves.
pub async fn admin_token_of(home: &std::path::Path) -> String {
    let path = home.join("token");
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the manager did not start; see {}",
            home.join("manager.log").display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::read_to_string(&path).expect("the admin token")
}
