//! The `sealing-worker` binary: for now, tools for the sector state machine, sealing stores
//! and the worker configuration.
//!
//! The daemon (`sealing-worker daemon`) arrives with issue 7; this binary says so when
//! asked for it rather than pretending to run.

#![allow(
    clippy::print_stdout,
    reason = "a command-line tool prints its results"
)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sector_fsm::Plan;
use std::ffi::OsString;
use std::path::PathBuf;
use storage_alloc::SectorSize;

/// A sealcluster sealing worker.
#[derive(Parser, Debug)]
#[command(name = "sealing-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect the plans a sealing thread can run.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Prepare sealing stores and check that a plan fits its disks.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Check a worker configuration's `[processors]` section against this machine.
    Processors {
        #[command(subcommand)]
        command: ProcessorsCommand,
    },
    /// Run a processor confined to its budget (used by the daemon, not by hand):
    /// `launch [--cpus LIST] [--join CGROUP]... -- PROGRAM [ARGUMENTS...]`.
    #[command(hide = true)]
    Launch {
        /// The launcher's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        arguments: Vec<OsString>,
    },
    /// Make or check proof parameters for test sector sizes.
    Params {
        #[command(subcommand)]
        command: ParamsCommand,
    },
    /// Run a built-in processor for a stage (started by the daemon, or named in a
    /// `[[processors.<stage>]]` entry).
    Processor {
        /// add_pieces, tree_d, pc1, pc2, c1 or c2.
        stage: String,
        /// Answer with deterministic fake proofs instead of real ones; for orchestration
        /// tests and devnets only (configured by SEALCLUSTER_FAKE_PROOFS).
        #[arg(long)]
        fake_proofs: bool,
    },
    /// Read and check a worker configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the worker daemon.
    Daemon,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print each sealing thread's settings and where each comes from (built-in, the
    /// manager, `[sealing]`, the thread, its hot `config.toml`), the storage plan and the
    /// compute plan; exits with an error when something cannot run here.
    Check {
        /// The worker's configuration file.
        #[arg(short, long, env = "DAMOCLES_WORKER_CONFIG")]
        config: PathBuf,
        /// Do not ask the manager for its sealing defaults.
        #[arg(long)]
        offline: bool,
        /// Plan the sealing stores for this sector size instead of each thread's
        /// largest allowed size.
        #[arg(long)]
        sector_size: Option<SectorSize>,
    },
}

#[derive(Subcommand, Debug)]
enum ParamsCommand {
    /// Make the missing Groth parameters and verifying keys of a test sector size into
    /// FIL_PROOFS_PARAMETER_CACHE (default /var/tmp/filecoin-proof-parameters).
    Generate {
        /// 2KiB, 8MiB or 512MiB.
        #[arg(long)]
        sector_size: proofs::params::TestSectorSize,
    },
    /// Say which parameter files of a test sector size are missing.
    Check {
        /// 2KiB, 8MiB or 512MiB.
        #[arg(long)]
        sector_size: proofs::params::TestSectorSize,
    },
}

