//! `sealcluster-devnet`: the development chain as a process, for running the manager by
//! hand against something that speaks Lotus.
#![allow(
    clippy::print_stdout,
    reason = "the command prints its connection details for the operator"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use devnet::faults::FaultPlan;
use devnet::mining::{BlockMiner, JsonRpcWinningProver};
use devnet::{DevnetConfig, ProofMode};
use fvm_shared::sector::RegisteredSealProof;

/// A Lotus-compatible development chain.
#[derive(Parser, Debug)]
#[command(name = "sealcluster-devnet", version)]
struct Arguments {
    /// Where to serve JSON-RPC (HTTP and WebSocket on /rpc/v0 and /rpc/v1).
    #[arg(long, default_value = "127.0.0.1:1234")]
    listen: SocketAddr,
    /// Keep the chain here so it survives a restart (in memory if absent).
    #[arg(long)]
    directory: Option<PathBuf>,
    /// Time between blocks, like `1s` or `250ms`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    block_time: Duration,
    /// Epochs between a precommit and its seed.
    #[arg(long, default_value_t = 10)]
    pre_commit_challenge_delay: i64,
    /// Epochs per proving period.
    #[arg(long, default_value_t = 2880)]
    proving_period: i64,
    /// The sector size of the devnet's miner: 2KiB, 8MiB, 512MiB, 32GiB or 64GiB.
    #[arg(long, default_value = "2KiB")]
    sector_size: String,
    /// The miner's actor id.
    #[arg(long, default_value_t = 1000)]
    miner_id: u64,
    /// The worker account's actor id.
    #[arg(long, default_value_t = 100)]
    worker_id: u64,
    /// Accept the fake proof backend's proofs instead of verifying real ones (for
    /// orchestration tests only; a real proof is then refused).
    #[arg(long)]
    fake_proofs: bool,
    /// A TOML file of faults to inject (seed, drop_probability, out_of_gas_probability,
    /// max_extra_inclusion_delay, reorg_every, reorg_depth, rpc_error_probability,
    /// max_rpc_latency_ms).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Let the miner win blocks: each round it is elected with `--win-probability`, and
    /// its winning PoSt is asked of this sector manager (`TOKEN:http://host:port/rpc/v0`,
    /// a write token; the manager runs `daemon run --miner`).
    #[arg(long)]
    winning_post_from: Option<String>,
    /// The miner's chance of being elected in a round, from 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    win_probability: f64,
    /// How long a round waits for the winning PoSt.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    winning_post_timeout: Duration,
}

fn seal_proof(size: &str) -> anyhow::Result<RegisteredSealProof> {
    Ok(match size.to_ascii_lowercase().as_str() {
        "2kib" => RegisteredSealProof::StackedDRG2KiBV1P1,
        "8mib" => RegisteredSealProof::StackedDRG8MiBV1P1,
        "512mib" => RegisteredSealProof::StackedDRG512MiBV1P1,
        "32gib" => RegisteredSealProof::StackedDRG32GiBV1P1,
        "64gib" => RegisteredSealProof::StackedDRG64GiBV1P1,
        _ => anyhow::bail!("--sector-size {size:?} is not one of 2KiB, 8MiB, 512MiB, 32GiB, 64GiB"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let faults = match &arguments.faults {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            toml::from_str::<FaultPlan>(&text)
                .with_context(|| format!("read the fault plan {}", path.display()))?
        }
        None => FaultPlan::default(),
    };
    let config = DevnetConfig {
        block_time: arguments.block_time,
        pre_commit_challenge_delay: arguments.pre_commit_challenge_delay,
        proving_period: arguments.proving_period,
        seal_proof: seal_proof(&arguments.sector_size)?,
        miner_id: arguments.miner_id,
        worker_id: arguments.worker_id,
        proofs: if arguments.fake_proofs {
            ProofMode::Fake
        } else {
            ProofMode::Real
        },
        directory: arguments.directory.clone(),
        faults,
        ..DevnetConfig::default()
    };
    let devnet = devnet::start(config, arguments.listen)
        .await
        .with_context(|| format!("start the devnet on {}", arguments.listen))?;
    if let Some(connection) = &arguments.winning_post_from {
        anyhow::ensure!(
            (0.0..=1.0).contains(&arguments.win_probability),
            "--win-probability {} is not between 0 and 1",
            arguments.win_probability
        );
        let prover = JsonRpcWinningProver::new(connection, arguments.winning_post_timeout)
            .map_err(|error| anyhow::anyhow!("--winning-post-from: {error}"))?;
        devnet.state().add_block_miner(BlockMiner {
            miner_id: arguments.miner_id,
            win_probability: arguments.win_probability,
            prover: std::sync::Arc::new(prover),
            proof_timeout: arguments.winning_post_timeout,
        });
        println!(
            "t0{} mines blocks with winning PoSts from the sector manager",
            arguments.miner_id
        );
    }
    println!("listening on {}", devnet.address);
    println!(
        "miner: t0{} (worker t0{})",
        arguments.miner_id, arguments.worker_id
    );
    println!("admin token: {}", devnet.admin_token);
    println!(
        "FULLNODE_API_INFO={}",
        devnet.connection_string(Some(&devnet.admin_token))
    );
    tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
    println!("stopping");
    Ok(())
}
