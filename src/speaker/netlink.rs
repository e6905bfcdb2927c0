//! The node's kernel, through rtnetlink: the source address of the route toward a peer, and the VIP interface
//! that holds exactly the announced Service IPs.

use super::peers::Discovered;
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressScope};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkDummy, LinkUnspec, RouteMessageBuilder};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// A failed rtnetlink request, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// A request failed.
    #[error("rtnetlink: {what}: {source}")]
    Request {
        /// What was being done, in words.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// The VIP interface could not be found after creating it.
    #[error("interface {0} not found after creating it")]
    Missing(String),
}

fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |source| NetlinkError::Request { what, source }
}

/// Opens an rtnetlink connection (its driver runs on the current tokio runtime).
pub fn connect() -> Result<Handle, NetlinkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// The preferred source address of the kernel's route toward `peer` (`ip route get PEER`), and an IPv4
/// router-id candidate: that source when it is IPv4.
pub async fn discover(handle: &Handle, peer: IpAddr) -> Result<Discovered, NetlinkError> {
    let message = match peer {
        IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(a, 32)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .destination_prefix(a, 128)
            .build(),
    };
    let mut routes = handle.route().get(message).execute();
    let mut source = None;
    while let Some(route) = routes
        .try_next()
        .await
        .map_err(request(format!("route toward {peer}")))?
    {
        source = source.or_else(|| {
            route.attributes.iter().find_map(|a| match a {
                RouteAttribute::PrefSource(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
                RouteAttribute::PrefSource(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
                _ => None,
            })
        });
    }
    Ok(Discovered {
        source,
        router_id: match source {
            Some(IpAddr::V4(v4)) => Some(v4),
            _ => None,
        },
    })
}

/// The interface that holds exactly the announced VIPs (`--vip-interface`).
#[derive(Debug)]
pub struct VipInterface {
    handle: Handle,
    name: String,
    index: u32,
}

impl VipInterface {
    /// Uses interface `name`, creating it as a dummy interface when it does not exist, and sets it up.
    pub async fn open(handle: Handle, name: &str) -> Result<VipInterface, NetlinkError> {
        let index = match link_index(&handle, name).await? {
            Some(i) => i,
            None => {
                handle
                    .link()
                    .add(LinkDummy::new(name).build())
                    .execute()
                    .await
                    .map_err(request(format!("create dummy interface {name}")))?;
                link_index(&handle, name)
                    .await?
                    .ok_or_else(|| NetlinkError::Missing(name.to_owned()))?
            }
        };
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(request(format!("set {name} up")))?;
        Ok(VipInterface {
            handle,
            name: name.to_owned(),
            index,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds the VIPs in `want` that are missing (as /32 or /128) and removes global addresses not in `want`.
    /// Returns how many were added and removed.
    pub async fn sync(&self, want: &BTreeSet<IpAddr>) -> Result<(usize, usize), NetlinkError> {
        let mut have = Vec::new();
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .execute();
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(request(format!("list addresses of {}", self.name)))?
        {
            if msg.header.index != self.index || msg.header.scope != AddressScope::Universe {
                continue;
            }
            let ip = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = ip {
                have.push((ip, msg));
            }
        }
        let present: BTreeSet<IpAddr> = have.iter().map(|(ip, _)| *ip).collect();
        let mut removed = 0;
        for (ip, msg) in have {
            if !want.contains(&ip) {
                self.handle
                    .address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(request(format!("remove {ip} from {}", self.name)))?;
                removed += 1;
            }
        }
        let mut added = 0;
        for ip in want.difference(&present) {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            let mut req = self.handle.address().add(self.index, *ip, len);
            req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
            req.execute()
                .await
                .map_err(request(format!("add {ip} to {}", self.name)))?;
            added += 1;
        }
        Ok((added, removed))
    }
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetlinkError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such interface.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
        Err(e) => Err(NetlinkError::Request {
            what: format!("find interface {name}"),
            source: e,
        }),
    }
}
