//! `ferrolb status`: per LoadBalancer Service its addresses, the nodes that announce it and why the others do not,
//! and per node its BGP sessions. Reads only Services, EndpointSlices and BGPSessionStatus objects (get/list), so
//! a read-only user can run it; the report itself is pure ([`report`], [`table`]).

pub mod report;
pub mod table;
#[cfg(test)]
mod tests;

use crate::crds::session_status::BGPSessionStatus;
use crate::service_filter::{Handling, LOAD_BALANCER_CLASS, ServiceFilter};
use crate::speaker::translate::SERVICE_NAME_LABEL;
use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};
use std::io::Write;
use std::process::ExitCode;

/// Output format of `ferrolb status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, like kubectl.
    Table,
    /// The report as JSON (see README, `ferrolb status`).
    Json,
}

/// Options of `ferrolb status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this Service: `NAMESPACE/NAME`, or `NAME` with `-n`.
    service: Option<String>,
    /// Only the Services of this namespace (default: every namespace).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// The namespace of the speakers' BGPSessionStatus objects (where ferrolb is installed).
    #[arg(
        long,
        default_value = "ferrolb-system",
        env = "FERROLB_STATUS_NAMESPACE"
    )]
    status_namespace: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Like the controller's flag: Services without `spec.loadBalancerClass` are not ferrolb's.
    #[arg(long)]
    no_default_class: bool,
}

/// Why `ferrolb status` could not report.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No kubeconfig and not in a cluster, or a broken kubeconfig.
    #[error(
        "cannot build a Kubernetes client (from $KUBECONFIG, ~/.kube/config or the in-cluster config): {0}"
    )]
    Client(#[source] kube::Error),
    /// The BGPSessionStatus CRD is missing.
    #[error(
        "the API server has no ferrolb.io/v1alpha1 BGPSessionStatus (bgpsessionstatuses.ferrolb.io): its CRD is not \
         installed; install ferrolb's manifests, which include it"
    )]
    CrdNotInstalled,
    /// The user may not list a resource.
    #[error(
        "forbidden: cannot list {resource} in {scope}: {message}; `ferrolb status` needs get and list on services, endpointslices.discovery.k8s.io and bgpsessionstatuses.ferrolb.io"
    )]
    Forbidden {
        /// The resource.
        resource: &'static str,
        /// `namespace X` or `every namespace`.
        scope: String,
        /// The API server's message.
        message: String,
    },
    /// Any other failed read.
    #[error("cannot {verb} {resource} in {scope}: {source}")]
    Read {
        /// `get` or `list`.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// `namespace X` or `every namespace`.
        scope: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The Service argument is not `NAMESPACE/NAME` or `NAME` with `-n`.
    #[error("Service {0:?}: expected NAMESPACE/NAME, or NAME with -n NAMESPACE")]
    BadService(String),
    /// The named Service does not exist.
    #[error("Service {0} not found")]
    ServiceNotFound(String),
    /// The named Service is not a LoadBalancer Service ferrolb handles.
    #[error("Service {key} is not handled by ferrolb: {why}")]
    NotOurs {
        /// `namespace/name`.
        key: String,
        /// Why.
        why: String,
    },
    /// Writing the output failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] serde_json::Error),
}

fn scope(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "every namespace".to_owned(),
    }
}

/// A failed read of `resource`, typed: the missing CRD and a 403 are named as such.
fn read_error(
    verb: &'static str,
    resource: &'static str,
    namespace: Option<&str>,
    err: kube::Error,
) -> StatusError {
    match err {
        kube::Error::Api(status) if status.code == 404 && resource == SESSIONS => {
            StatusError::CrdNotInstalled
        }
        kube::Error::Api(status) if status.code == 403 => StatusError::Forbidden {
            resource,
            scope: scope(namespace),
            message: status.message.clone(),
        },
        source => StatusError::Read {
            verb,
            resource,
            scope: scope(namespace),
            source,
        },
    }
}

const SERVICES: &str = "services";
const SLICES: &str = "endpointslices";
const SESSIONS: &str = "bgpsessionstatuses.ferrolb.io";

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl StatusArgs {
    /// `(namespace, name)` of the one Service asked for, if any.
    fn one_service(&self) -> Result<Option<(String, String)>, StatusError> {
        let Some(arg) = &self.service else {
            return Ok(None);
        };
        let (ns, name) = match (arg.split_once('/'), &self.namespace) {
            (Some((ns, name)), None) => (ns, name),
            (None, Some(ns)) => (ns.as_str(), arg.as_str()),
            _ => return Err(StatusError::BadService(arg.clone())),
        };
        if ns.is_empty() || name.is_empty() || name.contains('/') {
            return Err(StatusError::BadService(arg.clone()));
        }
        Ok(Some((ns.to_owned(), name.to_owned())))
    }

    fn filter(&self) -> ServiceFilter {
        ServiceFilter {
            default_class: !self.no_default_class,
            ..ServiceFilter::default()
        }
    }

    /// Reads what the report needs and builds it.
    async fn report(&self) -> Result<report::Report, StatusError> {
        let one = self.one_service()?;
        let filter = self.filter();
        let client = Client::try_default().await.map_err(StatusError::Client)?;
        let (services, slices) = match &one {
            Some((ns, name)) => {
                let svc = api::<Service>(&client, Some(ns))
                    .get_opt(name)
                    .await
                    .map_err(|e| read_error("get", SERVICES, Some(ns), e))?
                    .ok_or_else(|| StatusError::ServiceNotFound(format!("{ns}/{name}")))?;
                let why = match filter.handling(&svc) {
                    Handling::Ours => None,
                    Handling::NotLoadBalancer => Some("it is not of type LoadBalancer".to_owned()),
                    Handling::OtherClass => Some(format!(
                        "its loadBalancerClass is {:?}, not {LOAD_BALANCER_CLASS}",
                        svc.spec
                            .as_ref()
                            .and_then(|s| s.load_balancer_class.as_deref())
                            .unwrap_or_default()
                    )),
                };
                if let Some(why) = why {
                    return Err(StatusError::NotOurs {
                        key: format!("{ns}/{name}"),
                        why,
                    });
                }
                let slices = api::<EndpointSlice>(&client, Some(ns))
                    .list(&ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={name}")))
                    .await
                    .map_err(|e| read_error("list", SLICES, Some(ns), e))?;
                (vec![svc], slices.items)
            }
            None => {
                let ns = self.namespace.as_deref();
                let services = api::<Service>(&client, ns)
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| read_error("list", SERVICES, ns, e))?;
                let slices = api::<EndpointSlice>(&client, ns)
                    .list(&ListParams::default().labels(SERVICE_NAME_LABEL))
                    .await
                    .map_err(|e| read_error("list", SLICES, ns, e))?;
                (services.items, slices.items)
            }
        };
        let ns = self.status_namespace.as_str();
        let sessions = Api::<BGPSessionStatus>::namespaced(client, ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| read_error("list", SESSIONS, Some(ns), e))?;
        Ok(report::report(&filter, &services, &slices, &sessions.items))
    }

    /// Prints the report; exit code 1 with the error on stderr when it cannot be made.
    pub async fn run(self) -> ExitCode {
        let out = match self.report().await {
            Ok(r) => match self.output {
                Output::Table => Ok(table::render(&r)),
                Output::Json => serde_json::to_string_pretty(&r)
                    .map(|s| s + "\n")
                    .map_err(StatusError::from),
            },
            Err(e) => Err(e),
        };
        match out {
            Ok(text) => match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                // `ferrolb status | head`: the reader is gone, nothing to say.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ferrolb status: writing stdout: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("ferrolb status: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
