//! [`Lab`]: one `testbed/lab` instance, started and removed by the harness.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::command::{run, run_stdout, tail};
use crate::{LabError, NodeProcess, lab_script};

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// Node namespaces and kwok nodes (`node-1..=nodes`).
    pub nodes: usize,
    /// Also address the LAN and client link with IPv6 (2001:db8::/32) and give Services a v6 range.
    pub ipv6: bool,
    /// Only the router namespace with the control plane: no FRR, node namespaces, client or responders.
    /// Kubernetes still has `nodes` kwok nodes.
    pub control_plane_only: bool,
    /// The Service data path (`up --data-path`): kube-proxy in every node namespace, a network namespace with
    /// an HTTP server (answering `POD NODE PEER`) for every Running Pod, Pod CIDRs routed between nodes.
    pub data_path: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            nodes: 3,
            ipv6: false,
            control_plane_only: false,
            data_path: false,
        }
    }
}

/// A running lab. Dropping it runs `testbed/lab down` for it, which stops every process the lab (or
/// [`Lab::spawn_in_node`]) started and deletes its namespaces, FRR directories and state directory.
#[derive(Debug)]
pub struct Lab {
    name: String,
    dir: PathBuf,
    env: HashMap<String, String>,
    nodes: usize,
    control_plane_only: bool,
    torn_down: bool,
}

/// A bare control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) without the routed
/// network; a thin wrapper over a control-plane-only [`Lab`].
#[derive(Debug)]
pub struct ControlPlane(Lab);

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SHARED: OnceLock<Result<Lab, String>> = OnceLock::new();
static SHARED_CP: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
static AT_EXIT: Mutex<Vec<String>> = Mutex::new(Vec::new());
static AT_EXIT_REGISTERED: OnceLock<()> = OnceLock::new();

