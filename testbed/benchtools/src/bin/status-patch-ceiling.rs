//! `status-patch-ceiling --namespace NS [--expect N] [--concurrency 16]`: how fast a plain kube client writes
//! the controller's status patches to the API server (`$KUBECONFIG`). Every Service of NS must hold an address;
//! Service i gets Service i+1's status (a real change with the controller's body shape: a JSON merge patch of
//! the status subresource with `loadBalancer.ingress` and the conditions), with as many patches in flight as
//! the controller has (16). Prints one JSON line: `{"services", "seconds", "services_per_s"}`; the rate is
//! (patches - 1) / (last completion - first completion), as the bench measures the controller.

use anyhow::{Context, bail};
use ferrolb_benchtools::{rate, rotated_statuses};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use std::time::Instant;

/// The controller's number of status writes in flight (src/controller/run.rs, WRITE_CONCURRENCY).
const CONCURRENCY: usize = 16;

struct Args {
    namespace: String,
    expect: Option<usize>,
    concurrency: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        namespace: String::new(),
        expect: None,
        concurrency: CONCURRENCY,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--namespace" => a.namespace = value()?,
            "--expect" => a.expect = Some(value()?.parse().context("--expect")?),
            "--concurrency" => a.concurrency = value()?.parse().context("--concurrency")?,
            other => {
                bail!("unknown argument {other} (--namespace NS [--expect N] [--concurrency C])")
            }
        }
    }
    if a.namespace.is_empty() {
        bail!("--namespace is required");
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let client = Client::try_default()
        .await
        .context("no Kubernetes client ($KUBECONFIG)")?;
    let api: Api<Service> = Api::namespaced(client, &args.namespace);
    let mut services = Vec::new();
    let mut params = ListParams::default().limit(1000);
    loop {
        let page = api
            .list(&params)
            .await
            .with_context(|| format!("listing the Services of {}", args.namespace))?;
        for svc in page.items {
            let name = svc.metadata.name.clone().unwrap_or_default();
            let status = serde_json::to_value(svc.status.unwrap_or_default())?;
            services.push((name, status));
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => params = params.continue_token(&c),
            _ => break,
        }
    }
    if let Some(n) = args.expect
        && services.len() != n
    {
        bail!(
            "{} Services in {}, expected {n}",
            services.len(),
            args.namespace
        );
    }
    let patches = rotated_statuses(&args.namespace, services)?;
    let pp = PatchParams {
        field_manager: Some("ferrolb-bench-ceiling".into()),
        ..PatchParams::default()
    };
    let start = Instant::now();
    let mut results = futures::stream::iter(&patches)
        .map(|(name, body)| {
            let (api, pp) = (&api, &pp);
            async move {
                let r = api.patch_status(name, pp, &Patch::Merge(body)).await;
                (name, r, start.elapsed().as_secs_f64())
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    let mut done = Vec::with_capacity(patches.len());
    while let Some((name, result, at)) = results.next().await {
        result.with_context(|| format!("patching the status of {}/{name}", args.namespace))?;
        done.push(at);
    }
    let per_s = rate(&done).context("fewer than two patches: no rate")?;
    println!(
        "{}",
        serde_json::json!({"services": done.len(), "seconds": start.elapsed().as_secs_f64(),
                           "services_per_s": per_s})
    );
    Ok(())
}
