//! Groth parameters and verifying keys for the test sector sizes, made locally.
//!
//! Production parameters are downloaded by operators (the same files lotus uses); for the
//! small sector sizes used in development and tests (2KiB, 8MiB, 512MiB) this module makes
//! them here, with random setup, into `FIL_PROOFS_PARAMETER_CACHE` (default
//! `/var/tmp/filecoin-proof-parameters`, as filecoin-proofs). Parameters made this way are
//! for tests only: whoever made them could forge proofs. Files already present are kept.

use std::path::PathBuf;

use filecoin_proofs::constants::DefaultPieceHasher;
use filecoin_proofs::parameters::{
    public_params, window_post_public_params, winning_post_public_params,
};
use filecoin_proofs::{MerkleTreeTrait, PoRepConfig, PoStConfig, with_shape};
use filecoin_proofs_api::{RegisteredPoStProof, RegisteredSealProof};
use rand::rngs::OsRng;
use storage_proofs_core::compound_proof::CompoundProof;
use storage_proofs_porep::stacked::StackedCompound;
use storage_proofs_post::fallback::FallbackPoStCompound;

/// The sector sizes whose parameters may be made locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestSectorSize {
    /// 2 KiB.
    Size2KiB,
    /// 8 MiB.
    Size8MiB,
    /// 512 MiB.
    Size512MiB,
}

/// A size that is not a test size.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "parameters can be made here for 2KiB, 8MiB and 512MiB only, not {given:?}; download production parameters for 32GiB and 64GiB"
)]
pub struct NotATestSize {
    /// What was given.
    pub given: String,
}

impl std::str::FromStr for TestSectorSize {
    type Err = NotATestSize;

    fn from_str(text: &str) -> Result<TestSectorSize, NotATestSize> {
        match text.to_ascii_lowercase().as_str() {
            "2kib" => Ok(TestSectorSize::Size2KiB),
            "8mib" => Ok(TestSectorSize::Size8MiB),
            "512mib" => Ok(TestSectorSize::Size512MiB),
            _ => Err(NotATestSize {
                given: text.to_owned(),
            }),
        }
    }
}

impl TestSectorSize {
    /// The size's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TestSectorSize::Size2KiB => "2KiB",
            TestSectorSize::Size8MiB => "8MiB",
            TestSectorSize::Size512MiB => "512MiB",
        }
    }

    /// The current seal proof of this size.
    pub fn seal_proof(self) -> RegisteredSealProof {
        match self {
            TestSectorSize::Size2KiB => RegisteredSealProof::StackedDrg2KiBV1_1,
            TestSectorSize::Size8MiB => RegisteredSealProof::StackedDrg8MiBV1_1,
            TestSectorSize::Size512MiB => RegisteredSealProof::StackedDrg512MiBV1_1,
        }
    }

    /// The window and winning PoSt proofs of this size.
    pub fn post_proofs(self) -> [RegisteredPoStProof; 2] {
        match self {
            TestSectorSize::Size2KiB => [
                RegisteredPoStProof::StackedDrgWindow2KiBV1_2,
                RegisteredPoStProof::StackedDrgWinning2KiBV1,
            ],
            TestSectorSize::Size8MiB => [
                RegisteredPoStProof::StackedDrgWindow8MiBV1_2,
                RegisteredPoStProof::StackedDrgWinning8MiBV1,
            ],
            TestSectorSize::Size512MiB => [
                RegisteredPoStProof::StackedDrgWindow512MiBV1_2,
                RegisteredPoStProof::StackedDrgWinning512MiBV1,
            ],
        }
    }
}

/// Which circuit a parameter file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Circuit {
    /// Proof of replication (C2 and seal verification).
    PoRep(RegisteredSealProof),
    /// Proof of spacetime (window or winning).
    PoSt(RegisteredPoStProof),
}

impl std::fmt::Display for Circuit {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Circuit::PoRep(proof) => write!(formatter, "PoRep {proof:?}"),
            Circuit::PoSt(proof) => write!(formatter, "PoSt {proof:?}"),
        }
    }
}

/// The files of one circuit in the parameter cache and whether each is present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitFiles {
    /// The circuit.
    pub circuit: Circuit,
    /// The Groth parameters (proving key).
    pub params: PathBuf,
    /// The verifying key.
    pub verifying_key: PathBuf,
}

