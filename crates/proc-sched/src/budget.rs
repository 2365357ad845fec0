//! Budgets: the slice of the machine a processor gets, and how the kernel is made to keep it.
//!
//! A processor's CPU set is applied twice over: a small launcher (the worker binary run as
//! `sealing-worker launch ...`, or any program that calls [`exec_launch`]) sets the CPU
//! affinity of itself with `sched_setaffinity` and joins the processor's control groups
//! before it replaces itself with the processor's program, so the processor starts
//! confined and every thread it makes inherits the confinement. Where a control group is
//! writable (cgroup v2, or the v1 `cpuset` and `memory` hierarchies), the daemon makes one
//! per processor with its CPU set and memory limit; the kernel then also enforces them
//! against a processor that changes its own affinity. [`CgroupSupport::describe`] says at
//! start which of these is in force. GPUs are handed out with `CUDA_VISIBLE_DEVICES` and
//! `GPU_DEVICE_ORDINAL` ([`gpu_environment`]).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A set of CPU numbers, written as Linux writes them: `0-3,8,10-11`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    cpus: BTreeSet<usize>,
}

/// A CPU list that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a CPU list; write it like \"0-3,8,10-11\"")]
pub struct BadCpuList {
    /// What was given.
    pub text: String,
}

impl CpuSet {
    /// The set of the given CPUs.
    pub fn from_cpus(cpus: impl IntoIterator<Item = usize>) -> CpuSet {
        CpuSet {
            cpus: cpus.into_iter().collect(),
        }
    }

    /// The CPUs, in order.
    pub fn cpus(&self) -> impl Iterator<Item = usize> + '_ {
        self.cpus.iter().copied()
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    /// The CPUs of this set that `other` lacks.
    pub fn missing_from(&self, other: &CpuSet) -> CpuSet {
        CpuSet {
            cpus: self.cpus.difference(&other.cpus).copied().collect(),
        }
    }
}

impl FromStr for CpuSet {
    type Err = BadCpuList;

    fn from_str(text: &str) -> Result<CpuSet, BadCpuList> {
        let bad = || BadCpuList {
            text: text.to_owned(),
        };
        let mut cpus = BTreeSet::new();
        for part in text.trim().split(',') {
            let part = part.trim();
            let (first, last) = match part.split_once('-') {
                Some((first, last)) => (first, last),
                None => (part, part),
            };
            let first: usize = first.trim().parse().map_err(|_| bad())?;
            let last: usize = last.trim().parse().map_err(|_| bad())?;
            if first > last || last >= 65_536 {
                return Err(bad());
            }
            cpus.extend(first..=last);
        }
        Ok(CpuSet { cpus })
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for cpu in &self.cpus {
            match ranges.last_mut() {
                Some((_, last)) if *last + 1 == *cpu => *last = *cpu,
                _ => ranges.push((*cpu, *cpu)),
            }
        }
        let parts: Vec<String> = ranges
            .into_iter()
            .map(|(first, last)| {
                if first == last {
                    first.to_string()
                } else {
                    format!("{first}-{last}")
                }
            })
            .collect();
        formatter.write_str(&parts.join(","))
    }
}

