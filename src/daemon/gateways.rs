//! The lab's gateways as `vpclab status` lists them: what a learner needs to address them
//! (a NAT gateway's Elastic IP, an interface endpoint's addresses) without reading the code.

use serde::{Deserialize, Serialize};

use crate::scenario::{EndpointKind, Lab};

/// One gateway or endpoint of the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// `igw:a`, `nat:a-nat`, `vpce:a-s3`.
    pub component: String,
    pub vpc: String,
    /// Where it lives and how it is reached, in words.
    pub detail: String,
}

/// Every internet gateway, NAT gateway and endpoint of `lab`.
pub fn gateways(lab: &Lab) -> Vec<GatewayRecord> {
    let igws = lab
        .vpcs
        .iter()
        .filter(|v| v.internet_gateway)
        .map(|v| GatewayRecord {
            component: format!("igw:{}", v.name),
            vpc: v.name.clone(),
            detail: "1:1 NAT of public IPs".to_string(),
        });
    let nats = lab.nat_gateways.iter().map(|g| GatewayRecord {
        component: format!("nat:{}", g.name),
        vpc: lab.vpcs[g.vpc].name.clone(),
        detail: format!(
            "subnet {}, private {}, Elastic IP {}",
            lab.subnets[g.subnet].name, g.private_ip, g.public_ip
        ),
    });
    let endpoints = lab.endpoints.iter().map(|e| {
        let service = &lab.services[e.service];
        let detail = match e.kind {
            EndpointKind::Gateway => format!(
                "gateway to {} (pl:{} {}), route tables {}",
                service.dns_name(),
                service.name,
                service.prefix_list,
                e.route_tables
                    .iter()
                    .map(|&t| lab.route_tables[t].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EndpointKind::Interface => format!(
                "interface to {} at {}{}",
                service.dns_name(),
                e.interfaces
                    .iter()
                    .map(|i| format!("{} ({})", i.private_ip, lab.subnets[i.subnet].name))
                    .collect::<Vec<_>>()
                    .join(", "),
                if e.private_dns { ", private DNS" } else { "" }
            ),
        };
        GatewayRecord {
            component: format!("vpce:{}", e.name),
            vpc: lab.vpcs[e.vpc].name.clone(),
            detail,
        }
    });
    igws.chain(nats).chain(endpoints).collect()
}
