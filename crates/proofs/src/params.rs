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
use filecoin_proofs_api::{RegisteredPoStProof, RegisteredSealProof, RegisteredUpdateProof};
use rand::rngs::OsRng;
use storage_proofs_core::compound_proof::CompoundProof;
use storage_proofs_core::parameter_cache::{
    CacheableParameters, parameter_cache_params_path, parameter_cache_verifying_key_path,
};
use storage_proofs_porep::stacked::StackedCompound;
use storage_proofs_post::fallback::FallbackPoStCompound;
use storage_proofs_update::EmptySectorUpdateCompound;
use storage_proofs_update::constants::TreeRHasher;

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

    /// The snap-deals (empty sector update) proof of this size.
    pub fn update_proof(self) -> RegisteredUpdateProof {
        match self {
            TestSectorSize::Size2KiB => RegisteredUpdateProof::StackedDrg2KiBV1,
            TestSectorSize::Size8MiB => RegisteredUpdateProof::StackedDrg8MiBV1,
            TestSectorSize::Size512MiB => RegisteredUpdateProof::StackedDrg512MiBV1,
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
    /// Snap deals: the proof that new data was encoded into a sealed sector.
    SnapUpdate(RegisteredUpdateProof),
}

impl std::fmt::Display for Circuit {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Circuit::PoRep(proof) => write!(formatter, "PoRep {proof:?}"),
            Circuit::PoSt(proof) => write!(formatter, "PoSt {proof:?}"),
            Circuit::SnapUpdate(proof) => write!(formatter, "snap update {proof:?}"),
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
    /// The files that are missing. After an interrupted generation both count as
    /// missing, whatever is on disk: filecoin-proofs writes the files in place, so what
    /// is there may be cut short.
    pub fn missing(&self) -> Vec<&PathBuf> {
        let interrupted = self.generation_was_interrupted();
        [&self.params, &self.verifying_key]
            .into_iter()
            .filter(|path| interrupted || !path.exists())
            .collect()
    }

    /// The marker that exists while this circuit's files are being made.
    pub fn generation_marker(&self) -> PathBuf {
        let name = self
            .params
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.params.with_file_name(format!(".generating-{name}"))
    }

    /// Whether a generation of these files started and never finished.
    pub fn generation_was_interrupted(&self) -> bool {
        self.generation_marker().exists()
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

/// The circuits a sector size needs: PoRep, window PoSt, winning PoSt and snap update.
pub fn circuits(size: TestSectorSize) -> Vec<Circuit> {
    let mut circuits = vec![Circuit::PoRep(size.seal_proof())];
    circuits.extend(size.post_proofs().into_iter().map(Circuit::PoSt));
    circuits.push(Circuit::SnapUpdate(size.update_proof()));
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
        Circuit::SnapUpdate(proof) => {
            let sector_size = u64::from(proof.sector_size());
            with_shape!(sector_size, update_paths, sector_size)
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

fn update_paths<Tree: 'static + MerkleTreeTrait<Hasher = TreeRHasher>>(
    sector_size: u64,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let public = storage_proofs_update::PublicParams::from_sector_size(sector_size);
    let identifier =
        <EmptySectorUpdateCompound<Tree> as CacheableParameters<_, _>>::cache_identifier(&public);
    Ok((
        parameter_cache_params_path(&identifier),
        parameter_cache_verifying_key_path(&identifier),
    ))
}

/// Makes whatever is missing of `circuit`'s parameters and verifying key. Slow: minutes
/// for a 2KiB PoRep. A marker beside the files says a generation is under way; files
/// left by one that was interrupted are removed and made again. Callers that may run
/// concurrently on one cache must take turns (the worker's `params generate` holds a
/// lock on the cache).
pub fn generate(circuit: Circuit) -> Result<(), ParamsError> {
    let files = circuit_files(circuit)?;
    let marker = files.generation_marker();
    let io_error = |action: &'static str| {
        move |source: std::io::Error| ParamsError {
            action,
            circuit: circuit.to_string(),
            message: source.to_string(),
        }
    };
    if files.generation_was_interrupted() {
        for path in [&files.params, &files.verifying_key] {
            match std::fs::remove_file(path) {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error("remove an interrupted generation's file")(source));
                }
                _ => {}
            }
        }
    }
    if let Some(cache) = marker.parent() {
        std::fs::create_dir_all(cache).map_err(io_error("create the parameter cache"))?;
    }
    std::fs::write(&marker, b"").map_err(io_error("mark the generation as under way"))?;
    generate_files(circuit)?;
    for path in [&files.params, &files.verifying_key] {
        std::fs::File::open(path)
            .and_then(|file| file.sync_all())
            .map_err(io_error("sync the made files"))?;
    }
    std::fs::remove_file(&marker).map_err(io_error("remove the generation marker"))
}

fn generate_files(circuit: Circuit) -> Result<(), ParamsError> {
    match circuit {
        Circuit::PoRep(proof) => {
            let config = proof.as_v1_config();
            with_shape!(u64::from(config.sector_size), generate_porep, &config)
        }
        Circuit::PoSt(proof) => {
            let config = proof.as_v1_config();
            with_shape!(u64::from(config.sector_size), generate_post, &config)
        }
        Circuit::SnapUpdate(proof) => {
            let sector_size = u64::from(proof.sector_size());
            with_shape!(sector_size, generate_update, sector_size)
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

fn generate_update<Tree: 'static + MerkleTreeTrait<Hasher = TreeRHasher>>(
    sector_size: u64,
) -> anyhow::Result<()> {
    let public = storage_proofs_update::PublicParams::from_sector_size(sector_size);
    <EmptySectorUpdateCompound<Tree> as CompoundProof<_, _>>::groth_params(
        Some(&mut OsRng),
        &public,
    )?;
    <EmptySectorUpdateCompound<Tree> as CompoundProof<_, _>>::verifying_key(
        Some(&mut OsRng),
        &public,
    )?;
    Ok(())
}