/// The CPUs the kernel has online (`/sys/devices/system/cpu/online`).
pub fn online_cpus() -> io::Result<CpuSet> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    text.parse()
        .map_err(|error: BadCpuList| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`).
pub fn total_memory_bytes() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    text.lines()
        .find_map(|line| {
            let kibibytes = line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
            kibibytes.trim().parse::<u64>().ok()
        })
        .map(|kibibytes| kibibytes * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no MemTotal in /proc/meminfo"))
}

/// The environment that gives a processor exactly `gpus` (device ordinals): CUDA and
/// OpenCL programs both see only those devices, numbered from 0.
pub fn gpu_environment(gpus: &[u32]) -> Vec<(OsString, OsString)> {
    let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
    let list = OsString::from(list.join(","));
    vec![
        ("CUDA_VISIBLE_DEVICES".into(), list.clone()),
        ("GPU_DEVICE_ORDINAL".into(), list),
    ]
}

/// Which control groups the daemon can make for its processors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupSupport {
    /// A cgroup v2 directory, with the `cpuset` and `memory` controllers, that the
    /// daemon may create groups under.
    V2 {
        /// The parent directory of the processors' groups.
        parent: PathBuf,
    },
    /// The cgroup v1 `cpuset` and `memory` hierarchies.
    V1 {
        /// The parent directory in the `cpuset` hierarchy.
        cpuset_parent: PathBuf,
        /// The parent directory in the `memory` hierarchy.
        memory_parent: PathBuf,
    },
    /// None is writable: CPU sets are applied by affinity only, memory is not limited.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl CgroupSupport {
    /// A sentence for the daemon's start-up log saying which enforcement is in force.
    pub fn describe(&self) -> String {
        match self {
            CgroupSupport::V2 { parent } => format!(
                "processor budgets: CPU sets by affinity and by cgroup v2 cpuset, memory by cgroup v2 memory.max, under {}",
                parent.display()
            ),
            CgroupSupport::V1 {
                cpuset_parent,
                memory_parent,
            } => format!(
                "processor budgets: CPU sets by affinity and by cgroup v1 cpuset under {}, memory by cgroup v1 memory.limit_in_bytes under {}",
                cpuset_parent.display(),
                memory_parent.display()
            ),
            CgroupSupport::Unavailable { reason } => format!(
                "processor budgets: CPU sets by affinity only and memory NOT limited, because no cgroup is writable ({reason})"
            ),
        }
    }

    /// The directories under which the processors' groups are made (the daemon's own
    /// group, created by [`detect_cgroup_support`]); remove them once no processor uses
    /// them.
    pub fn parent_directories(&self) -> Vec<PathBuf> {
        match self {
            CgroupSupport::V2 { parent } => vec![parent.clone()],
            CgroupSupport::V1 {
                cpuset_parent,
                memory_parent,
            } => vec![cpuset_parent.clone(), memory_parent.clone()],
            CgroupSupport::Unavailable { .. } => Vec::new(),
        }
    }

    /// Whether memory limits can be enforced.
    pub fn limits_memory(&self) -> bool {
        !matches!(self, CgroupSupport::Unavailable { .. })
    }
}

/// Finds a writable cgroup hierarchy under `mount` (normally `/sys/fs/cgroup`), placing
/// the processors' groups in a group named `group` inside this process's own group (read
/// from `self_cgroup`, the text of `/proc/self/cgroup`), and creates that group.
pub fn detect_cgroup_support(mount: &Path, self_cgroup: &str, group: &str) -> CgroupSupport {
    let own_path = |controller: Option<&str>| -> String {
        self_cgroup
            .lines()
            .find_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                let matches = match controller {
                    None => controllers.is_empty(),
                    Some(name) => controllers.split(',').any(|entry| entry == name),
                };
                matches.then(|| path.trim_start_matches('/').to_owned())
            })
            .unwrap_or_default()
    };
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    let mut reasons = Vec::new();
    if controllers.split_whitespace().any(|name| name == "cpuset")
        && controllers.split_whitespace().any(|name| name == "memory")
    {
        let parent = mount.join(own_path(None)).join(group);
        match create_group_directory(&parent) {
            Ok(()) => return CgroupSupport::V2 { parent },
            Err(error) => reasons.push(format!("cgroup v2 at {}: {error}", parent.display())),
        }
    } else {
        reasons.push(format!(
            "no cgroup v2 with the cpuset and memory controllers at {}",
            mount.display()
        ));
    }
    let cpuset_root = mount.join("cpuset");
    let memory_root = mount.join("memory");
    if cpuset_root.join("cpuset.cpus").exists()
        && memory_root.join("memory.limit_in_bytes").exists()
    {
        let cpuset_parent = cpuset_root.join(own_path(Some("cpuset"))).join(group);
        let memory_parent = memory_root.join(own_path(Some("memory"))).join(group);
        let created = create_group_directory(&cpuset_parent)
            .and_then(|()| inherit_v1_cpuset(&cpuset_parent))
            .and_then(|()| create_group_directory(&memory_parent));
        match created {
            Ok(()) => {
                return CgroupSupport::V1 {
                    cpuset_parent,
                    memory_parent,
                };
            }
            Err(error) => reasons.push(format!("cgroup v1 under {}: {error}", mount.display())),
        }
    } else {
        reasons.push(format!(
            "no cgroup v1 cpuset and memory hierarchies under {}",
            mount.display()
        ));
    }
    CgroupSupport::Unavailable {
        reason: reasons.join("; "),
    }
}

fn create_group_directory(path: &Path) -> io::Result<()> {
    match std::fs::create_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// A v1 cpuset group takes no process until its `cpuset.cpus` and `cpuset.mems` are
/// set; a new group starts with both empty, so it copies its parent's.
fn inherit_v1_cpuset(group: &Path) -> io::Result<()> {
    let parent = group.parent().unwrap_or(group);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = std::fs::read_to_string(group.join(file))?;
        if current.trim().is_empty() {
            let inherited = std::fs::read_to_string(parent.join(file))?;
            std::fs::write(group.join(file), inherited.trim())?;
        }
    }
    Ok(())
}

/// The control groups made for one processor; the launcher joins them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorGroups {
    directories: Vec<PathBuf>,
}

impl ProcessorGroups {
    /// No groups: nothing to join.
    pub fn none() -> ProcessorGroups {
        ProcessorGroups {
            directories: Vec::new(),
        }
    }

    /// The group directories to join.
    pub fn directories(&self) -> &[PathBuf] {
        &self.directories
    }

    /// Removes the groups once their processes are gone. A group that still has a
    /// process is left in place (and logged), never forced.
    pub fn remove(&self) {
        for directory in &self.directories {
            if let Err(error) = std::fs::remove_dir(directory)
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(group = %directory.display(), "could not remove a processor's cgroup: {error}");
            }
        }
    }
}

/// Makes the groups of one processor named `name` (unique per processor) with its CPU
/// set and memory limit. With no cgroup support, none is made.
pub fn create_processor_groups(
    support: &CgroupSupport,
    name: &str,
    cpus: Option<&CpuSet>,
    memory_bytes: Option<u64>,
) -> io::Result<ProcessorGroups> {
    match support {
        CgroupSupport::Unavailable { .. } => Ok(ProcessorGroups::none()),
        CgroupSupport::V2 { parent } => {
            enable_v2_controllers(parent)?;
            let group = parent.join(name);
            create_group_directory(&group)?;
            if let Some(cpus) = cpus {
                std::fs::write(group.join("cpuset.cpus"), cpus.to_string())?;
            }
            let limit = memory_bytes.map_or_else(|| "max".to_owned(), |bytes| bytes.to_string());
            std::fs::write(group.join("memory.max"), limit)?;
            Ok(ProcessorGroups {
                directories: vec![group],
            })
        }
        CgroupSupport::V1 {
            cpuset_parent,
            memory_parent,
        } => {
            let cpuset_group = cpuset_parent.join(name);
            create_group_directory(&cpuset_group)?;
            inherit_v1_cpuset(&cpuset_group)?;
            if let Some(cpus) = cpus {
                std::fs::write(cpuset_group.join("cpuset.cpus"), cpus.to_string())?;
            }
            let memory_group = memory_parent.join(name);
            create_group_directory(&memory_group)?;
            let limit = memory_bytes.map_or_else(|| "-1".to_owned(), |bytes| bytes.to_string());
            std::fs::write(memory_group.join("memory.limit_in_bytes"), limit)?;
            Ok(ProcessorGroups {
                directories: vec![cpuset_group, memory_group],
            })
        }
    }
}

/// In cgroup v2 a group's controllers must be enabled in its parent's
/// `cgroup.subtree_control` before its children can use them.
fn enable_v2_controllers(parent: &Path) -> io::Result<()> {
    let enabled =
        std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    for controller in ["cpuset", "memory"] {
        if !enabled.split_whitespace().any(|name| name == controller) {
            std::fs::write(
                parent.join("cgroup.subtree_control"),
                format!("+{controller}"),
            )?;
        }
    }
    Ok(())
}

/// What the launcher does before it becomes the processor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The CPUs to confine itself to.
    pub cpus: Option<CpuSet>,
    /// The control-group directories to join.
    pub join: Vec<PathBuf>,
    /// The processor's program.
    pub program: OsString,
    /// The processor's arguments.
    pub args: Vec<OsString>,
}

impl LaunchSpec {
    /// The launcher's arguments for this spec: `[--cpus LIST] [--join DIR]... -- PROGRAM
    /// ARGS...`.
    pub fn to_arguments(&self) -> Vec<OsString> {
        let mut arguments = Vec::new();
        if let Some(cpus) = &self.cpus {
            arguments.push("--cpus".into());
            arguments.push(cpus.to_string().into());
        }
        for directory in &self.join {
            arguments.push("--join".into());
            arguments.push(directory.clone().into_os_string());
        }
        arguments.push("--".into());
        arguments.push(self.program.clone());
        arguments.extend(self.args.iter().cloned());
        arguments
    }

    /// Reads the arguments [`LaunchSpec::to_arguments`] wrote.
    pub fn from_arguments(arguments: &[OsString]) -> Result<LaunchSpec, String> {
        let mut cpus = None;
        let mut join = Vec::new();
        let mut rest = arguments.iter();
        loop {
            let Some(argument) = rest.next() else {
                return Err("the launcher needs `-- PROGRAM [ARGUMENTS...]`".to_owned());
            };
            let value = |rest: &mut std::slice::Iter<'_, OsString>| {
                rest.next()
                    .cloned()
                    .ok_or_else(|| format!("{} needs a value", argument.to_string_lossy()))
            };
            match argument.to_str() {
                Some("--cpus") => {
                    let list = value(&mut rest)?;
                    cpus = Some(
                        list.to_string_lossy()
                            .parse::<CpuSet>()
                            .map_err(|error| error.to_string())?,
                    );
                }
                Some("--join") => join.push(PathBuf::from(value(&mut rest)?)),
                Some("--") => break,
                _ => return Err(format!("unexpected launcher argument {argument:?}")),
            }
        }
        let program = rest
            .next()
            .cloned()
            .ok_or("the launcher needs a program after `--`")?;
        Ok(LaunchSpec {
            cpus,
            join,
            program,
            args: rest.cloned().collect(),
        })
    }
}