extern "C" fn down_shared_labs() {
    let names = AT_EXIT.lock().map(|v| v.clone()).unwrap_or_default();
    for name in names {
        let _ = Command::new(lab_script())
            .args(["--lab", &name, "down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn down_at_exit(name: &str) {
    AT_EXIT_REGISTERED.get_or_init(|| {
        // SAFETY: registering a plain `extern "C" fn()` with atexit(3); it only runs a child process.
        unsafe {
            libc::atexit(down_shared_labs);
        }
    });
    if let Ok(mut v) = AT_EXIT.lock() {
        v.push(name.to_owned());
    }
}

impl Lab {
    /// Starts a new lab with a unique name (`t<pid><n>`). Fails loudly when root, FRR, GoBGP or the
    /// control plane is missing.
    pub fn start(opts: LabOptions) -> Result<Lab, LabError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(LabError::NotRoot);
        }
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{:x}{}", pid % 0xfffff, n);
        // Labs of test binaries that were killed outright (their owner pid is gone).
        let _ = Command::new(lab_script())
            .arg("reap")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let mut cmd = Command::new(lab_script());
        cmd.args(["--lab", &name, "up", "--nodes", &opts.nodes.to_string()])
            .env("FERROLB_LAB_OWNER", pid.to_string());
        if opts.ipv6 {
            cmd.arg("--ipv6");
        }
        if opts.control_plane_only {
            cmd.arg("--control-plane-only");
        }
        if opts.data_path {
            cmd.arg("--data-path");
        }
        run(&mut cmd)?;
        Lab::attach(&name)
    }

    /// The lab shared by every test of this test binary, started on first use (3 nodes, IPv4) and removed
    /// when the process exits. An error starting it is returned to every caller.
    pub fn shared() -> Result<&'static Lab, LabError> {
        Lab::shared_with(LabOptions::default())
    }

    /// [`Lab::shared`] started with `opts` (the first caller's options win: one test binary uses one kind).
    pub fn shared_with(opts: LabOptions) -> Result<&'static Lab, LabError> {
        let lab = SHARED.get_or_init(|| {
            let lab = Lab::start(opts).map_err(|e| e.to_string())?;
            down_at_exit(&lab.name);
            Ok(lab)
        });
        lab.as_ref().map_err(|reason| LabError::State {
            path: PathBuf::from("<shared lab>"),
            reason: reason.clone(),
        })
    }

    /// Reads the state of an existing lab `name` (started by `testbed/lab --lab NAME up`). The returned
    /// value tears the lab down on drop like one from [`Lab::start`].
    pub fn attach(name: &str) -> Result<Lab, LabError> {
        let root = std::env::var_os("FERROLB_LAB_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/ferrolb-lab"));
        let dir = root.join(name);
        let env_path = dir.join("env");
        let text = fs::read_to_string(&env_path).map_err(|e| LabError::State {
            path: env_path.clone(),
            reason: e.to_string(),
        })?;
        let env = parse_env(&text);
        let field = |k: &str| {
            env.get(k).cloned().ok_or_else(|| LabError::State {
                path: env_path.clone(),
                reason: format!("no {k}="),
            })
        };
        let nodes = field("NODES")?.parse().map_err(|_| LabError::State {
            path: env_path.clone(),
            reason: "NODES is not a number".into(),
        })?;
        let control_plane_only = field("CONTROL_PLANE_ONLY")? == "1";
        Ok(Lab {
            name: name.to_owned(),
            dir,
            env,
            nodes,
            control_plane_only,
            torn_down: false,
        })
    }

    /// The lab name (prefix of its namespaces and its FRR pathspace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab's state directory (pids, logs, kubeconfig, certificates).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A value from the lab's `env` state file (e.g. `APISERVER`, `ROUTER_LAN4`, `CP_BIN`).
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Kubernetes names of the nodes: `node-1..=node-N`.
    pub fn node_names(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("node-{i}")).collect()
    }

    /// The admin kubeconfig (system:masters).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The kubectl binary built for the lab.
    pub fn kubectl_path(&self) -> PathBuf {
        PathBuf::from(self.env("CP_BIN").unwrap_or("/nonexistent")).join("kubectl")
    }

    /// Network namespace of the router (FRR and the control plane).
    pub fn router_netns(&self) -> String {
        format!("{}-router", self.name)
    }

    /// Network namespace of the client behind the router.
    pub fn client_netns(&self) -> Result<String, LabError> {
        self.network("client namespace")?;
        Ok(format!("{}-client", self.name))
    }

    /// Network namespace of node `node` (1-based), whose Kubernetes name is `node-<node>`.
    pub fn node_netns(&self, node: usize) -> Result<String, LabError> {
        self.network("node namespaces")?;
        if node == 0 || node > self.nodes {
            return Err(LabError::NoSuchNode {
                node,
                nodes: self.nodes,
            });
        }
        Ok(format!("{}-node-{node}", self.name))
    }

    /// IPv4 address of node `node` on the LAN (198.18.0.(10+node)).
    pub fn node_ipv4(&self, node: usize) -> Result<String, LabError> {
        self.node_netns(node)?;
        Ok(format!("198.18.0.{}", 10 + node))
    }

    /// A Kubernetes client with the admin identity.
    pub async fn kube_client(&self) -> Result<kube::Client, LabError> {
        let path = self.kubeconfig_path();
        let kc_err = |reason: String| LabError::Kubeconfig {
            path: path.clone(),
            reason,
        };
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&path).map_err(|e| kc_err(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| kc_err(e.to_string()))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Runs kubectl with the admin kubeconfig and returns its standard output.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, LabError> {
        run_stdout(
            Command::new(self.kubectl_path())
                .arg("--kubeconfig")
                .arg(self.kubeconfig_path())
                .args(args),
        )
    }

    /// Mints a token for ServiceAccount `name` in `namespace` (`kubectl create token`).
    pub fn token(&self, name: &str, namespace: &str) -> Result<String, LabError> {
        Ok(self
            .kubectl(&["create", "token", name, "-n", namespace])?
            .trim()
            .to_owned())
    }

    /// Runs a vtysh command on the router and parses its output as JSON (use a `... json` command).
    pub fn vtysh(&self, command: &str) -> Result<serde_json::Value, LabError> {
        let out = self.vtysh_text(command)?;
        serde_json::from_str(&out).map_err(|source| LabError::VtyshJson {
            command: command.to_owned(),
            source,
            output: tail(&out, 2000),
        })
    }

    /// Runs `testbed/lab --lab NAME ARGS...` for this lab (say, `["apiserver", "stop"]`) and returns its output.
    pub fn command(&self, args: &[&str]) -> Result<String, LabError> {
        run_stdout(
            Command::new(lab_script())
                .args(["--lab", &self.name])
                .args(args),
        )
    }

    /// Runs a vtysh command on the router and returns its text.
    pub fn vtysh_text(&self, command: &str) -> Result<String, LabError> {
        self.network("router FRR")?;
        run_stdout(Command::new("vtysh").args(["-N", &self.name, "-c", command]))
    }

    /// Runs `cmd` (program and arguments) in node `node`'s namespace and waits for it; fails on non-zero exit.
    pub fn exec_in_node(&self, node: usize, cmd: &[&str]) -> Result<Output, LabError> {
        let ns = self.node_netns(node)?;
        run(Command::new("ip").args(["netns", "exec", &ns]).args(cmd))
    }

    /// Runs `cmd` in the client namespace and waits for it; fails on non-zero exit.
    pub fn exec_in_client(&self, cmd: &[&str]) -> Result<Output, LabError> {
        let ns = self.client_netns()?;
        run(Command::new("ip").args(["netns", "exec", &ns]).args(cmd))
    }

    /// Runs `cmd` in the router namespace and waits for it; fails on non-zero exit.
    pub fn exec_in_router(&self, cmd: &[&str]) -> Result<Output, LabError> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.router_netns()])
            .args(cmd))
    }

    /// Starts `cmd` in node `node`'s namespace in the background, logging to `<lab dir>/logs/<name>.log`
    /// and recording its pid so `down` stops it too. `name` must be unique within the lab.
    pub fn spawn_in_node(
        &self,
        node: usize,
        name: &str,
        cmd: &[&str],
    ) -> Result<NodeProcess, LabError> {
        let ns = self.node_netns(node)?;
        let log = self.dir.join("logs").join(format!("{name}.log"));
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LabError::Io { path, source }
        };
        let out = fs::File::create(&log).map_err(io_err(&log))?;
        let err = out.try_clone().map_err(io_err(&log))?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: crate::command::describe(&command),
            source,
        })?;
        let pid_file = self.dir.join("pids").join(name);
        fs::write(&pid_file, child.id().to_string()).map_err(io_err(&pid_file))?;
        Ok(NodeProcess {
            child,
            pid_file,
            log,
        })
    }

    /// `testbed/lab lan-host NAME ADDR`: a namespace `<lab>-NAME` on the node LAN with `addr` (198.18.0.100-254),
    /// routed via the router, removed with the lab. Returns the namespace and an admin kubeconfig that reaches
    /// the API server at the router's LAN address (so a test can cut that namespace's traffic off on its own).
    pub fn lan_host(&self, name: &str, addr: &str) -> Result<(String, PathBuf), LabError> {
        let ns = run_stdout(
            Command::new(lab_script()).args(["--lab", &self.name, "lan-host", name, addr]),
        )?;
        Ok((
            ns.trim().to_owned(),
            self.dir.join(format!("{name}.kubeconfig")),
        ))
    }

    /// The API server's audit log (JSON lines): writes of Leases and of Service status, see `testbed/lab`.
    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Starts a GoBGP speaker in node `node` that peers with the router (see [`crate::GobgpSpeaker`]).
    pub fn start_gobgp(&self, node: usize) -> Result<crate::GobgpSpeaker, LabError> {
        crate::GobgpSpeaker::start(self, node)
    }

    /// Waits up to `timeout` until the router's BGP session with `peer` is Established.
    pub fn wait_established(&self, peer: &str, timeout: Duration) -> Result<(), LabError> {
        self.wait_until(
            timeout,
            &format!("BGP session with {peer} Established"),
            || {
                let summary = self.vtysh("show bgp summary json")?;
                Ok(summary
                    .pointer(&format!("/ipv4Unicast/peers/{peer}/state"))
                    .and_then(|s| s.as_str())
                    == Some("Established"))
            },
        )
    }

    /// Polls `check` every 200 ms until it returns true; errors from `check` count as "not yet", and the
    /// last one is reported on timeout.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut() -> Result<bool, LabError>,
    ) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match check() {
                Ok(true) => return Ok(()),
                Ok(false) => String::from("condition false"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: what.to_owned(),
                    seconds: timeout.as_secs(),
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Tears the lab down now and reports failures (drop does the same but can only ignore them).
    pub fn down(mut self) -> Result<(), LabError> {
        self.torn_down = true;
        run(Command::new(lab_script()).args(["--lab", &self.name, "down"])).map(|_| ())
    }

    fn network(&self, what: &'static str) -> Result<(), LabError> {
        if self.control_plane_only {
            Err(LabError::ControlPlaneOnly {
                lab: self.name.clone(),
                what,
            })
        } else {
            Ok(())
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.torn_down {
            let _ = Command::new(lab_script())
                .args(["--lab", &self.name, "down"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl ControlPlane {
    /// Starts a bare control plane with `nodes` kwok nodes.
    pub fn start(nodes: usize) -> Result<ControlPlane, LabError> {
        Lab::start(LabOptions {
            nodes,
            ipv6: false,
            control_plane_only: true,
            data_path: false,
        })
        .map(ControlPlane)
    }

    /// The control plane shared by every test of this test binary (3 kwok nodes), removed at exit.
    pub fn shared() -> Result<&'static ControlPlane, LabError> {
        let cp = SHARED_CP.get_or_init(|| {
            let cp = ControlPlane::start(3).map_err(|e| e.to_string())?;
            down_at_exit(cp.0.name());
            Ok(cp)
        });
        cp.as_ref().map_err(|reason| LabError::State {
            path: PathBuf::from("<shared control plane>"),
            reason: reason.clone(),
        })
    }

    /// The underlying lab (kubeconfig, kubectl, state directory).
    pub fn lab(&self) -> &Lab {
        &self.0
    }

    /// A Kubernetes client with the admin identity.
    pub async fn kube_client(&self) -> Result<kube::Client, LabError> {
        self.0.kube_client().await
    }
}

/// Parses the `KEY=value` / `KEY="value"` lines of the lab's env file; `#` lines are comments.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_parses_plain_and_quoted_values() {
        let env = parse_env("# lab\nLAB=t1\nNODE_NS=\"t1-node-1 t1-node-2\"\nNODES=2\n");
        assert_eq!(env.get("LAB").map(String::as_str), Some("t1"));
        assert_eq!(
            env.get("NODE_NS").map(String::as_str),
            Some("t1-node-1 t1-node-2")
        );
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn node_outside_the_lab_is_an_error() {
        let lab = Lab {
            name: "x".into(),
            dir: PathBuf::from("/nonexistent"),
            env: HashMap::new(),
            nodes: 2,
            control_plane_only: false,
            torn_down: true,
        };
        assert_eq!(lab.node_netns(2).unwrap(), "x-node-2");
        assert!(matches!(
            lab.node_netns(3),
            Err(LabError::NoSuchNode { node: 3, nodes: 2 })
        ));
        assert!(matches!(
            lab.node_netns(0),
            Err(LabError::NoSuchNode { node: 0, .. })
        ));
    }
}
