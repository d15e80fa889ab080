//! What the lab would cost on AWS: bytes through the metered gateways, counted by the data
//! plane with relaxed atomics, and AWS's list prices (us-east-1, aws-rules.md §3.2, §5) kept
//! here in one place. A class sees that the NAT gateway path costs money and the gateway
//! endpoint path does not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fabric::Metered;
use crate::scenario::{EndpointKind, Lab};

/// US dollars, us-east-1 list prices as aws-rules.md §0.3 records them.
pub mod prices {
    /// A NAT gateway: per hour it exists, and per GB it processes (both directions).
    pub const NAT_GATEWAY_HOUR: f64 = 0.045;
    pub const NAT_GATEWAY_GB: f64 = 0.045;
    /// A gateway endpoint (S3, DynamoDB) costs nothing.
    pub const GATEWAY_ENDPOINT_HOUR: f64 = 0.0;
    pub const GATEWAY_ENDPOINT_GB: f64 = 0.0;
    /// An interface endpoint (PrivateLink): per interface (one per Availability Zone) and
    /// hour, and per GB processed.
    pub const INTERFACE_ENDPOINT_HOUR_PER_AZ: f64 = 0.01;
    pub const INTERFACE_ENDPOINT_GB: f64 = 0.01;
}

/// Bytes through each NAT gateway and gateway endpoint of one version of the lab.
#[derive(Debug, Default)]
pub struct Meters {
    nat_gateways: Vec<AtomicU64>,
    /// Per endpoint, gateway or interface.
    endpoints: Vec<AtomicU64>,
}

impl Meters {
    /// Meters for `lab`, starting from what `previous` (of `previous_lab`) counted for
    /// components of the same name.
    pub fn carry_over(lab: &Lab, previous: Option<(&Meters, &Lab)>) -> Meters {
        let old = |kind: fn(&Lab) -> Vec<&str>, pick: fn(&Meters) -> &[AtomicU64], name: &str| {
            previous
                .and_then(|(m, l)| {
                    let at = kind(l).iter().position(|n| *n == name)?;
                    Some(pick(m)[at].load(Ordering::Relaxed))
                })
                .unwrap_or(0)
        };
        Meters {
            nat_gateways: nat_names(lab)
                .iter()
                .map(|n| AtomicU64::new(old(nat_names, |m| &m.nat_gateways, n)))
                .collect(),
            endpoints: endpoint_names(lab)
                .iter()
                .map(|n| AtomicU64::new(old(endpoint_names, |m| &m.endpoints, n)))
                .collect(),
        }
    }

    /// Counts a packet of `bytes` through `component`.
    pub fn add(&self, component: Metered, bytes: usize) {
        let counter = match component {
            Metered::NatGateway(g) => self.nat_gateways.get(g),
            Metered::GatewayEndpoint(e) | Metered::InterfaceEndpoint(e) => self.endpoints.get(e),
        };
        if let Some(c) = counter {
            c.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// One line per metered component, priced for `running` time (partial hours billed as
    /// full hours, as AWS does).
    pub fn report(&self, lab: &Lab, running: Duration) -> Vec<CostLine> {
        let hours = running.as_secs().div_ceil(3600).max(1);
        let line = |component: String, bytes: &AtomicU64, hour: f64, gb: f64| {
            let bytes = bytes.load(Ordering::Relaxed);
            let gigabytes = bytes as f64 / 1e9;
            CostLine {
                component,
                hours,
                bytes,
                usd: hours as f64 * hour + gigabytes * gb,
            }
        };
        let nat = nat_names(lab)
            .into_iter()
            .zip(&self.nat_gateways)
            .map(|(n, b)| {
                line(
                    format!("nat:{n}"),
                    b,
                    prices::NAT_GATEWAY_HOUR,
                    prices::NAT_GATEWAY_GB,
                )
            });
        let endpoints = lab.endpoints.iter().zip(&self.endpoints).map(|(e, b)| {
            let (hour, gb) = match e.kind {
                EndpointKind::Gateway => {
                    (prices::GATEWAY_ENDPOINT_HOUR, prices::GATEWAY_ENDPOINT_GB)
                }
                EndpointKind::Interface => (
                    prices::INTERFACE_ENDPOINT_HOUR_PER_AZ * e.interfaces.len() as f64,
                    prices::INTERFACE_ENDPOINT_GB,
                ),
            };
            line(format!("vpce:{}", e.name), b, hour, gb)
        });
        nat.chain(endpoints).collect()
    }
}

fn nat_names(lab: &Lab) -> Vec<&str> {
    lab.nat_gateways.iter().map(|g| g.name.as_str()).collect()
}

fn endpoint_names(lab: &Lab) -> Vec<&str> {
    lab.endpoints.iter().map(|e| e.name.as_str()).collect()
}

/// A metered component and what it would have cost so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    /// `nat:NAME` or `vpce:NAME`.
    pub component: String,
    /// Hours billed (started hours).
    pub hours: u64,
    /// Bytes processed, both directions.
    pub bytes: u64,
    pub usd: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    const LAB: &str = r#"
name: cost
services: { s3: {} }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets: { pub: { cidr: 10.0.0.0/24 } }
    nat_gateways: { gw: { subnet: pub } }
    endpoints: { e: { service: s3, type: gateway } }
"#;

    #[test]
    fn the_nat_gateway_costs_per_hour_and_gb_and_the_endpoint_nothing() {
        let lab = load_str(LAB, "cost.yaml").unwrap();
        let meters = Meters::carry_over(&lab, None);
        meters.add(Metered::NatGateway(0), 2_000_000_000);
        meters.add(Metered::GatewayEndpoint(0), 5_000_000_000);
        let lines = meters.report(&lab, Duration::from_secs(10));
        assert_eq!(lines[0].component, "nat:gw");
        assert_eq!((lines[0].hours, lines[0].bytes), (1, 2_000_000_000));
        assert!((lines[0].usd - (0.045 + 2.0 * 0.045)).abs() < 1e-9);
        assert_eq!(lines[1].component, "vpce:e");
        assert_eq!(lines[1].usd, 0.0);
        // A new version of the lab keeps what same-named components counted.
        let again = Meters::carry_over(&lab, Some((&meters, &lab)));
        assert_eq!(again.report(&lab, Duration::ZERO)[0].bytes, 2_000_000_000);
    }
}
