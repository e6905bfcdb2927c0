//! `ferrolb status`'s table output: three kubectl-style tables (columns aligned, separated by three spaces, no
//! trailing blanks). Pure.
//!
//! - SERVICE ADDRESS POOL POLICY ANNOUNCED BY: one row per Service (`<pending>` without an address, `<none>`
//!   when no node announces it);
//! - SERVICE NODES WHY NOT: one row per Service and set of reasons, with every node it applies to (a pending
//!   Service has one row, `<all>`);
//! - NODE PEER ASN STATE SINCE PREFIXES BFD POOLS LAST ERROR: one row per session.
//!
//! The second table is left out when it has no rows; the first says `No LoadBalancer Services.` and the third `No
//! BGP sessions reported.` instead.

use super::report::{NodeReport, Report, ServiceReport};

/// Column separator, as kubectl.
const GAP: &str = "   ";

/// `headers` and `rows` as aligned columns, one line each, the last column unpadded.
pub fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str(GAP);
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths.get(i).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(
                    ' ',
                    pad.saturating_sub(cell.chars().count()),
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A list for a cell: `empty` when there is nothing.
fn list(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(",")
    }
}

/// `namespace/name`.
fn key(s: &ServiceReport) -> String {
    format!("{}/{}", s.namespace, s.name)
}

fn service_rows(services: &[ServiceReport]) -> Vec<Vec<String>> {
    services
        .iter()
        .map(|s| {
            vec![
                key(s),
                list(&s.addresses, "<pending>"),
                list(&s.pools, "<unknown>"),
                s.external_traffic_policy.clone(),
                if s.pending.is_some() {
                    "-".to_owned()
                } else {
                    list(&s.announced_by, "<none>")
                },
            ]
        })
        .collect()
}

fn why_not_rows(services: &[ServiceReport]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for s in services {
        if let Some(why) = &s.pending {
            rows.push(vec![
                key(s),
                "<all>".to_owned(),
                format!("no address: {why}"),
            ]);
            continue;
        }
        // Nodes with the same reasons share a row, in the order of their first node.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for n in &s.not_announced_by {
            let why: Vec<&str> = n.reasons.iter().map(|r| r.message.as_str()).collect();
            let why = why.join("; ");
            match groups.iter_mut().find(|(w, _)| *w == why) {
                Some((_, nodes)) => nodes.push(n.node.clone()),
                None => groups.push((why, vec![n.node.clone()])),
            }
        }
        rows.extend(
            groups
                .into_iter()
                .map(|(why, nodes)| vec![key(s), nodes.join(","), why]),
        );
    }
    rows
}

fn session_rows(nodes: &[NodeReport]) -> Vec<Vec<String>> {
    let dash = || "-".to_owned();
    nodes
        .iter()
        .flat_map(|n| {
            n.sessions.iter().map(|s| {
                vec![
                    n.node.clone(),
                    s.peer.clone(),
                    s.peer_asn.to_string(),
                    if s.state.is_empty() {
                        "<unknown>".to_owned()
                    } else {
                        s.state.clone()
                    },
                    s.since.clone().unwrap_or_else(dash),
                    s.prefixes_sent.to_string(),
                    if s.bfd.is_empty() {
                        dash()
                    } else {
                        s.bfd.clone()
                    },
                    list(&s.pools, "-"),
                    s.last_error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .unwrap_or_else(dash),
                ]
            })
        })
        .collect()
}

/// The whole table output.
pub fn render(report: &Report) -> String {
    let mut parts = Vec::new();
    if report.services.is_empty() {
        parts.push("No LoadBalancer Services.\n".to_owned());
    } else {
        parts.push(columns(
            &["SERVICE", "ADDRESS", "POOL", "POLICY", "ANNOUNCED BY"],
            &service_rows(&report.services),
        ));
    }
    let why = why_not_rows(&report.services);
    if !why.is_empty() {
        parts.push(columns(&["SERVICE", "NODES", "WHY NOT"], &why));
    }
    let sessions = session_rows(&report.nodes);
    if sessions.is_empty() {
        parts.push("No BGP sessions reported.\n".to_owned());
    } else {
        parts.push(columns(
            &[
                "NODE",
                "PEER",
                "ASN",
                "STATE",
                "SINCE",
                "PREFIXES",
                "BFD",
                "POOLS",
                "LAST ERROR",
            ],
            &sessions,
        ));
    }
    parts.join("\n")
}