impl CircuitFiles {
    /// The files that are missing.
    pub fn missing(&self) -> Vec<&PathBuf> {
        [&self.params, &self.verifying_key]
            .into_iter()
            .filter(|path| !path.exists())
            .collect()
    }
}

/// Why parameters could not be listed or made.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} for {circuit}: {message}")]
pub struct ParamsError {
    /// What was being done.
    pub action: &'static str,
    /// The circuit.
    pub circuit: String,
    /// What filecoin-proofs said.
    pub message: String,
}

fn error(action: &'static str, circuit: Circuit) -> impl FnOnce(anyhow::Error) -> ParamsError {
    move |source| ParamsError {
        action,
        circuit: circuit.to_string(),
        message: format!("{source:#}"),
    }
}

/// The circuits a sector size needs: PoRep, window PoSt and winning PoSt.
pub fn circuits(size: TestSectorSize) -> Vec<Circuit> {
    let mut circuits = vec![Circuit::PoRep(size.seal_proof())];
    circuits.extend(size.post_proofs().into_iter().map(Circuit::PoSt));
    circuits
}

/// The cache files of every circuit of `size`.
pub fn files(size: TestSectorSize) -> Result<Vec<CircuitFiles>, ParamsError> {
    circuits(size).into_iter().map(circuit_files).collect()
}

fn circuit_files(circuit: Circuit) -> Result<CircuitFiles, ParamsError> {
    let paths = match circuit {
        Circuit::PoRep(proof) => {
            let config = proof.as_v1_config();
            with_shape!(u64::from(config.sector_size), porep_paths, &config)
        }
        Circuit::PoSt(proof) => {
            let config = proof.as_v1_config();
            with_shape!(u64::from(config.sector_size), post_paths, &config)
        }
    };
    let (params, verifying_key) = paths.map_err(error("find the parameter files", circuit))?;
    Ok(CircuitFiles {
        circuit,
        params,
        verifying_key,
    })
}

fn porep_paths<Tree: 'static + MerkleTreeTrait>(
    config: &PoRepConfig,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    Ok((
        config.get_cache_params_path::<Tree>()?,
        config.get_cache_verifying_key_path::<Tree>()?,
    ))
}

fn post_paths<Tree: 'static + MerkleTreeTrait>(
    config: &PoStConfig,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    Ok((
        config.get_cache_params_path::<Tree>()?,
        config.get_cache_verifying_key_path::<Tree>()?,
    ))
}

/// Makes whatever is missing of `circuit`'s parameters and verifying key. Slow: minutes
/// for a 2KiB PoRep.
pub fn generate(circuit: Circuit) -> Result<(), ParamsError> {
    match circuit {
        Circuit::PoRep(proof) => {
            let config = proof.as_v1_config();
            with_shape!(u64::from(config.sector_size), generate_porep, &config)
        }
        Circuit::PoSt(proof) => {
            let config = proof.as_v1_config();
            with_shape!(u64::from(config.sector_size), generate_post, &config)
        }
    }
    .map_err(error("make parameters", circuit))
}

fn generate_porep<Tree: 'static + MerkleTreeTrait>(config: &PoRepConfig) -> anyhow::Result<()> {
    let public = public_params::<Tree>(config)?;
    // Each call loads the file when present and otherwise makes it and writes it.
    <StackedCompound<Tree, DefaultPieceHasher> as CompoundProof<_, _>>::groth_params(
        Some(&mut OsRng),
        &public,
    )?;
    <StackedCompound<Tree, DefaultPieceHasher> as CompoundProof<_, _>>::verifying_key(
        Some(&mut OsRng),
        &public,
    )?;
    Ok(())
}

fn generate_post<Tree: 'static + MerkleTreeTrait>(config: &PoStConfig) -> anyhow::Result<()> {
    let public = match config.typ {
        filecoin_proofs::PoStType::Window => window_post_public_params::<Tree>(config)?,
        filecoin_proofs::PoStType::Winning => winning_post_public_params::<Tree>(config)?,
    };
    <FallbackPoStCompound<Tree> as CompoundProof<_, _>>::groth_params(Some(&mut OsRng), &public)?;
    <FallbackPoStCompound<Tree> as CompoundProof<_, _>>::verifying_key(Some(&mut OsRng), &public)?;
    Ok(())
}
