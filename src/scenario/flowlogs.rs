//! Scenario layer: resolution of each VPC's `flow_logs` into `Lab::flow_logs`. A flow log may
//! name any VPC, subnet or instance of the lab (AWS attaches flow logs to the resource, not to
//! the VPC it is written under); names are lab-wide.

use super::decode::{FLOW_LOG_FORMAT, FLOW_LOG_INTERVAL, FLOW_LOG_RESOURCE, FLOW_LOG_TRAFFIC};
use super::lab::*;
use super::raw::{FlowLogRaw, VpcRaw};
use super::resolve::{list, Ctx};
use super::yaml::At;

/// AWS's default capture window.
const DEFAULT_INTERVAL: u32 = 600;

pub(super) fn flow_logs(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    for v in vpcs {
        for f in &v.flow_logs {
            flow_log(ctx, f);
        }
    }
}

fn flow_log(ctx: &mut Ctx, f: &FlowLogRaw) {
    let fresh = ctx.claim("flow log", &f.name);
    let resource = f.resource.as_ref().and_then(|r| resource(ctx, r));
    let traffic = f.traffic.as_ref().and_then(|t| {
        let found = match t.value.as_str() {
            "ALL" => Some(TrafficFilter::All),
            "ACCEPT" => Some(TrafficFilter::Accept),
            "REJECT" => Some(TrafficFilter::Reject),
            _ => None,
        };
        if found.is_none() {
            let msg = format!("invalid traffic `{}`: expected {FLOW_LOG_TRAFFIC}", t.value);
            ctx.error(t, msg);
        }
        found
    });
    let fields = match &f.format {
        None => Some(FlowLogField::DEFAULT_FORMAT.to_vec()),
        Some(text) => match parse_format(&text.value) {
            Ok(fields) => Some(fields),
            Err(m) => {
                ctx.error(text, m);
                None
            }
        },
    };
    let interval = match &f.aggregation_interval {
        None => Some(DEFAULT_INTERVAL),
        Some(at) => match at.value {
            1..=60 | 600 => Some(at.value as u32),
            n => {
                let msg = format!("invalid aggregation_interval {n}: expected {FLOW_LOG_INTERVAL}");
                ctx.error(at, msg);
                None
            }
        },
    };
    if let (true, Some(resource), Some(traffic), Some(fields), Some(aggregation_interval)) =
        (fresh, resource, traffic, fields, interval)
    {
        ctx.lab.flow_logs.push(FlowLog {
            name: f.name.value.clone(),
            resource,
            traffic,
            fields,
            aggregation_interval,
        });
    }
}

/// `vpc:NAME`, `subnet:NAME`, `eni:HOST` (an instance) or `eni:NAT` (a NAT gateway's
/// interface), anywhere in the lab. None when broken.
fn resource(ctx: &mut Ctx, r: &At<String>) -> Option<FlowLogResource> {
    let Some((kind, name)) = r.value.split_once(':') else {
        let msg = format!(
            "invalid resource `{}`: expected {FLOW_LOG_RESOURCE}",
            r.value
        );
        ctx.error(r, msg);
        return None;
    };
    match kind {
        "vpc" => {
            let at = At {
                value: name.to_string(),
                pos: r.pos,
                path: r.path.clone(),
            };
            ctx.vpc(&at).map(FlowLogResource::Vpc)
        }
        "subnet" => {
            let found: Vec<Option<SubnetId>> = ctx
                .subnet_ids
                .iter()
                .filter(|((_, n), _)| n == name)
                .map(|(_, id)| *id)
                .collect();
            if found.is_empty() {
                let mut names: Vec<&str> =
                    ctx.lab.subnets.iter().map(|s| s.name.as_str()).collect();
                names.sort();
                let msg = format!(
                    "unknown subnet `{name}`; subnets: {}",
                    list(names.into_iter())
                );
                ctx.error(r, msg);
            }
            // A subnet already reported broken is skipped silently.
            found
                .into_iter()
                .flatten()
                .next()
                .map(FlowLogResource::Subnet)
        }
        "eni" => {
            let instances = ctx.lab.instances.len();
            if let Some(found) = ctx.nat_ids.get(name) {
                return found.map(|(_, g)| FlowLogResource::NatGateway(g));
            }
            match ctx.host_ids.get(name) {
                Some(Some(id)) if *id < instances => Some(FlowLogResource::Eni(*id)),
                Some(None) => None,
                _ => {
                    let mut names: Vec<&str> = (ctx.lab.instances.iter().map(|i| i.name.as_str()))
                        .chain(ctx.lab.nat_gateways.iter().map(|g| g.name.as_str()))
                        .collect();
                    names.sort();
                    let msg = format!(
                        "unknown interface `{name}`: expected an instance or a NAT gateway; \
                         instances and NAT gateways: {}",
                        list(names.into_iter())
                    );
                    ctx.error(r, msg);
                    None
                }
            }
        }
        _ => {
            let msg = format!(
                "invalid resource kind `{kind}` in `{}`: expected {FLOW_LOG_RESOURCE}",
                r.value
            );
            ctx.error(r, msg);
            None
        }
    }
}

/// A custom format: `${field}` tokens separated by single spaces, each field known and used
/// once.
pub(super) fn parse_format(text: &str) -> Result<Vec<FlowLogField>, String> {
    if text.trim().is_empty() {
        return Err(format!("empty format: expected {FLOW_LOG_FORMAT}"));
    }
    let mut fields = Vec::new();
    for token in text.split(' ') {
        let Some(name) = token.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
            let shown = if token.is_empty() { "(empty)" } else { token };
            return Err(format!(
                "invalid format token `{shown}` in `{text}`: expected ${{field}} tokens separated \
                 by single spaces"
            ));
        };
        let Some(field) = FlowLogField::from_name(name) else {
            let valid: Vec<&str> = FlowLogField::ALL.iter().map(|f| f.name()).collect();
            return Err(format!(
                "unknown flow-log field `{name}`; fields: {}",
                valid.join(", ")
            ));
        };
        if fields.contains(&field) {
            return Err(format!("field `{name}` appears twice in the format"));
        }
        fields.push(field);
    }
    Ok(fields)
}