/// Confines this process as `spec` says and replaces it with the processor's program.
/// Returns only on failure, with what failed.
pub fn exec_launch(spec: &LaunchSpec) -> io::Error {
    use std::os::unix::process::CommandExt;
    for directory in &spec.join {
        let procs = directory.join("cgroup.procs");
        if let Err(error) = std::fs::write(&procs, std::process::id().to_string()) {
            return io::Error::new(
                error.kind(),
                format!("could not join {}: {error}", procs.display()),
            );
        }
    }
    if let Some(cpus) = &spec.cpus
        && let Err(error) = set_own_affinity(cpus)
    {
        return io::Error::new(
            error.kind(),
            format!("could not confine itself to CPUs {cpus}: {error}"),
        );
    }
    let error = std::process::Command::new(&spec.program)
        .args(&spec.args)
        .exec();
    io::Error::new(
        error.kind(),
        format!(
            "could not run {}: {error}",
            Path::new(&spec.program).display()
        ),
    )
}

/// Restricts the calling thread (and every thread and process it starts later) to `cpus`.
pub fn set_own_affinity(cpus: &CpuSet) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    for cpu in cpus.cpus() {
        if cpu >= rustix::thread::CpuSet::MAX_CPU {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is out of range"),
            ));
        }
        set.set(cpu);
    }
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}