#[derive(Subcommand, Debug)]
enum ProcessorsCommand {
    /// Read the `[processors]` section of a worker configuration file, check it against
    /// this machine's CPUs, GPUs and memory, and say how budgets would be enforced.
    Check {
        /// The worker's configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Lay out sealing stores (`meta/`, `data/...`, `.holder`) at each location; safe to
    /// repeat, and existing files are kept.
    SealingInit {
        /// A `[[sealing_thread]]` location; repeat for several.
        #[arg(short, long = "location", required = true)]
        locations: Vec<PathBuf>,
    },
    /// Check that one sealing store per location fits on its disk for a sector size.
    CheckPlan {
        /// 2KiB, 8MiB, 512MiB, 32GiB or 64GiB.
        #[arg(long)]
        sector_size: SectorSize,
        /// A `[[sealing_thread]]` location; repeat for several.
        #[arg(short, long = "location", required = true)]
        locations: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PlanCommand {
    /// Print a plan's transition table.
    Show {
        /// sealer, snapup, rebuild, unseal or wdpost.
        plan: Plan,
    },
    /// Walk a new sector through a plan with simulated successful steps.
    Walk {
        /// sealer, snapup, rebuild, unseal or wdpost.
        plan: Plan,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plan {
            command: PlanCommand::Show { plan },
        } => {
            print!("{}", sector_fsm::table::render(plan));
        }
        Command::Plan {
            command: PlanCommand::Walk { plan },
        } => {
            let transcript = worker::walk::walk(plan)
                .with_context(|| format!("walk a sector through plan {plan}"))?;
            print!("{transcript}");
        }
        Command::Store {
            command: StoreCommand::SealingInit { locations },
        } => print!("{}", worker::store::sealing_init(&locations)?),
        Command::Store {
            command:
                StoreCommand::CheckPlan {
                    sector_size,
                    locations,
                },
        } => print!("{}", worker::store::check_plan(sector_size, &locations)?),
        Command::Processors {
            command: ProcessorsCommand::Check { config },
        } => print!("{}", worker::processors::check_file(&config)?),
        Command::Launch { arguments } => {
            let spec = proc_sched::budget::LaunchSpec::from_arguments(&arguments)
                .map_err(anyhow::Error::msg)
                .context("read the launcher's arguments")?;
            // Returns only if the processor could not be started.
            return Err(proc_sched::budget::exec_launch(&spec)).context("launch a processor");
        }
        Command::Params {
            command: ParamsCommand::Generate { sector_size },
        } => print!("{}", worker::params::generate_missing(sector_size)?),
        Command::Params {
            command: ParamsCommand::Check { sector_size },
        } => print!("{}", worker::params::check(sector_size)?),
        Command::Processor { stage, fake_proofs } => {
            let backend: std::sync::Arc<dyn proofs::ProofBackend> = if fake_proofs {
                std::sync::Arc::new(
                    proofs::FakeProofs::from_environment().map_err(anyhow::Error::msg)?,
                )
            } else {
                std::sync::Arc::new(proofs::RealProofs::from_environment())
            };
            if !proofs::backend::BUILT_IN_STAGES.contains(&stage.as_str()) {
                anyhow::bail!(
                    "there is no built-in processor for {stage:?}; built-in stages are {}",
                    proofs::backend::BUILT_IN_STAGES.join(", ")
                );
            }
            let served = stage.clone();
            proc_sched::serve_stage(&stage, move |task| backend.run(&served, task))
                .with_context(|| format!("serve the {stage} processor"))?;
        }
        Command::Config {
            command:
                ConfigCommand::Check {
                    config,
                    offline,
                    sector_size,
                },
        } => {
            let config = worker::config::WorkerConfig::load(&config)?;
            let manager = if offline {
                worker::config_check::ManagerDefaults {
                    layer: None,
                    note: "not asked (--offline); its defaults are left out below".to_owned(),
                }
            } else {
                ask_manager_for_defaults(&config)
            };
            let (report, passed) = worker::config_check::render(&config, &manager, sector_size);
            print!("{report}");
            if !passed {
                // Exiting skips destructors: the report must be out first.
                std::io::Write::flush(&mut std::io::stdout()).context("print the report")?;
                std::process::exit(1);
            }
        }
        Command::Daemon => anyhow::bail!(
            "the sealing-worker daemon is not implemented in this build yet; \
             `sealing-worker plan walk sealer` shows the state machine its threads will drive"
        ),
    }
    Ok(())
}

/// Asks the configured manager for `Venus.SealingDefaults`; a manager that cannot be
/// reached is reported, not an error, so a configuration can be checked before the
/// manager runs.
fn ask_manager_for_defaults(
    config: &worker::config::WorkerConfig,
) -> worker::config_check::ManagerDefaults {
    let unanswered = |note: String| worker::config_check::ManagerDefaults { layer: None, note };
    let url = match config.sector_manager.rpc_url() {
        Ok(url) => url,
        Err(error) => return unanswered(error),
    };
    let asked = (|| -> anyhow::Result<sealer_api::types::SealingDefaults> {
        let client = worker::manager_client::ManagerClient::connect(
            &config.sector_manager,
            std::time::Duration::from_secs(5),
        )
        .map_err(anyhow::Error::msg)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start a runtime")?;
        Ok(runtime.block_on(client.sealing_defaults())?)
    })();
    match asked {
        Ok(defaults) => {
            let (layer, warnings) = worker::config::SealingOverrides::from_manager(&defaults);
            let mut note = format!("{url} serves {} sealing defaults", layer.set_keys().len());
            for warning in warnings {
                note.push_str("; ");
                note.push_str(&warning);
            }
            worker::config_check::ManagerDefaults {
                layer: Some(layer),
                note,
            }
        }
        Err(error) => unanswered(format!(
            "{url} could not be asked ({error:#}); its defaults are left out below"
        )),
    }
}