/// The CPUs a process may run on, from `/proc/<pid>/status` (`Cpus_allowed_list`).
pub fn allowed_cpus_of(pid: u32) -> io::Result<CpuSet> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Cpus_allowed_list"))?
        .trim()
        .parse()
        .map_err(|error: BadCpuList| io::Error::new(io::ErrorKind::InvalidData, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_print_like_linux() {
        let set: CpuSet = "0-3, 8,10-11".parse().expect("parse");
        assert_eq!(set.len(), 7);
        assert_eq!(set.to_string(), "0-3,8,10-11");
        assert_eq!("5".parse::<CpuSet>().expect("one").to_string(), "5");
        for bad in ["", "3-1", "a", "1-", "0-70000"] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad:?}");
        }
        let online: CpuSet = "0-1".parse().expect("parse");
        assert_eq!(set.missing_from(&online).to_string(), "2-3,8,10-11");
    }

    #[test]
    fn launcher_arguments_round_trip() {
        let spec = LaunchSpec {
            cpus: Some("0,2".parse().expect("parse")),
            join: vec![PathBuf::from("/sys/fs/cgroup/sealcluster/pc1-0")],
            program: "/usr/bin/python3".into(),
            args: vec!["relay.py".into(), "--".into(), "pc1".into()],
        };
        let arguments = spec.to_arguments();
        assert_eq!(LaunchSpec::from_arguments(&arguments).expect("parse"), spec);
        assert!(LaunchSpec::from_arguments(&["--cpus".into()]).is_err());
        assert!(LaunchSpec::from_arguments(&["--".into()]).is_err());
    }

    #[test]
    fn cgroup_v2_groups_are_made_with_limits_on_a_cgroup_like_tree() {
        // A directory shaped like a cgroup v2 mount: the kernel's files are plain files
        // here, which is what the code reads and writes.
        let mount = tempfile::tempdir().expect("create a temporary directory");
        std::fs::write(
            mount.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("write");
        let support = detect_cgroup_support(
            mount.path(),
            "0::/system.slice/worker.service\n",
            "sealcluster",
        );
        let CgroupSupport::V2 { parent } = &support else {
            panic!("expected v2, got {support:?}");
        };
        assert_eq!(
            parent,
            &mount.path().join("system.slice/worker.service/sealcluster")
        );
        let groups = create_processor_groups(
            &support,
            "pc1-0",
            Some(&"0-1".parse().expect("cpus")),
            Some(1 << 30),
        )
        .expect("create");
        let group = &groups.directories()[0];
        assert_eq!(
            std::fs::read_to_string(group.join("cpuset.cpus")).expect("read"),
            "0-1"
        );
        assert_eq!(
            std::fs::read_to_string(group.join("memory.max")).expect("read"),
            "1073741824"
        );
        assert!(support.describe().contains("cgroup v2"));
    }

    #[test]
    fn no_cgroup_is_reported_as_affinity_only() {
        let mount = tempfile::tempdir().expect("create a temporary directory");
        let support = detect_cgroup_support(mount.path(), "0::/\n", "sealcluster");
        assert!(matches!(support, CgroupSupport::Unavailable { .. }));
        assert!(
            support.describe().contains("memory NOT limited"),
            "{}",
            support.describe()
        );
        assert!(!support.limits_memory());
        assert_eq!(
            create_processor_groups(&support, "x", None, Some(1)).expect("nothing to do"),
            ProcessorGroups::none()
        );
    }
}
